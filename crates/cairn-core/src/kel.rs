//! Key event logs: an organisation identity that outlives its keys, with pre-rotation.
//!
//! An organisation's log is a chain of signed [`KeyEvent`]s. The first (seq 0, the
//! *inception*) names the first key and commits to the next one by its digest; the
//! organisation's id is the SHA-256 of `ORG_ID_DOMAIN || inception claims`, so nobody can
//! later write a different inception for the same id. An organisation from before key logs,
//! whose id is its key, *adopts* a log with an inception that says so (`adopts`) and keeps its
//! id. Each *rotation* (seq 1, 2, …) names the event before it, reveals the key the event
//! before committed to, commits to the one after, and is signed by the revealed key. So a
//! thief of the current key cannot rotate: only the holder of the committed next key can.
//!
//! A rotation also states, for every author whose credential the retired key signed, the
//! last sequence number still valid ([`Cutoff`]): timestamps are self-asserted, so this is
//! what refuses a leaked old key's new *and* backdated entries, as a revocation does for one
//! member. [`KeyState`] is what a node holds of a log after replaying it, and answers which
//! credential keys are good for which entries.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::entry::Timestamp;
use crate::keys::{MemberId, OrgId, SecretKey};
use crate::signature::{self, PublicKey, Signed};
use crate::{Error, codec};

/// Signing domain for key events.
pub const KEY_EVENT_DOMAIN: &[u8] = b"cairn/key-event/v1\0";
/// Hashing domain for an organisation id made from its inception.
pub const ORG_ID_DOMAIN: &[u8] = b"cairn/org-id/v1\0";
/// Hashing domain for the commitment to a next key.
pub const NEXT_KEY_DOMAIN: &[u8] = b"cairn/next-key/v1\0";
/// The most authors one rotation may state a cut-off for.
pub const MAX_CUTOFFS: usize = 1_024;
/// The largest encoded key event (it travels as an entry body).
pub const MAX_KEY_EVENT_LEN: usize = crate::entry::MAX_BODY_LEN;

/// A SHA-256 digest: of a key event, or of a committed next key.
pub type Digest = [u8; 32];

/// The last entry of `author` that stays valid under the key a rotation retires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cutoff {
    pub author: MemberId,
    pub last_valid_seq: u64,
}

/// What a key event states. Field order is the wire order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyEventClaims {
    /// 0 for the inception, then 1, 2, … per rotation.
    pub seq: u64,
    /// The digest of the event at `seq - 1`; `None` exactly for the inception.
    pub prior: Option<Digest>,
    /// The key this event makes current; it signs the event.
    pub key: MemberId,
    /// The commitment to the next key: [`next_key_digest`] of its public key.
    pub next: Digest,
    /// Inception only: the organisation's id is `key` (it existed before key logs).
    pub adopts: bool,
    /// Rotation only: per author, the last entry valid under the retired key. Sorted by
    /// author, unique. Authors not named keep none of their entries under it.
    pub cutoffs: Vec<Cutoff>,
    pub created: Timestamp,
}

/// A decoded key event with the exact bytes that were signed: `claims || signature(64)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    bytes: Vec<u8>,
    claims: KeyEventClaims,
}

impl KeyEvent {
    /// A new organisation's inception: `first` is its key, `next` the public key to rotate to.
    pub fn incept(first: &SecretKey, next: &[u8; 32], created: Timestamp) -> Result<Self, Error> {
        Self::sign(
            first,
            KeyEventClaims {
                seq: 0,
                prior: None,
                key: first.member_id(),
                next: next_key_digest(next),
                adopts: false,
                cutoffs: Vec::new(),
                created,
            },
        )
    }

    /// The inception of an organisation whose id is already `key`: it keeps that id.
    pub fn adopt(key: &SecretKey, next: &[u8; 32], created: Timestamp) -> Result<Self, Error> {
        Self::sign(
            key,
            KeyEventClaims {
                seq: 0,
                prior: None,
                key: key.member_id(),
                next: next_key_digest(next),
                adopts: true,
                cutoffs: Vec::new(),
                created,
            },
        )
    }

