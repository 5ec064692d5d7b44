//! The organisation's key event log from this home's side: publishing its newest event as an
//! entry, adopting a log (an organisation from before key logs keeps its id), and rotating to
//! the committed next key. Key events go in [`KEY_EVENT_SPACE`], which every node syncs
//! whatever spaces it joined, so every node that holds an organisation's entries can hold its
//! log too.

use cairn_core::kel::{Cutoff, KeyEvent, next_key_digest};
use cairn_core::{Draft, Kind, MemberId, SecretKey, Space, Timestamp};
use cairn_store::Filter;

use super::{PublishAs, Service, read};
use crate::Error;

/// The space every node syncs for key events, beside the ones it joined.
pub const KEY_EVENT_SPACE: &str = "key-events";

/// What a rotation did.
#[derive(Debug, Clone)]
pub struct Rotated {
    /// The new event's position in the log.
    pub seq: u64,
    /// The key that is current now.
    pub key: MemberId,
    /// How many authors' entries under the retired key stay valid (their cut-offs).
    pub cutoffs: usize,
}

/// This home's key log, for `cairn org` and the status page.
#[derive(Debug, Clone)]
pub struct KeyLogStatus {
    /// Events in this home's log file (0: none adopted).
    pub events: usize,
    /// Whether the organisation's id is its first key (an adopted log, or none).
    pub id_is_first_key: bool,
    pub current_key: MemberId,
    /// Whether the committed next key's file is still on this computer (it belongs offline).
    pub next_key_here: bool,
    /// Whether this node has seen two histories of the log.
    pub duplicity: bool,
}

impl Service {
    /// Takes this home's own key log into the store, so its entries are accepted even before
    /// the entries carrying the log's events are (back) in the store.
    pub fn import_key_log(&self) -> Result<(), Error> {
        let events = self.keystore.key_log()?;
        if !events.is_empty() {
            self.store.import_key_log(&self.own_org(), &events)?;
        }
        Ok(())
    }

    /// Publishes the newest event of this home's key log as an entry, if no entry of the
    /// store carries it. Only the newest can be signed here (the keys of earlier ones are
    /// retired); earlier ones reach peers from the entries that carried them.
    pub fn publish_key_log(&self) -> Result<bool, Error> {
        let events = self.keystore.key_log()?;
        let Some(newest) = events.last() else {
            return Ok(false);
        };
        self.import_key_log()?;
        let carried = Filter {
            kind: Some(Kind::KEY_EVENT),
            author: Some(newest.claims().key),
            ..Filter::default()
        };
        for held in self.store.newest(&carried) {
            if held?.body() == Some(newest.as_bytes()) {
                return Ok(false);
            }
        }
        let draft = Draft::key_event(newest, self.key_event_spaces()?, Timestamp::now());
        self.write(draft, &PublishAs::Organisation)?;
        Ok(true)
    }

    /// Adopts a key log for an organisation whose id is its key: one signed statement that
    /// keeps the id and commits to a new next key, written to the next-key file.
    pub fn adopt_key_log(&self) -> Result<KeyEvent, Error> {
        let held = self.keystore.key_log()?;
        if !held.is_empty() {
            return Err(Error::BadRequest(format!(
                "this organisation already has a key log ({} events); rotate with `cairn org rotate --next-key FILE`",
                held.len()
            )));
        }
        self.writable()?;
        let org = self.own_org();
        let signer = self.signer(&PublishAs::Organisation)?;
        if signer.key.org_id() != org {
            return Err(Error::BadRequest(
                "keys/org.key is not this organisation's id, and keys/org.kel is missing; restore the keys folder from a backup".into(),
            ));
        }
        let next = random_key()?;
        let event = KeyEvent::adopt(&signer.key, &next.public(), Timestamp::now())?;
        let name = &self.credential().claims().org_name;
        self.keystore.save_next_key(&next, org, name)?;
        self.keystore.save_key_log(std::slice::from_ref(&event))?;
        self.publish_key_log()?;
        Ok(event)
    }

