//! Organisations' key event logs as this store holds them: each event that extended a log
//! (`k org seq`), the first second event seen at a position (`K org seq`, duplicity
//! evidence), and in memory the [`KeyState`] each log replays to. The write path asks
//! [`Store::key_log_check`] whether an entry's credential key is good for it, and commits a
//! key event's change once its entry is stored; a rotation then removes the entries held
//! that its cut-offs leave invalid.

use std::collections::HashMap;

use cairn_core::kel::{Applied, KeyEvent, KeyState};
use cairn_core::{Entry, Kind, MemberId, OrgId};

use crate::read::id_from;
use crate::{Error, Store, layout, lock};

/// What storing a key event's entry does to its organisation's log.
#[derive(Debug)]
pub(crate) struct KeyLogChange {
    state: KeyState,
    event: KeyEvent,
    applied: Applied,
}

impl KeyLogChange {
    /// Whether the event was a second history (evidence, not a change of keys).
    pub(crate) fn is_duplicity(&self) -> bool {
        self.applied == Applied::Duplicity
    }
}

/// One organisation's key log as held here, for status pages and `cairn org`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLogView {
    pub org: OrgId,
    /// The newest event's position: 0 until the first rotation.
    pub seq: u64,
    pub current: MemberId,
    /// Whether the organisation's id is its first key (a log adopted later).
    pub adopted: bool,
    /// Whether two different events were seen at one position.
    pub duplicity: bool,
}

impl Store {
    /// Replays every held log into memory (logs are few and short).
    pub(crate) fn load_key_logs(&self) -> Result<(), Error> {
        let mut states: HashMap<OrgId, KeyState> = HashMap::new();
        let mut adopted = HashMap::new();
        for item in self.entries.scan_prefix([layout::KEY_EVENT]) {
            let (key, value) = item?;
            let org = key
                .get(1..33)
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .map(OrgId)
                .ok_or_else(|| Error::Corrupt("a key event key is too short".into()))?;
            let event = KeyEvent::decode(&value)
                .map_err(|err| Error::Corrupt(format!("a held key event: {err}")))?;
            match states.get_mut(&org) {
                Some(state) => {
                    state.apply(&event).map_err(|err| {
                        Error::Corrupt(format!("a held key log no longer replays: {err}"))
                    })?;
                }
                None => {
                    adopted.insert(org, event.claims().adopts);
                    let state = KeyState::incept(org, &event).map_err(|err| {
                        Error::Corrupt(format!("a held key log no longer replays: {err}"))
                    })?;
                    states.insert(org, state);
                }
            }
        }
        for item in self.entries.scan_prefix([layout::DUPLICITY]) {
            let (key, _) = item?;
            if let Some(state) = key
                .get(1..33)
                .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                .and_then(|org| states.get_mut(&OrgId(org)))
            {
                state.duplicity = true;
            }
        }
        *lock(&self.key_logs) = KeyLogs { states, adopted };
        Ok(())
    }

    /// Whether `entry`'s credential key may sign for it under its organisation's log, and for a
    /// key event, the change storing it makes (committed by [`Store::commit_key_log`]).
    pub(crate) fn key_log_check(&self, entry: &Entry) -> Result<Option<KeyLogChange>, Error> {
        let header = entry.header();
        let org = entry.credential().claims().org;
        let signer = entry.credential().org_key();
        let logs = lock(&self.key_logs);
        let held = logs.states.get(&org);
        if header.kind == Kind::KEY_EVENT
            && let Some(Ok(event)) = entry.body().map(KeyEvent::decode)
        {
            let (state, applied) = match held {
                None if event.claims().seq == 0 => {
                    (KeyState::incept(org, &event)?, Applied::Extended)
                }
                None => return Err(cairn_core::Error::KeyLogUnknown(org).into()),
                Some(state) => {
                    let mut state = state.clone();
                    let applied = state.apply(&event)?;
                    (state, applied)
                }
            };
            return Ok(Some(KeyLogChange {
                state,
                event,
                applied,
            }));
        }
        match held {
            Some(state) => state.allows(signer, header.author, header.seq)?,
            None if signer.0 != org.0 => return Err(cairn_core::Error::KeyLogUnknown(org).into()),
            None => {}
        }
        Ok(None)
    }

    /// Records a key event whose entry was stored: the log's new state, or the evidence of a
    /// second history; a rotation then removes the entries its cut-offs leave invalid. Called
    /// under the write lock.
    pub(crate) fn commit_key_log(&self, change: KeyLogChange) -> Result<(), Error> {
        let KeyLogChange {
            state,
            event,
            applied,
        } = change;
        let org = state.org;
        let key = layout::key_event_key(
            match applied {
                Applied::Duplicity => layout::DUPLICITY,
                Applied::Extended | Applied::Held => layout::KEY_EVENT,
            },
            &org,
            event.claims().seq,
        );
        match applied {
            Applied::Held => return Ok(()),
            Applied::Duplicity => {
                if !self.entries.contains_key(&key)? {
                    self.entries.insert(key, event.as_bytes())?;
                }
                tracing::warn!(
                    org = %org,
                    seq = event.claims().seq,
                    "organisation {} signed two different key events at position {}: its key log is duplicitous; the first one seen stays",
                    org.short(12),
                    event.claims().seq
                );
            }
            Applied::Extended => {
                self.entries.insert(key, event.as_bytes())?;
            }
        }
        let retired = (applied == Applied::Extended && event.claims().seq > 0)
            .then(|| {
                // The key the rotation retired: the one current before it.
                lock(&self.key_logs)
                    .states
                    .get(&org)
                    .map(|before| before.current)
            })
            .flatten();
        let mut logs = lock(&self.key_logs);
        if event.claims().seq == 0 && applied == Applied::Extended {
            logs.adopted.insert(org, event.claims().adopts);
        }
        logs.states.insert(org, state.clone());
        drop(logs);
        if let Some(retired) = retired {
            self.remove_retired(&state, retired)?;
        }
        Ok(())
    }