    /// The rotation after `prior` to `revealed` (the key `prior` committed to), committing to
    /// `next`, with the cut-offs for the key it retires.
    pub fn rotate(
        prior: &KeyEvent,
        revealed: &SecretKey,
        next: &[u8; 32],
        mut cutoffs: Vec<Cutoff>,
        created: Timestamp,
    ) -> Result<Self, Error> {
        if next_key_digest(&revealed.public()) != prior.claims.next {
            return Err(Error::BadField {
                field: "key event key",
                reason: "this is not the next key the organisation committed to; use the \
                         next-key file written when the organisation was created or last rotated"
                    .into(),
            });
        }
        cutoffs.sort_by_key(|cutoff| cutoff.author);
        cutoffs.dedup_by_key(|cutoff| cutoff.author);
        Self::sign(
            revealed,
            KeyEventClaims {
                seq: prior.claims.seq + 1,
                prior: Some(prior.digest()),
                key: revealed.member_id(),
                next: next_key_digest(next),
                adopts: false,
                cutoffs,
                created,
            },
        )
    }

    fn sign(key: &SecretKey, claims: KeyEventClaims) -> Result<Self, Error> {
        check_form(&claims)?;
        let mut bytes = codec::encode("key event", &claims)?;
        let signature = key.sign(KEY_EVENT_DOMAIN, &bytes);
        bytes.extend_from_slice(&signature);
        Self::decode(&bytes)
    }

    /// Decodes an event and checks its form and its signature (by the key it names).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_KEY_EVENT_LEN {
            return Err(Error::TooLarge {
                what: "key event",
                len: bytes.len(),
                max: MAX_KEY_EVENT_LEN,
            });
        }
        let Some(claims_len) = bytes.len().checked_sub(64) else {
            return Err(Error::Truncated {
                what: "key event",
                detail: "shorter than its 64-byte signature".into(),
            });
        };
        let claims: KeyEventClaims = codec::decode("key event", &bytes[..claims_len])?;
        check_form(&claims)?;
        let key =
            PublicKey::parse(&claims.key.0).ok_or_else(|| Error::BadKey(claims.key.to_string()))?;
        let signed = Signed {
            key,
            domain: KEY_EVENT_DOMAIN,
            message: &bytes[..claims_len],
            signature: &bytes[claims_len..],
        };
        if !signature::verify_one(&signed) {
            return Err(Error::BadSignature);
        }
        Ok(Self {
            bytes: bytes.to_vec(),
            claims,
        })
    }

    pub fn claims(&self) -> &KeyEventClaims {
        &self.claims
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The SHA-256 of the event's bytes: what the next event names as `prior`.
    pub fn digest(&self) -> Digest {
        Sha256::digest(&self.bytes).into()
    }

    /// For an inception, the id of the organisation it founds; `None` for a rotation.
    pub fn founds(&self) -> Option<OrgId> {
        if self.claims.seq != 0 {
            return None;
        }
        if self.claims.adopts {
            return Some(OrgId(self.claims.key.0));
        }
        let claims_len = self.bytes.len() - 64;
        let mut hasher = Sha256::new();
        hasher.update(ORG_ID_DOMAIN);
        hasher.update(&self.bytes[..claims_len]);
        Some(OrgId(hasher.finalize().into()))
    }
}

/// The commitment to a next key.
pub fn next_key_digest(public: &[u8; 32]) -> Digest {
    let mut hasher = Sha256::new();
    hasher.update(NEXT_KEY_DOMAIN);
    hasher.update(public);
    hasher.finalize().into()
}

