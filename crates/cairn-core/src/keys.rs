//! Ids and keys. Organisations and members are named by their ed25519 public keys; entries by
//! the SHA-256 of their signed header. All three print as lowercase hex.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};

use crate::Error;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// The first `chars` hex digits, for display where the full id is too long.
            pub fn short(&self, chars: usize) -> String {
                let mut text = self.to_string();
                text.truncate(chars.min(64));
                text
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short(12))
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(text: &str) -> Result<Self, Error> {
                let mut bytes = [0u8; 32];
                hex::decode_to_slice(text.trim(), &mut bytes).map_err(|err| Error::BadField {
                    field: $what,
                    reason: format!("expected 64 hex digits: {err}"),
                })?;
                Ok(Self(bytes))
            }
        }
    };
}

id_type!(
    /// An entry's id: SHA-256 of its signed header bytes.
    EntryId,
    "entry id"
);
id_type!(
    /// An organisation: its ed25519 public key.
    OrgId,
    "org id"
);
id_type!(
    /// A member (or an org key acting as an author): its ed25519 public key.
    MemberId,
    "member id"
);

impl From<OrgId> for MemberId {
    /// The org key may author entries itself.
    fn from(org: OrgId) -> Self {
        MemberId(org.0)
    }
}

/// An ed25519 secret key. Its `Debug` never prints the key.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// The key derived from a 32-byte seed (RFC 8032). Callers supply fresh randomness for new
    /// keys; tests and test vectors use fixed seeds.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }

    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    pub fn public(&self) -> [u8; 32] {
        self.0.verifying_key().to_bytes()
    }

    pub fn member_id(&self) -> MemberId {
        MemberId(self.public())
    }

    pub fn org_id(&self) -> OrgId {
        OrgId(self.public())
    }

    /// Signs `domain || message`; the domain keeps signatures for one purpose from ever being
    /// valid for another.
    pub(crate) fn sign(&self, domain: &[u8], message: &[u8]) -> [u8; 64] {
        let mut signed = Vec::with_capacity(domain.len() + message.len());
        signed.extend_from_slice(domain);
        signed.extend_from_slice(message);
        self.0.sign(&signed).to_bytes()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey(public {})", hex::encode(self.public()))
    }
}
