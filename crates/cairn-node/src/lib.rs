//! The Cairn node: every operation on a home's entries written once (the service), the daemon
//! that wires the store to the network and validates every gossiped entry before it is stored
//! or relayed, and the local HTTP API and web page it serves.
//!
//! Layers, each importing only those below it:
//! - [`service`]: every operation on entries, members, profiles, policy and spaces, once,
//!   synchronous; the CLI calls it directly when no node runs. It owns the store, the keystore
//!   (`service::keystore`), the state file and the search index;
//! - [`daemon`]: the running node: start, run and stop with a cancellation signal and tracked
//!   tasks; gossip and its verdicts, the outbox, catch-up sync, the indexer, peers;
//! - `http`: the API on loopback (token and Host checks, thin handlers) and the web page for
//!   members (accounts, sessions, CSRF, one file per page), on loopback and, with `--web`, on
//!   the organisation's network over HTTPS;
//! - [`wire`]: typed results to and from the JSON shapes of `cairn-api`, at the HTTP edge;
//! - [`thread`]: replies, responses and links gathered under an entry;
//! - [`ticket`]: invite tickets.
//!
//! Invariant: an entry is relayed only after the store accepted it (`Verdict::Accept` is sent
//! only for entries that were stored with their body or kept as fork proofs).

pub mod daemon;
pub mod hello;
mod http;
pub mod service;
pub mod thread;
pub mod ticket;
pub mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use cairn_core::{Credential, SecretKey};
use cairn_store::Store;

pub use daemon::{Running, Shared, start, validate_and_store};
pub use http::network::{WebConfig, WebTls};
/// The compose page's form, read as the page reads it (for the fuzz targets and tests).
pub use http::web::compose::ComposeForm;
pub use service::{PublishAs, Service};

/// What can go wrong running the node.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Net(#[from] cairn_net::Error),

    #[error(transparent)]
    Store(#[from] cairn_store::Error),

    #[error(transparent)]
    Entry(#[from] cairn_core::Error),

    #[error(transparent)]
    Search(#[from] cairn_search::Error),

    #[error("could not {action} {path}: {source}")]
    File {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    #[error(
        "refusing to serve the API on {0}, which is not a loopback address: anyone who can reach it could try the token. Use 127.0.0.1, or pass --allow-remote-api if you really mean it"
    )]
    RemoteApi(SocketAddr),

    #[error("could not serve the API on {address}: {source}; is another program using that port?")]
    ApiBind {
        address: SocketAddr,
        source: std::io::Error,
    },

    #[error(
        "could not serve the page on {address}: {source}; is another program using that port, or is the address not one of this computer's?"
    )]
    WebBind {
        address: SocketAddr,
        source: std::io::Error,
    },

    #[error("{0}")]
    BadRequest(String),

    #[error("refused: {0}")]
    Forbidden(String),

    #[error("the invite ticket is not valid: {0}")]
    Ticket(String),

    #[error("an internal task failed: {0}")]
    Task(String),

    #[error("the node is stopping; try again once it has restarted")]
    Stopping,
}

/// Where the node keeps its runtime files inside the home.
#[derive(Debug, Clone)]
pub struct Files {
    /// Written at start: the API's actual address.
    pub api_address: PathBuf,
    /// Written at start (0600): the API token, new at every start.
    pub api_token: PathBuf,
    /// Joined spaces and known peers.
    pub state: PathBuf,
    /// The full-text search index (a directory; rebuilt from the store when missing).
    pub search_index: PathBuf,
    /// The home's `keys/` folder: members' keys and the organisation's key.
    pub keys: PathBuf,
    /// The page's own folder (0700): members' accounts, and its certificate.
    pub web: PathBuf,
}

impl Files {
    /// The standard places inside a node's home directory.
    pub fn in_home(home: &std::path::Path) -> Self {
        Self {
            api_address: home.join("api.address"),
            api_token: home.join("api.token"),
            state: home.join("node-state.json"),
            search_index: home.join("search"),
            keys: home.join("keys"),
            web: home.join("web"),
        }
    }
}

/// Everything the node needs to run.
#[derive(Debug)]
pub struct Config {
    pub store: Arc<Store>,
    /// The member key that entries published through the API are signed with.
    pub member_key: SecretKey,
    pub credential: Credential,
    pub net: cairn_net::Config,
    pub api_address: SocketAddr,
    pub allow_remote_api: bool,
    /// Serve the page on the organisation's network too.
    pub web: Option<WebConfig>,
    /// Spaces to join when the state file does not exist yet.
    pub default_spaces: Vec<String>,
    /// How often to sync with each connected peer (also on every new connection).
    pub sync_interval: std::time::Duration,
    pub files: Files,
}

/// Runs the node until `shutdown` completes, then stops the API, closes connections and
/// flushes the store.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    daemon::run(config, shutdown).await
}
