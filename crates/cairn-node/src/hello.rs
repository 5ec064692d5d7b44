//! The hello two nodes exchange when they connect (`/cairn/hello/1`): the sender's
//! [`Binding`] to its organisation, the entry versions it reads, its software version and its
//! clock. The receiver checks the binding against the connection's peer id: a peer whose
//! binding does not check is anonymous, never named. A clock far from this node's is worth a
//! warning, since entries carry their author's clock.
//!
//! Encoded with `cairn_core::codec` (bincode, fixed field order). The message never changes
//! under its protocol id: a hello with more fields would go out as `/cairn/hello/2`, offered
//! beside `/1` for as long as older nodes are about.

use cairn_core::binding::Binding;
use cairn_core::codec::{self, Bytes};
use cairn_core::{OrgId, Timestamp};
use serde::{Deserialize, Serialize};

use crate::Error;

/// The hello protocol's id.
pub const PROTOCOL: &str = "/cairn/hello/1";
/// The largest hello, in bytes.
pub const MAX_HELLO_LEN: usize = 2 * 1024;
/// A peer clock further than this from ours is logged and shown.
pub const CLOCK_WARNING_MS: u64 = 5 * 60 * 1_000;

/// What a node says of itself to a new peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The entry frame versions this node reads.
    pub entry_versions: Bytes,
    /// The Cairn version the node runs, for operators; never trusted for anything.
    pub software: String,
    /// The sender's clock as it sent this.
    pub time: Timestamp,
    /// Its binding to its organisation, as signed bytes (empty: none).
    pub binding: Bytes,
}

/// What this node learned from a peer's hello.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerHello {
    /// The organisation the peer is bound to, with the name it gives itself; `None` if its
    /// binding was missing or did not check.
    pub org: Option<(OrgId, String)>,
    /// Why the binding did not check, if it did not.
    pub anonymous_because: Option<String>,
    /// The binding's organisation, signing key and name when its signature checked for this
    /// peer. Whether that key signs for the organisation depends on the key log this node
    /// holds, which may arrive later: [`PeerHello::check_key`] decides `org` again.
    pub claimed: Option<(OrgId, [u8; 32], String)>,
    /// The peer's clock minus ours when its hello arrived, in ms.
    pub clock_skew_ms: i64,
    pub software: String,
    pub entry_versions: Vec<u8>,
}

impl Hello {
    /// This node's hello now.
    pub fn new(binding: Option<&Binding>) -> Self {
        Self {
            entry_versions: Bytes(
                (cairn_core::entry::FORMAT_VERSION..=cairn_core::entry::readable_format_limit())
                    .collect(),
            ),
            software: format!("cairn {}", env!("CARGO_PKG_VERSION")),
            time: Timestamp::now(),
            binding: Bytes(binding.map(|b| b.as_bytes().to_vec()).unwrap_or_default()),
        }
    }

    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        Ok(codec::encode_message("hello", self)?)
    }

    /// Reads a peer's hello (from the node at `peer_id`, as bytes) as of `now`. A binding
    /// names its organisation only if `key_is_current` says the key that signed it signs for
    /// that organisation now (by the key log this node holds).
    pub fn read(
        bytes: &[u8],
        peer_id: &[u8],
        now: Timestamp,
        key_is_current: impl Fn(OrgId, &[u8; 32]) -> bool,
    ) -> Result<PeerHello, Error> {
        if bytes.len() > MAX_HELLO_LEN {
            return Err(Error::BadRequest(format!(
                "a hello of {} bytes is over the {MAX_HELLO_LEN}-byte limit",
                bytes.len()
            )));
        }
        let hello: Hello = codec::decode_message("hello", bytes)?;
        let (claimed, anonymous_because) = if hello.binding.0.is_empty() {
            (None, Some("it sent no binding".to_string()))
        } else {
            match Binding::from_bytes(&hello.binding.0).and_then(|binding| {
                binding
                    .verify(peer_id)
                    .map(|claims| (claims.org, claims.org_key, claims.org_name.clone()))
            }) {
                Ok(claimed) => (Some(claimed), None),
                Err(err) => (None, Some(err.to_string())),
            }
        };
        let skew = i128::from(hello.time.0) - i128::from(now.0);
        let mut heard = PeerHello {
            org: None,
            anonymous_because,
            claimed,
            clock_skew_ms: skew.clamp(i64::MIN.into(), i64::MAX.into()) as i64,
            software: hello.software.chars().take(64).collect(),
            entry_versions: hello.entry_versions.0.into_iter().take(16).collect(),
        };
        heard.check_key(key_is_current);
        Ok(heard)
    }
}

impl PeerHello {
    /// Names the binding's organisation if `key_is_current` says its signing key signs for
    /// it (by the key log held now), else leaves the peer anonymous and says why.
    pub fn check_key(&mut self, key_is_current: impl Fn(OrgId, &[u8; 32]) -> bool) {
        let Some((org, key, name)) = &self.claimed else {
            return;
        };
        if key_is_current(*org, key) {
            self.org = Some((*org, name.clone()));
            self.anonymous_because = None;
        } else {
            self.org = None;
            self.anonymous_because = Some(
                "its binding is signed by a key that this node's copy of the organisation's key log does not make current (it may not have arrived yet)".into(),
            );
        }
    }

    /// Whether the peer's clock is far enough from ours to warn about.
    pub fn clock_is_off(&self) -> bool {
        self.clock_skew_ms.unsigned_abs() > CLOCK_WARNING_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::SecretKey;

    #[test]
    fn a_hello_names_the_organisation_only_for_the_node_it_binds() {
        let org = SecretKey::from_seed([3; 32]);
        let peer = b"peer-one".to_vec();
        let binding = Binding::issue(
            org.org_id(),
            &org,
            "Riverside Trust",
            &peer,
            Timestamp::now(),
        )
        .expect("binding");
        let bytes = Hello::new(Some(&binding)).encode().expect("encode");
        let now = Timestamp(Timestamp::now().0 + 10 * 60 * 1_000);
        let current = |org: OrgId, key: &[u8; 32]| org.0 == *key;
        let heard = Hello::read(&bytes, &peer, now, current).expect("read");
        assert_eq!(heard.org, Some((org.org_id(), "Riverside Trust".into())));
        assert!(heard.clock_is_off(), "ten minutes apart: {heard:?}");
        let rotated_away = Hello::read(&bytes, &peer, now, |_, _| false).expect("read");
        assert_eq!(rotated_away.org, None);
        let stolen = Hello::read(&bytes, b"peer-two", now, current).expect("read");
        assert_eq!(stolen.org, None);
        assert!(stolen.anonymous_because.is_some());
        let none = Hello::new(None).encode().expect("encode");
        assert_eq!(
            Hello::read(&none, &peer, now, current).expect("read").org,
            None
        );
        assert!(Hello::read(&[0xff; 10], &peer, now, current).is_err());
        assert!(Hello::read(&vec![0; MAX_HELLO_LEN + 1], &peer, now, current).is_err());
    }
}
