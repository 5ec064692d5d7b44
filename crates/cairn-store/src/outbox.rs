//! The outbox: entries written on this node that have reached no peer yet.

use cairn_core::EntryId;

use crate::{Error, Store, layout};

impl Store {
    /// Entries not yet shared with any peer, oldest insert first by id order.
    pub fn outbox(&self) -> Result<Vec<EntryId>, Error> {
        self.entries
            .scan_prefix([layout::OUTBOX])
            .keys()
            .map(|key| {
                layout::trailing_id(&key?)
                    .ok_or_else(|| Error::Corrupt("an outbox key is too short".into()))
            })
            .collect()
    }

    /// Notes that an entry has reached a peer.
    pub fn outbox_remove(&self, id: &EntryId) -> Result<(), Error> {
        self.entries.remove(layout::entry_key(layout::OUTBOX, id))?;
        Ok(())
    }
}