/// The rules every event follows on its own.
fn check_form(claims: &KeyEventClaims) -> Result<(), Error> {
    let bad = |reason: &str| {
        Err(Error::BadField {
            field: "key event",
            reason: reason.into(),
        })
    };
    match (claims.seq, claims.prior) {
        (0, Some(_)) => return bad("an inception (seq 0) names no prior event"),
        (1.., None) => return bad("a rotation must name its prior event"),
        _ => {}
    }
    if claims.seq >= crate::verify::MAX_SEQ {
        return bad("seq is implausibly large");
    }
    if claims.seq > 0 && claims.adopts {
        return bad("only an inception may adopt an existing id");
    }
    if claims.seq == 0 && !claims.cutoffs.is_empty() {
        return bad("an inception retires no key, so it states no cut-offs");
    }
    if claims.cutoffs.len() > MAX_CUTOFFS {
        return bad("more than 1,024 cut-offs");
    }
    if claims
        .cutoffs
        .windows(2)
        .any(|pair| pair[0].author >= pair[1].author)
    {
        return bad("cut-offs must be sorted by author and unique");
    }
    if next_key_digest(&claims.key.0) == claims.next {
        return bad("the next key must differ from the current one");
    }
    Ok(())
}

/// What happened when an event was offered to a [`KeyState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The event extended the log.
    Extended,
    /// The same event is already in the log.
    Held,
    /// A different event at a position already held: the organisation signed two histories.
    /// The first one seen stays; this one is evidence.
    Duplicity,
}

/// What a node knows of one organisation's key log, replayed from its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyState {
    pub org: OrgId,
    /// The digests of the events held, by seq.
    digests: Vec<Digest>,
    /// The key credentials must be signed with now.
    pub current: MemberId,
    /// The commitment to the next key.
    pub next: Digest,
    /// Each retired key, with the last valid seq per author under it.
    retired: HashMap<MemberId, HashMap<MemberId, u64>>,
    /// Whether two different events were seen at one position.
    pub duplicity: bool,
}

impl KeyState {
    /// The state an inception founds for `org`.
    pub fn incept(org: OrgId, event: &KeyEvent) -> Result<Self, Error> {
        if event.founds() != Some(org) {
            return Err(Error::BadField {
                field: "key event",
                reason: format!(
                    "this inception does not found organisation {}",
                    org.short(12)
                ),
            });
        }
        Ok(Self {
            org,
            digests: vec![event.digest()],
            current: event.claims.key,
            next: event.claims.next,
            retired: HashMap::new(),
            duplicity: false,
        })
    }

    /// The seq of the newest event held.
    pub fn seq(&self) -> u64 {
        self.digests.len() as u64 - 1
    }

    /// Offers the next event. An event further ahead than the next position is
    /// [`Error::KeyLogGap`]; one that does not follow from the log is refused.
    pub fn apply(&mut self, event: &KeyEvent) -> Result<Applied, Error> {
        let claims = &event.claims;
        if let Some(held) = usize::try_from(claims.seq)
            .ok()
            .and_then(|seq| self.digests.get(seq))
        {
            if *held == event.digest() {
                return Ok(Applied::Held);
            }
            self.duplicity = true;
            return Ok(Applied::Duplicity);
        }
        if claims.seq != self.seq() + 1 {
            return Err(Error::KeyLogGap {
                org: self.org,
                held: self.seq(),
                offered: claims.seq,
            });
        }
        let refuse = |reason: &str| Error::KeyEventRefused {
            org: self.org,
            reason: reason.into(),
        };
        if claims.prior != self.digests.last().copied() {
            return Err(refuse(
                "it follows an event this node does not hold at that position",
            ));
        }
        if next_key_digest(&claims.key.0) != self.next {
            return Err(refuse(
                "its key is not the one the previous event committed to",
            ));
        }
        let cutoffs = claims
            .cutoffs
            .iter()
            .map(|cutoff| (cutoff.author, cutoff.last_valid_seq))
            .collect();
        self.retired.insert(self.current, cutoffs);
        self.current = claims.key;
        self.next = claims.next;
        self.digests.push(event.digest());
        Ok(Applied::Extended)
    }