    /// Rotates to `next_key`, the key the log committed to: publishes a rotation that makes
    /// it current, commits to a new next key (written to the next-key file), and states for
    /// every author of this home the last entry that stays valid under the retired key. The
    /// home's credentials are issued again under the new key.
    pub fn rotate_key(&self, next_key: &SecretKey) -> Result<Rotated, Error> {
        let mut events = self.keystore.key_log()?;
        let Some(last) = events.last().cloned() else {
            return Err(Error::BadRequest(
                "this organisation has no key log yet; adopt one with `cairn org adopt` first"
                    .into(),
            ));
        };
        if next_key_digest(&next_key.public()) != last.claims().next {
            return Err(Error::BadRequest(
                "that is not the next key this organisation committed to; use the next-key file written when it was created or last rotated".into(),
            ));
        }
        self.writable()?;
        let org = self.own_org();
        let held_seq = self.store.key_log(&org).map(|held| held.seq);
        if held_seq != Some(last.claims().seq) {
            return Err(Error::BadRequest(format!(
                "this node's store does not hold the organisation's key log up to event {}; start the node with a peer so it syncs, then rotate",
                last.claims().seq
            )));
        }
        let current = self.signer(&PublishAs::Organisation)?.key;
        let mut authors = vec![current.member_id(), self.me.key.member_id()];
        authors.extend(self.keystore.members()?.into_iter().map(|m| m.member));
        let mut cutoffs = Vec::with_capacity(authors.len());
        for author in authors {
            cutoffs.push(Cutoff {
                author,
                // The gap-free start of the chain only, as a revocation keeps.
                last_valid_seq: self.store.contiguous_head(&author)?,
            });
        }
        let after = random_key()?;
        let rotation =
            KeyEvent::rotate(&last, next_key, &after.public(), cutoffs, Timestamp::now())?;
        let name = self.credential().claims().org_name.clone();
        // The log and the new next key first: until org.key is replaced, the old key still
        // signs, and the rotation is not yet published.
        events.push(rotation.clone());
        self.keystore.save_key_log(&events)?;
        self.keystore.save_next_key(&after, org, &name)?;
        self.keystore.replace_org_key(next_key, &name)?;
        self.keystore.reissue_credentials(next_key)?;
        self.publish_key_log()?;
        Ok(Rotated {
            seq: rotation.claims().seq,
            key: next_key.member_id(),
            cutoffs: rotation.claims().cutoffs.len(),
        })
    }

    /// This home's key log and where its keys are.
    pub fn key_log_status(&self) -> Result<KeyLogStatus, Error> {
        let events = self.keystore.key_log()?;
        let org = self.own_org();
        Ok(KeyLogStatus {
            events: events.len(),
            id_is_first_key: events.first().is_none_or(|first| first.claims().adopts),
            current_key: self.store.org_key(&org),
            next_key_here: self.keystore.next_key_path().exists(),
            duplicity: self.store.key_log(&org).is_some_and(|log| log.duplicity),
        })
    }

    /// The spaces a key event goes in: the key-event space and the joined ones (at most
    /// eight in all).
    fn key_event_spaces(&self) -> Result<Vec<Space>, Error> {
        let mut spaces = vec![Space::new(KEY_EVENT_SPACE)?];
        for name in self.spaces() {
            if spaces.len() >= cairn_core::entry::MAX_SPACES {
                break;
            }
            let space = Space::new(&name)?;
            if !spaces.contains(&space) {
                spaces.push(space);
            }
        }
        Ok(spaces)
    }

    /// Refuses while a restore holds publishing back.
    fn writable(&self) -> Result<(), Error> {
        if read(&self.state).hold_until_synced {
            return Err(Error::BadRequest(
                "this home was restored from a backup and has not caught up with a peer yet; start the node with a peer first (or run `cairn restore --confirm`)".into(),
            ));
        }
        Ok(())
    }
}

fn random_key() -> Result<SecretKey, Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|err| Error::Task(format!("no randomness for a new key: {err}")))?;
    Ok(SecretKey::from_seed(seed))
}