    /// Removes the held entries of `state`'s organisation whose credentials `retired` signed
    /// and whose authors' cut-offs they pass: what a leaked key wrote before this node heard
    /// of the rotation.
    fn remove_retired(&self, state: &KeyState, retired: MemberId) -> Result<(), Error> {
        let org = state.org;
        let mut invalid = Vec::new();
        let mut check = |entry: Entry| {
            let credential = entry.credential();
            if credential.claims().org == org
                && credential.org_key() == retired
                && state
                    .allows(retired, entry.header().author, entry.header().seq)
                    .is_err()
            {
                invalid.push(entry);
            }
        };
        // Authors with cut-offs: only their chains past the cut-off.
        let listed = state.cutoffs_of(&retired).cloned().unwrap_or_default();
        let mut accounted = 0u64;
        for (author, last_valid_seq) in &listed {
            for item in self.entries.scan_prefix(layout::chain_prefix(author)) {
                let (key, value) = item?;
                let seq = key
                    .get(33..41)
                    .and_then(|bytes| <[u8; 8]>::try_from(bytes).ok())
                    .map_or(0, u64::from_be_bytes);
                if seq <= *last_valid_seq {
                    accounted += 1;
                    continue;
                }
                if let Some(entry) = self.get(&id_from(&value)?)? {
                    if entry.credential().claims().org == org {
                        accounted += 1;
                    }
                    check(entry);
                }
            }
        }
        // Entries by authors the rotation did not name (members a thief credentialed): found
        // by a scan of every record, only when the organisation holds more entries than the
        // named chains account for.
        let held = self.org_entry_count(&org)?;
        if held > accounted {
            for item in self.entries.scan_prefix([layout::RECORD]) {
                let (key, record) = item?;
                if layout::Record::parse(&record).is_some_and(|record| record.value.org == org)
                    && let Some(id) = layout::trailing_id(&key)
                    && let Some(entry) = self.get(&id)?
                    && !listed.contains_key(&entry.header().author)
                {
                    check(entry);
                }
            }
        }
        if !invalid.is_empty() {
            tracing::info!(
                org = %org,
                removed = invalid.len(),
                "removed {} entries of organisation {} signed under a key it has since retired",
                invalid.len(),
                org.short(12)
            );
        }
        self.remove_forks(|entry| {
            entry.credential().claims().org == org
                && entry.credential().org_key() == retired
                && state
                    .allows(retired, entry.header().author, entry.header().seq)
                    .is_err()
        })?;
        self.remove_entries(&invalid)
    }

    /// The key log held for `org`, if any.
    pub fn key_log(&self, org: &OrgId) -> Option<KeyLogView> {
        let logs = lock(&self.key_logs);
        logs.states.get(org).map(|state| KeyLogView {
            org: *org,
            seq: state.seq(),
            current: state.current,
            adopted: logs.adopted.get(org).copied().unwrap_or(false),
            duplicity: state.duplicity,
        })
    }

    /// Takes in an organisation's log from its own home, so the home's entries are accepted
    /// before the entries carrying its events come back by sync (after a restore). Each event
    /// checks alone, and the first must found `org`.
    pub fn import_key_log(&self, org: &OrgId, events: &[KeyEvent]) -> Result<(), Error> {
        let _writes = lock(&self.write_lock);
        for event in events {
            let held = lock(&self.key_logs).states.get(org).cloned();
            let (state, applied) = match held {
                None => (KeyState::incept(*org, event)?, Applied::Extended),
                Some(mut state) => {
                    let applied = state.apply(event)?;
                    (state, applied)
                }
            };
            self.commit_key_log(KeyLogChange {
                state,
                event: event.clone(),
                applied,
            })?;
        }
        self.flush()
    }

    /// The key that signs as `org` itself now: its log's current key, or (no log held) its id.
    pub fn org_key(&self, org: &OrgId) -> MemberId {
        lock(&self.key_logs)
            .states
            .get(org)
            .map_or(MemberId(org.0), |state| state.current)
    }

    /// The replayed state of `org`'s log, if held.
    pub fn key_state(&self, org: &OrgId) -> Option<KeyState> {
        lock(&self.key_logs).states.get(org).cloned()
    }

    /// The events of `org`'s log held here, in order.
    pub fn key_events(&self, org: &OrgId) -> Result<Vec<KeyEvent>, Error> {
        let mut events = Vec::new();
        for item in self
            .entries
            .scan_prefix(&layout::key_event_key(layout::KEY_EVENT, org, 0)[..33])
        {
            let (_, value) = item?;
            events.push(
                KeyEvent::decode(&value)
                    .map_err(|err| Error::Corrupt(format!("a held key event: {err}")))?,
            );
        }
        Ok(events)
    }
}

impl Store {
    /// How many entries of `org` are held.
    fn org_entry_count(&self, org: &OrgId) -> Result<u64, Error> {
        let mut state = lock(&self.policy);
        Ok(self
            .org_index(&mut state.orgs)?
            .get(org)
            .map_or(0, |stats| stats.count))
    }
}

/// The key logs held in memory.
#[derive(Debug, Default)]
pub(crate) struct KeyLogs {
    states: HashMap<OrgId, KeyState>,
    /// Whether each log's inception adopted an existing id.
    adopted: HashMap<OrgId, bool>,
}