    /// Whether a credential signed by `signer` is good for `author`'s entry `seq`: always under
    /// the current key; under a retired key only up to the author's cut-off; not yet under a
    /// key the log held does not name (a rotation to it may still be on its way).
    pub fn allows(&self, signer: MemberId, author: MemberId, seq: u64) -> Result<(), Error> {
        if signer == self.current {
            return Ok(());
        }
        let Some(cutoffs) = self.retired.get(&signer) else {
            return Err(Error::KeyNotInLog {
                org: self.org,
                key: signer,
            });
        };
        let last_valid_seq = cutoffs.get(&author).copied().unwrap_or(0);
        if seq <= last_valid_seq {
            return Ok(());
        }
        Err(Error::KeyRetired {
            org: self.org,
            key: signer,
            last_valid_seq,
        })
    }

    /// The cut-offs a retired key was given, by author.
    pub fn cutoffs_of(&self, retired: &MemberId) -> Option<&HashMap<MemberId, u64>> {
        self.retired.get(retired)
    }

    /// Whether `key` signed for the organisation at some point (current or retired).
    pub fn knows_key(&self, key: &MemberId) -> bool {
        *key == self.current || self.retired.contains_key(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> SecretKey {
        SecretKey::from_seed([seed; 32])
    }

    #[test]
    fn a_rotation_needs_the_committed_key_and_retires_the_old_one_with_cutoffs() {
        let (k0, k1, k2) = (key(1), key(2), key(3));
        let inception = KeyEvent::incept(&k0, &k1.public(), Timestamp(1)).expect("incepts");
        let org = inception.founds().expect("founds");
        assert_ne!(org.0, k0.public(), "a new organisation's id is not its key");
        let mut state = KeyState::incept(org, &inception).expect("state");
        assert!(KeyEvent::rotate(&inception, &k2, &k1.public(), vec![], Timestamp(2)).is_err());
        let author = key(9).member_id();
        let cutoffs = vec![Cutoff {
            author,
            last_valid_seq: 3,
        }];
        let rotation =
            KeyEvent::rotate(&inception, &k1, &k2.public(), cutoffs, Timestamp(2)).expect("rot");
        assert_eq!(state.apply(&rotation).expect("applies"), Applied::Extended);
        assert_eq!(state.apply(&rotation).expect("again"), Applied::Held);
        assert!(state.allows(k1.member_id(), author, 99).is_ok());
        assert!(state.allows(k0.member_id(), author, 3).is_ok());
        assert!(state.allows(k0.member_id(), author, 4).is_err());
        assert!(state.allows(k0.member_id(), key(8).member_id(), 1).is_err());
        assert!(state.allows(key(7).member_id(), author, 1).is_err());
        let other = KeyEvent::rotate(&inception, &k1, &key(4).public(), vec![], Timestamp(3))
            .expect("a second history");
        assert_eq!(state.apply(&other).expect("seen"), Applied::Duplicity);
        assert!(state.duplicity);
    }

    #[test]
    fn an_adoption_keeps_the_id_and_a_gap_is_not_applied() {
        let (k0, k1, k2, k3) = (key(1), key(2), key(3), key(4));
        let adoption = KeyEvent::adopt(&k0, &k1.public(), Timestamp(1)).expect("adopts");
        assert_eq!(adoption.founds(), Some(k0.org_id()));
        let mut state = KeyState::incept(k0.org_id(), &adoption).expect("state");
        let first =
            KeyEvent::rotate(&adoption, &k1, &k2.public(), vec![], Timestamp(2)).expect("first");
        let second =
            KeyEvent::rotate(&first, &k2, &k3.public(), vec![], Timestamp(3)).expect("second");
        assert!(matches!(
            state.apply(&second),
            Err(Error::KeyLogGap {
                held: 0,
                offered: 2,
                ..
            })
        ));
        state.apply(&first).expect("first applies");
        state.apply(&second).expect("then the second");
        assert_eq!(state.current, k2.member_id());
    }

    #[test]
    fn a_tampered_event_is_refused() {
        let inception = KeyEvent::incept(&key(1), &key(2).public(), Timestamp(1)).expect("ok");
        let mut bytes = inception.as_bytes().to_vec();
        bytes[9] ^= 1;
        assert!(KeyEvent::decode(&bytes).is_err());
    }
}
