//! The node's small persisted state: the spaces it joined, the peers it knows and the
//! single-use invitations it accepted. Written
//! whole to a synced temporary file and renamed over the old one, so it is never half-written,
//! even by a power cut.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub spaces: BTreeSet<String>,
    /// Multiaddresses, each ending in `/p2p/<peer id>` where known: peers added by hand or by
    /// an invitation, kept until forgotten.
    pub peers: BTreeSet<String>,
    /// Every peer this node dialled and reached, by peer id (see `address_book`).
    #[serde(default)]
    pub address_book: BTreeMap<String, super::address_book::BookEntry>,
    /// Single-use invitations this node accepted: nonce (hex) → when the invitation expires
    /// (ms), after which it is forgotten, since it would be refused as expired anyway.
    #[serde(default)]
    pub used_invitations: BTreeMap<String, u64>,
    /// Set by a restore from a backup: nothing is published until a catch-up sync brought
    /// this organisation's own entries back (or the admin confirms none exist elsewhere),
    /// since a chain continued from a stale backup would fork.
    #[serde(default)]
    pub hold_until_synced: bool,
    /// With the hold: each of this home's chains (member id in hex) and the newest entry
    /// number the backup knew of; the hold stays until the store holds at least those.
    #[serde(default)]
    pub restore_heads: BTreeMap<String, u64>,
}

impl State {
    /// Reads the state, or `None` if the file does not exist yet.
    pub fn load(path: &Path) -> Result<Option<Self>, Error> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|err| Error::File {
                    action: "read (it is not valid JSON; fix or delete it)",
                    path: path.to_path_buf(),
                    source: std::io::Error::other(err),
                }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::File {
                action: "read",
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// Writes the state durably: a temporary file beside it, synced, renamed over the old
    /// one, and the folder synced so the rename itself survives a power cut. At every moment
    /// the path holds either the old state or the new one, whole.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|err| Error::Task(err.to_string()))?;
        write_durably(path, &bytes).map_err(|source| Error::File {
            action: "write",
            path: path.to_path_buf(),
            source,
        })
    }
}

/// Replaces the file at `path` with `bytes` so that a crash or power cut at any point leaves
/// either the old contents or the new ones.
fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let temporary = path.with_extension("json.tmp");
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(bytes)?;
    // Without this, the rename can reach the disk before the data, and a power cut leaves an
    // empty file under the real name.
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, path)?;
    let folder = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::File::open(folder)?.sync_all()
}
