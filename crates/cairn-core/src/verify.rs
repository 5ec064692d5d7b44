//! Validation: the checks an entry must pass before it is stored or relayed, cheapest first.
//!
//! Decoding (size, framing, version, encoding) happens in [`Entry::decode`]; a store then checks
//! for duplicates by id before any signature work; this module does the rest, in order:
//! header sanity → credential → entry signature → body. Every failure is its own [`Error`].
//!
//! Signatures follow one rule (see [`crate::signature`]) whether they are checked alone
//! ([`Verifier::verify`], for entries that arrive one at a time) or together
//! ([`Verifier::verify_many`], for sync batches), so every peer agrees on which entries are
//! valid however they arrived.

use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

use sha2::{Digest, Sha256};

use crate::body::{Profile, Reply, Response, Retraction, Revocation};
use crate::credential::CREDENTIAL_DOMAIN;
use crate::entry::{
    BodyHash, ENTRY_DOMAIN, Entry, Header, Kind, MAX_BODY_LEN, MAX_CLOCK_SKEW, MAX_REFS,
    MAX_SPACES, RefKind, Timestamp, check_space,
};
use crate::kel::KeyEvent;
use crate::signature::{self, PublicKey, Signed};
use crate::{Error, Story};

/// How many keys and credentials each cache holds before it starts over.
const CACHE_LIMIT: usize = 65_536;

/// Verifies entries, caching decompressed author keys and credentials that already verified.
#[derive(Debug, Default)]
pub struct Verifier {
    /// Decompressing a key costs about a tenth of a verification; authors repeat.
    keys: RwLock<HashMap<[u8; 32], PublicKey>>,
    /// SHA-256 of credential bytes whose org signature verified: one credential covers all of a
    /// member's entries, so it is checked once.
    credentials: RwLock<HashSet<[u8; 32]>>,
}

impl Verifier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs every check after decoding and the duplicate test.
    pub fn verify(&self, entry: &Entry, now: Timestamp) -> Result<(), Error> {
        let key = self.check_before_signature(entry, now)?;
        if !signature::verify_one(&entry_signed(entry, key)) {
            return Err(Error::BadSignature);
        }
        check_body(entry)
    }

    /// [`Verifier::verify`] for each entry, with the entry signatures checked in one batch
    /// (about half the cost of checking them one at a time). If the batch fails, each is
    /// checked alone to find the bad ones, so the results are exactly `verify`'s.
    pub fn verify_many(&self, entries: &[&Entry], now: Timestamp) -> Vec<Result<(), Error>> {
        let mut results = Vec::with_capacity(entries.len());
        let mut batch = Vec::with_capacity(entries.len());
        let mut batched = Vec::with_capacity(entries.len());
        for (slot, entry) in entries.iter().enumerate() {
            match self.check_before_signature(entry, now) {
                Ok(key) => {
                    batch.push(entry_signed(entry, key));
                    batched.push(slot);
                    results.push(Ok(()));
                }
                Err(err) => results.push(Err(err)),
            }
        }
        if !signature::verify_batch(&batch) {
            for (signed, &slot) in batch.iter().zip(&batched) {
                if !signature::verify_one(signed) {
                    results[slot] = Err(Error::BadSignature);
                }
            }
        }
        for (result, entry) in results.iter_mut().zip(entries) {
            if result.is_ok() {
                *result = check_body(entry);
            }
        }
        results
    }

    /// The checks that come before the entry signature's: the header and the credential.
    /// Returns the author's key.
    fn check_before_signature(&self, entry: &Entry, now: Timestamp) -> Result<PublicKey, Error> {
        check_header(entry.header(), now)?;
        self.check_credential(entry)?;
        self.key(&entry.header().author.0)
    }

    fn check_credential(&self, entry: &Entry) -> Result<(), Error> {
        let header = entry.header();
        let claims = entry.credential().claims();
        if claims.member != header.author {
            return Err(Error::CredentialMismatch {
                credential_member: claims.member.to_string(),
                author: header.author.to_string(),
            });
        }
        let skew = MAX_CLOCK_SKEW.as_millis() as u64;
        if header.created.0.saturating_add(skew) < claims.issued.0 {
            return Err(Error::CredentialNotValid(
                "the entry was created before the credential was issued",
            ));
        }
        if let Some(expires) = claims.expires
            && header.created > expires
        {
            return Err(Error::CredentialNotValid(
                "the entry was created after the credential expired",
            ));
        }
        let digest = credential_digest(entry);
        if read(&self.credentials).contains(&digest) {
            return Ok(());
        }
        let (signed, signature) = entry.credential().split();
        let credential = Signed {
            key: self.key(&entry.credential().org_key().0)?,
            domain: CREDENTIAL_DOMAIN,
            message: signed,
            signature,
        };
        if !signature::verify_one(&credential) {
            return Err(Error::BadCredentialSignature);
        }
        insert_bounded(&mut write(&self.credentials), digest);
        Ok(())
    }

    /// Remembers what an entry checked earlier proved, as checking it would have: its
    /// author's key, decoded, and its credential's organisation signature. For a store
    /// warming up from entries it checked when it stored them; entries that arrive later are
    /// still checked in full, except for an identical credential's signature.
    pub fn remember_checked(&self, entry: &Entry) -> Result<(), Error> {
        self.key(&entry.header().author.0)?;
        insert_bounded(&mut write(&self.credentials), credential_digest(entry));
        Ok(())
    }

    /// Whether `entry`'s credential is one this verifier has seen pass (or was told of), so
    /// its signature is not checked again.
    pub fn remembers_credential(&self, entry: &Entry) -> bool {
        read(&self.credentials).contains(&credential_digest(entry))
    }

    /// The decoded key, refusing encodings that are not points, non-canonical encodings (so
    /// each key has one id) and small-order (weak) keys, on first sight.
    fn key(&self, bytes: &[u8; 32]) -> Result<PublicKey, Error> {
        if let Some(key) = read(&self.keys).get(bytes) {
            return Ok(*key);
        }
        let key = PublicKey::parse(bytes).ok_or_else(|| Error::BadKey(hex::encode(bytes)))?;
        let mut keys = write(&self.keys);
        if keys.len() >= CACHE_LIMIT {
            keys.clear();
        }
        keys.insert(*bytes, key);
        Ok(key)
    }
}

