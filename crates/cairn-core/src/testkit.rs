//! Deterministic fixtures for tests, benchmarks and the protocol test vectors: keys from fixed
//! seeds, credentials issued at a fixed time, and chains of story entries. Nothing here is used
//! by the node itself.

use crate::{
    Credential, CredentialClaims, Draft, Entry, EntryId, Error, Kind, SecretKey, Space, Story,
    Timestamp,
};

/// The fixed time fixtures issue credentials at: 2023-11-14T22:13:20Z.
pub const EPOCH: Timestamp = Timestamp(1_700_000_000_000);

/// A member of an organisation, with keys from fixed seeds.
#[derive(Debug, Clone)]
pub struct Author {
    pub org_key: SecretKey,
    pub key: SecretKey,
    pub credential: Credential,
}

impl Author {
    /// An author whose org key seed is 32 bytes of `org_seed` and member key seed 32 bytes of
    /// `member_seed`.
    pub fn from_seeds(org_seed: u8, member_seed: u8, org_name: &str, member_name: &str) -> Self {
        let org_key = SecretKey::from_seed([org_seed; 32]);
        let key = SecretKey::from_seed([member_seed; 32]);
        let claims = CredentialClaims {
            org: org_key.org_id(),
            org_name: org_name.into(),
            member: key.member_id(),
            member_name: member_name.into(),
            issued: EPOCH,
            expires: None,
        };
        // The fixed names are valid, so issuing cannot fail.
        let credential = Credential::issue(&org_key, claims)
            .unwrap_or_else(|err| panic!("fixture credential: {err}"));
        Self {
            org_key,
            key,
            credential,
        }
    }

    /// A member `key` of organisation `org`, credentialed by `org_key` (the key the
    /// organisation's log makes current, or its id itself before it has a log).
    pub fn issued(
        org: crate::OrgId,
        org_key: SecretKey,
        key: SecretKey,
        org_name: &str,
        member_name: &str,
        issued: Timestamp,
    ) -> Self {
        let claims = CredentialClaims {
            org,
            org_name: org_name.into(),
            member: key.member_id(),
            member_name: member_name.into(),
            issued,
            expires: None,
        };
        let credential = Credential::issue(&org_key, claims)
            .unwrap_or_else(|err| panic!("fixture credential: {err}"));
        Self {
            org_key,
            key,
            credential,
        }
    }

    /// The default fixture author: Riverside Trust's Ana.
    pub fn ana() -> Self {
        Self::from_seeds(1, 2, "Riverside Trust", "Ana Silva")
    }

    /// Signs any draft as entry `seq` after `prev`.
    pub fn sign(&self, seq: u64, prev: Option<EntryId>, draft: Draft) -> Result<Entry, Error> {
        Entry::sign(&self.key, &self.credential, seq, prev, draft)
    }

    /// A story entry at `seq` after `prev`, in `commons`.
    pub fn entry(
        &self,
        seq: u64,
        prev: Option<EntryId>,
        kind: Kind,
        story: &Story,
        created: Timestamp,
    ) -> Result<Entry, Error> {
        let spaces = vec![Space::new(Space::DEFAULT)?];
        Entry::sign(
            &self.key,
            &self.credential,
            seq,
            prev,
            Draft::story(kind, story, spaces, created)?,
        )
    }

    /// `count` chained entries (seq 1..=count) whose bodies are about `body_len` bytes,
    /// created one second apart from `start`.
    pub fn chain(
        &self,
        count: usize,
        start: Timestamp,
        body_len: usize,
    ) -> Result<Vec<Entry>, Error> {
        let mut entries: Vec<Entry> = Vec::with_capacity(count);
        for index in 0..count {
            let prev = entries.last().map(Entry::id);
            let created = Timestamp(start.0 + index as u64 * 1_000);
            let kind = [Kind::LEARNING, Kind::FAILURE, Kind::QUESTION][index % 3];
            entries.push(self.entry(
                index as u64 + 1,
                prev,
                kind,
                &story(index, body_len),
                created,
            )?);
        }
        Ok(entries)
    }
}

/// A story whose encoded body is about `body_len` bytes.
pub fn story(index: usize, body_len: usize) -> Story {
    let filler = "We kept a shared notebook of what went wrong and why. ";
    let mut text = String::with_capacity(body_len);
    while text.len() + filler.len() < body_len.saturating_sub(200) {
        text.push_str(filler);
    }
    Story {
        title: format!("Entry number {index}"),
        summary: "What happened, in plain words.".into(),
        text,
        learned: "Ask people early.".into(),
        tags: vec!["volunteers".into(), format!("batch-{}", index % 10)],
        language: "en".into(),
        ..Story::default()
    }
}

/// The entries of the store the fuzz targets read: three authors (each its own organisation)
/// with a chain of 40 entries each, from [`EPOCH`], bodies of about 300 bytes; then the chains
/// of `extra_authors` more authors. The same call always gives the same entries, so the
/// targets and the seeds written for them (`fuzz_seeds`) agree.
pub fn fuzz_store_entries(extra_authors: u8) -> Result<Vec<Entry>, Error> {
    let mut entries = Vec::new();
    for seed in 1..=3 + extra_authors {
        let author = Author::from_seeds(seed, seed + 100, "Fixed org", "Fixed member");
        entries.extend(author.chain(40, EPOCH, 300)?);
    }
    Ok(entries)
}
