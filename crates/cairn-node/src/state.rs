//! The node's small persisted state: the spaces it joined and the peers it knows. Written
//! whole to a temporary file and renamed over the old one, so it is never half-written.

use std::collections::BTreeSet;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::Error;

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub spaces: BTreeSet<String>,
    /// Multiaddresses, each ending in `/p2p/<peer id>` where known.
    pub peers: BTreeSet<String>,
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

    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let temporary = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec_pretty(self).map_err(|err| Error::Task(err.to_string()))?;
        std::fs::write(&temporary, bytes)
            .and_then(|()| std::fs::rename(&temporary, path))
            .map_err(|source| Error::File {
                action: "write",
                path: path.to_path_buf(),
                source,
            })
    }
}
