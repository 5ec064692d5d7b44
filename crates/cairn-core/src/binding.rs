//! Node bindings: an organisation's signed statement that a libp2p peer id is one of its
//! nodes. Nodes exchange them when they connect, so each can name the organisation behind a
//! peer instead of a bare peer id. A node whose binding does not check (another node's, a
//! forged one, or none) is anonymous: it still exchanges entries, which carry their own
//! signatures, but is not named.
//!
//! A binding is kept as its exact signed bytes: `claims || signature(64)`, the signature by
//! the organisation's key over `BINDING_DOMAIN || claims`. `org_key` names the key that
//! signed: the organisation id itself for an organisation without a key log, else the key its
//! log makes current. [`Binding::verify`] checks the signature; whether that key is the
//! organisation's is the receiver's question, against the key log it holds
//! ([`key_is_current`]).

use serde::{Deserialize, Serialize};

use crate::Error;
use crate::codec::{self, Bytes};
use crate::credential::check_name;
use crate::entry::Timestamp;
use crate::keys::{OrgId, SecretKey};
use crate::signature::{PublicKey, Signed, verify_one};

/// Whether `key` signs for `org` now, by the key log held (`None`: none held, so only the id
/// itself does). For bindings, invitations and anything else that names an organisation key.
pub fn key_is_current(org: OrgId, key: &[u8; 32], log: Option<&crate::kel::KeyState>) -> bool {
    match log {
        Some(state) => state.current.0 == *key,
        None => org.0 == *key,
    }
}

/// Signing domain for bindings, so no binding signature can pass for any other.
pub const BINDING_DOMAIN: &[u8] = b"cairn/binding/v1\0";
/// The longest peer id a binding names, in bytes (libp2p's ed25519 peer ids are 38).
pub const MAX_PEER_ID_LEN: usize = 64;
/// The largest encoded binding, in bytes.
pub const MAX_BINDING_LEN: usize = 512;

/// What the organisation states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingClaims {
    pub org: OrgId,
    /// The key that signed the binding (see the module docs).
    pub org_key: [u8; 32],
    /// The organisation's name, as it calls itself (a claim, like every name).
    pub org_name: String,
    /// The node's libp2p peer id, as bytes.
    pub peer_id: Bytes,
    pub issued: Timestamp,
}

/// A decoded binding with the exact bytes that were signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    bytes: Vec<u8>,
    claims: BindingClaims,
}

impl Binding {
    /// Binds `peer_id` to organisation `org`, signed by its current key `org_key`.
    pub fn issue(
        org: OrgId,
        org_key: &SecretKey,
        org_name: &str,
        peer_id: &[u8],
        issued: Timestamp,
    ) -> Result<Self, Error> {
        let claims = BindingClaims {
            org,
            org_key: org_key.public(),
            org_name: org_name.to_string(),
            peer_id: Bytes(peer_id.to_vec()),
            issued,
        };
        check_claims(&claims)?;
        let mut bytes = codec::encode("binding", &claims)?;
        let signature = org_key.sign(BINDING_DOMAIN, &bytes);
        bytes.extend_from_slice(&signature);
        Ok(Self { bytes, claims })
    }

    /// Decodes a binding without checking it (see [`Binding::verify`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_BINDING_LEN {
            return Err(Error::TooLarge {
                what: "binding",
                len: bytes.len(),
                max: MAX_BINDING_LEN,
            });
        }
        let Some(claims_len) = bytes.len().checked_sub(64) else {
            return Err(Error::Truncated {
                what: "binding",
                detail: "shorter than its 64-byte signature".into(),
            });
        };
        let claims: BindingClaims = codec::decode("binding", &bytes[..claims_len])?;
        check_claims(&claims)?;
        Ok(Self {
            bytes: bytes.to_vec(),
            claims,
        })
    }

    /// The claims, if the binding names the node at `peer_id` and its organisation's key
    /// signed it.
    pub fn verify(&self, peer_id: &[u8]) -> Result<&BindingClaims, Error> {
        let claims = &self.claims;
        if claims.peer_id.0 != peer_id {
            return Err(Error::BadField {
                field: "binding.peer_id",
                reason: "it binds another node".into(),
            });
        }
        let key = PublicKey::parse(&claims.org_key)
            .ok_or_else(|| Error::BadKey(hex::encode(claims.org_key)))?;
        let (message, signature) = self.bytes.split_at(self.bytes.len() - 64);
        let signed = Signed {
            key,
            domain: BINDING_DOMAIN,
            message,
            signature,
        };
        if !verify_one(&signed) {
            return Err(Error::BadField {
                field: "binding.signature",
                reason: "it does not verify against the organisation's key".into(),
            });
        }
        Ok(claims)
    }

    /// The claims, unchecked.
    pub fn claims(&self) -> &BindingClaims {
        &self.claims
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

fn check_claims(claims: &BindingClaims) -> Result<(), Error> {
    check_name("binding.org_name", &claims.org_name)?;
    if claims.peer_id.0.is_empty() || claims.peer_id.0.len() > MAX_PEER_ID_LEN {
        return Err(Error::BadField {
            field: "binding.peer_id",
            reason: format!("must be 1 to {MAX_PEER_ID_LEN} bytes"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::EPOCH;

    #[test]
    fn a_binding_checks_only_for_its_own_node_and_key() {
        let org = SecretKey::from_seed([1; 32]);
        let peer = b"\x00\x24node-one-peer-id-bytes".to_vec();
        let binding =
            Binding::issue(org.org_id(), &org, "Riverside Trust", &peer, EPOCH).expect("issue");
        let decoded = Binding::from_bytes(binding.as_bytes()).expect("decode");
        assert_eq!(decoded, binding);
        assert_eq!(decoded.verify(&peer).expect("checks").org, org.org_id());
        // Presented by another node, it does not check.
        assert!(decoded.verify(b"another-node").is_err());
        // Any changed byte breaks it.
        for at in [0, 40, binding.as_bytes().len() - 1] {
            let mut bytes = binding.as_bytes().to_vec();
            bytes[at] ^= 1;
            let checks = Binding::from_bytes(&bytes).and_then(|b| b.verify(&peer).map(drop));
            assert!(checks.is_err(), "byte {at} changed and it still checks");
        }
        assert!(Binding::from_bytes(&binding.as_bytes()[..60]).is_err());
    }
}