/// Sequence numbers at or above this are refused, so `seq + 1` never overflows.
pub const MAX_SEQ: u64 = 1 << 62;

/// Header checks that need no keys: chain fields, clock, spaces, references, body length.
pub fn check_header(header: &Header, now: Timestamp) -> Result<(), Error> {
    match (header.seq, header.prev) {
        (0, _) => return Err(Error::BadChain("seq must start at 1")),
        (MAX_SEQ.., _) => {
            return Err(Error::BadChain(
                "seq is implausibly large (2^62 or more); no chain is that long",
            ));
        }
        (1, Some(_)) => {
            return Err(Error::BadChain(
                "the first entry (seq 1) must not name a previous entry",
            ));
        }
        (2.., None) => {
            return Err(Error::BadChain(
                "an entry after seq 1 must name its previous entry",
            ));
        }
        _ => {}
    }
    let max_ms = MAX_CLOCK_SKEW.as_millis() as u64;
    let ahead_ms = header.created.0.saturating_sub(now.0);
    if ahead_ms > max_ms {
        return Err(Error::ClockSkew { ahead_ms, max_ms });
    }
    if header.spaces.is_empty() || header.spaces.len() > MAX_SPACES {
        return Err(Error::BadField {
            field: "spaces",
            reason: format!(
                "{} spaces; an entry belongs to 1 to {MAX_SPACES}",
                header.spaces.len()
            ),
        });
    }
    for space in &header.spaces {
        check_space(space.as_str())?;
    }
    if header.spaces.windows(2).any(|pair| pair[0] >= pair[1]) {
        return Err(Error::BadField {
            field: "spaces",
            reason: "must be sorted and unique".into(),
        });
    }
    if header.refs.len() > MAX_REFS {
        return Err(Error::BadField {
            field: "refs",
            reason: format!("{} references; at most {MAX_REFS}", header.refs.len()),
        });
    }
    if header.body_len as usize > MAX_BODY_LEN {
        return Err(Error::TooLarge {
            what: "body",
            len: header.body_len as usize,
            max: MAX_BODY_LEN,
        });
    }
    Ok(())
}

