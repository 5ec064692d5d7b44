//! Membership credentials: an organisation's signed statement that a key belongs to one of its
//! members. Every entry carries its author's credential, so any peer can check "written by a
//! member of org X" without asking anyone. An org key authoring its own entries carries a
//! credential it issued to itself.
//!
//! A credential is kept as its exact signed bytes. Format 1 (in entries of header version 1)
//! is `claims || signature(64)`, signed by the key the organisation id is: an organisation
//! named by its first key, before it ever rotated. Format 2 (header version 2) is
//! `org_key(32) || claims || signature(64)`, signed by `org_key`: the key the organisation's
//! key event log makes current (see [`crate::kel`]), so the id can outlive its keys. Either
//! way the signature covers `CREDENTIAL_DOMAIN || everything before it`.

use serde::{Deserialize, Serialize};

use crate::entry::Timestamp;
use crate::entry::{FORMAT_VERSION, KEY_LOG_FORMAT_VERSION};
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
    /// The key that signed it on the organisation's behalf: the organisation id itself in
    /// format 1.
    org_key: MemberId,
}

impl Credential {
    /// Issues a credential signed by `org_key`. When the claims' organisation is that key
    /// (an organisation that never rotated), the credential is format 1, which every node
    /// reads; otherwise format 2, naming the key. Fails if the names break the rules in
    /// [`check_name`].
    pub fn issue(org_key: &SecretKey, claims: CredentialClaims) -> Result<Self, Error> {
        check_claims(&claims)?;
        let signer = org_key.member_id();
        let mut bytes = Vec::new();
        if claims.org.0 != signer.0 {
            bytes.extend_from_slice(signer.as_bytes());
        }
        bytes.extend_from_slice(&codec::encode("credential", &claims)?);
        let signature = org_key.sign(CREDENTIAL_DOMAIN, &bytes);
        bytes.extend_from_slice(&signature);
        Ok(Self {
            bytes,
            claims,
            org_key: signer,
        })
    }

    /// Decodes a format 1 credential without checking its signature (see
    /// [`crate::Verifier`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        Self::decode(FORMAT_VERSION, bytes)
    }

    /// Decodes a credential of the format that goes with header version `version`.
    pub fn decode(version: u8, bytes: &[u8]) -> Result<Self, Error> {
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
        let (org_key, claims_start) = if version == KEY_LOG_FORMAT_VERSION {
            let Some(key) = bytes.get(..32).filter(|_| claims_len >= 32) else {
                return Err(Error::Truncated {
                    what: "credential",
                    detail: "shorter than its 32-byte organisation key".into(),
                });
            };
            let key = MemberId(key.try_into().unwrap_or([0; 32]));
            (Some(key), 32)
        } else {
            (None, 0)
        };
        let claims: CredentialClaims =
            codec::decode("credential", &bytes[claims_start..claims_len])?;
        check_claims(&claims)?;
        let org_key = match org_key {
            Some(key) if key.0 == claims.org.0 => {
                return Err(Error::BadField {
                    field: "credential.org_key",
                    reason: "a format 2 credential names a key other than the organisation id; \
                             this one names the id itself, which is format 1's job"
                        .into(),
                });
            }
            Some(key) => key,
            None => MemberId::from(claims.org),
        };
        Ok(Self {
            bytes: bytes.to_vec(),
            claims,
            org_key,
        })
    }

    pub fn claims(&self) -> &CredentialClaims {
        &self.claims
    }

    /// The key that signed this credential for the organisation.
    pub fn org_key(&self) -> MemberId {
        self.org_key
    }

    /// The header version an entry carrying this credential has: 1 for format 1, else 2.
    pub fn header_version(&self) -> u8 {
        if self.org_key.0 == self.claims.org.0 {
            FORMAT_VERSION
        } else {
            KEY_LOG_FORMAT_VERSION
        }
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
