//! Membership credentials: an organisation's signed statement that a key belongs to one of its
//! members. Every entry carries its author's credential, so any peer can check "written by a
//! member of org X" without asking anyone. An org key authoring its own entries carries a
//! credential it issued to itself.
//!
//! A credential is kept as its exact signed bytes: `claims || signature(64)`, where the
//! signature covers `CREDENTIAL_DOMAIN || claims`.

use serde::{Deserialize, Serialize};

use crate::entry::Timestamp;
use crate::keys::{MemberId, OrgId, SecretKey};
use crate::{Error, codec};

/// Signing domain for credentials, so no credential signature can pass as an entry signature.
pub const CREDENTIAL_DOMAIN: &[u8] = b"cairn/credential/v1\0";
/// The longest organisation or member display name, in bytes.
pub const MAX_NAME_LEN: usize = 120;
/// The largest encoded credential, in bytes.
pub const MAX_CREDENTIAL_LEN: usize = 512;

/// What the organisation vouches for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CredentialClaims {
    pub org: OrgId,
    pub org_name: String,
    pub member: MemberId,
    pub member_name: String,
    pub issued: Timestamp,
    pub expires: Option<Timestamp>,
}

/// A decoded credential together with the exact bytes that were signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    bytes: Vec<u8>,
    claims: CredentialClaims,
}

impl Credential {
    /// Issues a credential signed by the organisation's key. Fails if the names break the
    /// rules in [`check_name`] or the claims name another organisation.
    pub fn issue(org_key: &SecretKey, claims: CredentialClaims) -> Result<Self, Error> {
        if claims.org != org_key.org_id() {
            return Err(Error::BadField {
                field: "credential.org",
                reason: "the claims name a different organisation than the signing key".into(),
            });
        }
        check_claims(&claims)?;
        let mut bytes = codec::encode("credential", &claims)?;
        let signature = org_key.sign(CREDENTIAL_DOMAIN, &bytes);
        bytes.extend_from_slice(&signature);
        Ok(Self { bytes, claims })
    }

    /// Decodes a credential without checking its signature (see [`crate::Verifier`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_CREDENTIAL_LEN {
            return Err(Error::TooLarge {
                what: "credential",
                len: bytes.len(),
                max: MAX_CREDENTIAL_LEN,
            });
        }
        let Some(claims_len) = bytes.len().checked_sub(64) else {
            return Err(Error::Truncated {
                what: "credential",
                detail: "shorter than its 64-byte signature".into(),
            });
        };
        let claims: CredentialClaims = codec::decode("credential", &bytes[..claims_len])?;
        check_claims(&claims)?;
        Ok(Self {
            bytes: bytes.to_vec(),
            claims,
        })
    }

    pub fn claims(&self) -> &CredentialClaims {
        &self.claims
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The signed part and the signature.
    pub(crate) fn split(&self) -> (&[u8], &[u8]) {
        self.bytes.split_at(self.bytes.len() - 64)
    }
}

fn check_claims(claims: &CredentialClaims) -> Result<(), Error> {
    check_name("credential.org_name", &claims.org_name)?;
    check_name("credential.member_name", &claims.member_name)?;
    if let Some(expires) = claims.expires
        && expires <= claims.issued
    {
        return Err(Error::BadField {
            field: "credential.expires",
            reason: "expires before it was issued".into(),
        });
    }
    Ok(())
}

/// A display name: 1 to [`MAX_NAME_LEN`] bytes, no control characters, no leading or trailing
/// spaces.
pub fn check_name(field: &'static str, name: &str) -> Result<(), Error> {
    let reason = if name.is_empty() {
        "must not be empty"
    } else if name.len() > MAX_NAME_LEN {
        "is longer than 120 bytes"
    } else if name.chars().any(char::is_control) {
        "must not contain control characters"
    } else if name.trim() != name {
        "must not start or end with spaces"
    } else {
        return Ok(());
    };
    Err(Error::BadField {
        field,
        reason: reason.into(),
    })
}