/// The body must be present, of the signed length and hash, and readable for its kind.
fn check_body(entry: &Entry) -> Result<(), Error> {
    let header = entry.header();
    let Some(body) = entry.body() else {
        return Err(Error::BodyMissing);
    };
    if body.len() != header.body_len as usize {
        return Err(Error::BodyLengthMismatch {
            expected: header.body_len,
            actual: body.len(),
        });
    }
    if BodyHash::of(body) != header.body_hash {
        return Err(Error::BodyHashMismatch);
    }
    match header.kind {
        kind if kind.has_story() => {
            Story::decode(body)?;
            if let Some(link) = header.refs.iter().find(|r| !r.kind.is_story_link()) {
                return Err(Error::BadField {
                    field: "refs",
                    reason: format!(
                        "a {kind} entry may link only with builds-on, contradicts or tried-too, \
                         not {}",
                        ref_name(link.kind)
                    ),
                });
            }
        }
        Kind::AMEND => {
            Story::decode(body)?;
            exactly_one_ref(header, RefKind::AMENDS)?;
        }
        Kind::REPLY => {
            Reply::decode(body)?;
            exactly_one_ref(header, RefKind::REPLY_TO)?;
        }
        Kind::RESPONSE => {
            Response::decode(body)?;
            exactly_one_ref(header, RefKind::RESPONDS_TO)?;
        }
        Kind::RETRACT => {
            Retraction::decode(body)?;
            exactly_one_ref(header, RefKind::RETRACTS)?;
        }
        Kind::PROFILE => {
            Profile::decode(body)?;
        }
        Kind::KEY_EVENT => check_key_event(entry, body)?,
        Kind::REVOKE => {
            let revocation = Revocation::decode(body)?;
            // Only the organisation itself, signing with its own key, removes members.
            if header.author != entry.credential().org_key() {
                return Err(Error::BadField {
                    field: "author",
                    reason: "a revocation must be signed by the organisation's own key".into(),
                });
            }
            if revocation.member == header.author {
                return Err(Error::BadField {
                    field: "revocation member",
                    reason: "an organisation cannot revoke itself".into(),
                });
            }
        }
        _ => {}
    }
    Ok(())
}

/// A key event travels as an entry by the key it makes current, credentialed by that key, and
/// an inception in an entry of the organisation it founds.
fn check_key_event(entry: &Entry, body: &[u8]) -> Result<(), Error> {
    let event = KeyEvent::decode(body)?;
    let claims = event.claims();
    let bad = |reason: &str| {
        Err(Error::BadField {
            field: "key event",
            reason: reason.into(),
        })
    };
    if entry.header().author != claims.key || entry.credential().org_key() != claims.key {
        return bad("a key event must be written and credentialed by the key it makes current");
    }
    if let Some(org) = event.founds()
        && org != entry.credential().claims().org
    {
        return bad("this inception founds another organisation than the entry's");
    }
    if !entry.header().refs.is_empty() {
        return bad("a key event has no references");
    }
    Ok(())
}

/// Replies and responses point at exactly one entry, with the matching reference kind.
fn exactly_one_ref(header: &Header, expected: RefKind) -> Result<(), Error> {
    match header.refs.as_slice() {
        [only] if only.kind == expected => Ok(()),
        refs => Err(Error::BadField {
            field: "refs",
            reason: format!(
                "a {} must have exactly one {} reference; it has {}",
                header.kind,
                ref_name(expected),
                refs.iter()
                    .map(|r| ref_name(r.kind))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

fn ref_name(kind: RefKind) -> String {
    kind.name()
        .map_or_else(|| format!("ref-{}", kind.0), str::to_string)
}

/// The entry signature of `entry`, by `key`.
fn entry_signed(entry: &Entry, key: PublicKey) -> Signed<'_> {
    let (message, signature) = entry.split_signed();
    Signed {
        key,
        domain: ENTRY_DOMAIN,
        message,
        signature,
    }
}

/// What the credential cache holds of an entry's credential: the SHA-256 of its bytes.
fn credential_digest(entry: &Entry) -> [u8; 32] {
    Sha256::digest(entry.credential().as_bytes()).into()
}

fn insert_bounded(set: &mut HashSet<[u8; 32]>, digest: [u8; 32]) {
    if set.len() >= CACHE_LIMIT {
        set.clear();
    }
    set.insert(digest);
}

// A poisoned lock only means another thread panicked mid-insert into a cache of values that
// are each valid on their own, so the data is still sound.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
