//! Invitations: an organisation's signed offer to connect to one of its nodes, carried in an
//! invite ticket. It names the node (peer id and addresses), the spaces it shares, when it
//! expires and whether it may be used once only; the signature shows that the organisation
//! named in it made it, so its name and addresses are not a stranger's word.
//!
//! Kept as its exact signed bytes: `claims || signature(64)`, the signature by the
//! organisation's key over `INVITATION_DOMAIN || claims`. As in bindings, `org_key` names the
//! key that signed; today it must be the organisation's id.

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::codec::{self, Bytes};
use crate::credential::check_name;
use crate::entry::{MAX_SPACE_LEN, MAX_SPACES, Timestamp};
use crate::keys::{OrgId, SecretKey};
use crate::signature::{PublicKey, Signed, verify_one};

/// Signing domain for invitations.
pub const INVITATION_DOMAIN: &[u8] = b"cairn/invitation/v1\0";
/// The largest encoded invitation, in bytes.
pub const MAX_INVITATION_LEN: usize = 4 * 1024;
/// The most addresses an invitation lists, and the longest of them.
pub const MAX_ADDRESSES: usize = 16;
pub const MAX_ADDRESS_LEN: usize = 256;

/// What the organisation offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvitationClaims {
    pub org: OrgId,
    pub org_key: [u8; 32],
    pub org_name: String,
    /// The inviting node's libp2p peer id, as bytes, and where it listens (multiaddresses).
    pub peer_id: Bytes,
    pub addresses: Vec<String>,
    /// The spaces the inviting node shares.
    pub spaces: Vec<String>,
    pub issued: Timestamp,
    pub expires: Timestamp,
    /// Whether the inviting node accepts it from one node only.
    pub single_use: bool,
    /// Random, so that each invitation is told apart (and a single-use one used once).
    pub nonce: [u8; 16],
}

/// A decoded invitation with the exact bytes that were signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    bytes: Vec<u8>,
    claims: InvitationClaims,
}

impl Invitation {
    /// Signs `claims` with the organisation's current key, which they must name.
    pub fn issue(org_key: &SecretKey, claims: InvitationClaims) -> Result<Self, Error> {
        if claims.org_key != org_key.public() {
            return Err(Error::BadField {
                field: "invitation.org",
                reason: "the claims name a different organisation than the signing key".into(),
            });
        }
        check_claims(&claims)?;
        let mut bytes = codec::encode("invitation", &claims)?;
        let signature = org_key.sign(INVITATION_DOMAIN, &bytes);
        bytes.extend_from_slice(&signature);
        Ok(Self { bytes, claims })
    }

    /// Decodes an invitation and checks its signature. Whether it has expired is the
    /// caller's question (see [`Invitation::expired`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_INVITATION_LEN {
            return Err(Error::TooLarge {
                what: "invitation",
                len: bytes.len(),
                max: MAX_INVITATION_LEN,
            });
        }
        let Some(claims_len) = bytes.len().checked_sub(64) else {
            return Err(Error::Truncated {
                what: "invitation",
                detail: "shorter than its 64-byte signature".into(),
            });
        };
        let (message, signature) = bytes.split_at(claims_len);
        let claims: InvitationClaims = codec::decode("invitation", message)?;
        check_claims(&claims)?;
        let key = PublicKey::parse(&claims.org_key)
            .ok_or_else(|| Error::BadKey(hex::encode(claims.org_key)))?;
        let signed = Signed {
            key,
            domain: INVITATION_DOMAIN,
            message,
            signature,
        };
        if !verify_one(&signed) {
            return Err(Error::BadField {
                field: "invitation.signature",
                reason: "it does not verify against the organisation's key".into(),
            });
        }
        Ok(Self {
            bytes: bytes.to_vec(),
            claims,
        })
    }

    pub fn claims(&self) -> &InvitationClaims {
        &self.claims
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Whether it has expired at `now`.
    pub fn expired(&self, now: Timestamp) -> bool {
        now >= self.claims.expires
    }
}

fn check_claims(claims: &InvitationClaims) -> Result<(), Error> {
    check_name("invitation.org_name", &claims.org_name)?;
    let bad = |field: &'static str, reason: String| Err(Error::BadField { field, reason });
    if claims.peer_id.0.is_empty() || claims.peer_id.0.len() > crate::binding::MAX_PEER_ID_LEN {
        return bad("invitation.peer_id", "must be 1 to 64 bytes".into());
    }
    if claims.addresses.is_empty()
        || claims.addresses.len() > MAX_ADDRESSES
        || claims
            .addresses
            .iter()
            .any(|address| address.is_empty() || address.len() > MAX_ADDRESS_LEN)
    {
        return bad(
            "invitation.addresses",
            format!("must be 1 to {MAX_ADDRESSES} addresses of at most {MAX_ADDRESS_LEN} bytes"),
        );
    }
    if claims.spaces.len() > MAX_SPACES
        || claims
            .spaces
            .iter()
            .any(|space| space.is_empty() || space.len() > MAX_SPACE_LEN)
    {
        return bad(
            "invitation.spaces",
            format!("must be at most {MAX_SPACES} space names of 1 to {MAX_SPACE_LEN} bytes"),
        );
    }
    if claims.expires <= claims.issued {
        return bad("invitation.expires", "expires before it was issued".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::EPOCH;

    fn claims(org: &SecretKey) -> InvitationClaims {
        InvitationClaims {
            org: org.org_id(),
            org_key: org.public(),
            org_name: "Riverside Trust".into(),
            peer_id: Bytes(b"peer".to_vec()),
            addresses: vec!["/ip4/127.0.0.1/tcp/7411".into()],
            spaces: vec!["commons".into()],
            issued: EPOCH,
            expires: Timestamp(EPOCH.0 + 1_000),
            single_use: true,
            nonce: [7; 16],
        }
    }

    #[test]
    fn an_invitation_checks_only_as_its_organisation_signed_it() {
        let org = SecretKey::from_seed([1; 32]);
        let invitation = Invitation::issue(&org, claims(&org)).expect("issue");
        let read = Invitation::from_bytes(invitation.as_bytes()).expect("checks");
        assert_eq!(read, invitation);
        assert!(!read.expired(EPOCH));
        assert!(read.expired(Timestamp(EPOCH.0 + 1_000)));
        for at in [0, 33, 70, invitation.as_bytes().len() - 1] {
            let mut bytes = invitation.as_bytes().to_vec();
            bytes[at] ^= 1;
            assert!(Invitation::from_bytes(&bytes).is_err(), "byte {at} changed");
        }
        let other = SecretKey::from_seed([2; 32]);
        assert!(Invitation::issue(&other, claims(&org)).is_err());
    }
}
