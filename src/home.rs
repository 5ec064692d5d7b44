//! The Cairn home directory: where the identity, keys, configuration and store live, and the
//! rules for creating and reading them (home 0700, secret keys 0600, never overwritten).
//!
//! ```text
//! HOME/                 0700
//!   config.toml         commented settings
//!   keys/               0700
//!     org.key           0600  the organisation's current secret key
//!     org.next.key      0600  the committed next key: move it offline (a recovery sheet)
//!     org.kel                 the organisation's key event log (public)
//!     member.key        0600  your member secret key
//!     member.credential       the org-signed membership credential (public)
//!     node.key          0600  the node's network key (its peer id), made by `cairn node`
//!   store/              the sled entry store
//!   node-state.json     spaces the node joined and peers it knows
//!   api.address         while a node runs: its local API address
//!   api.token           while a node runs (0600): the API token, new at every start
//! ```

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use cairn_core::kel::KeyEvent;
use cairn_core::{Credential, CredentialClaims, SecretKey, Space, Timestamp};
use cairn_node::service::keystore::{Keystore, credential_text, read_credential};
use cairn_store::Store;
use serde::Deserialize;

/// A home directory, located but not necessarily initialised.
#[derive(Debug, Clone)]
pub struct Home {
    root: PathBuf,
}

/// The keys this home publishes with.
#[derive(Debug)]
pub struct Identity {
    pub member_key: SecretKey,
    pub credential: Credential,
}

/// Settings read from `config.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub publish: PublishConfig,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub node: NodeConfig,
    #[serde(default)]
    pub relay: RelayConfig,
    #[serde(default)]
    pub web: WebSection,
}

/// `[web]`: the web page on the organisation's network (see docs/operating.md).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSection {
    /// Where to serve it (`--web` wins), e.g. "192.168.1.20:8443"; unset: not served.
    #[serde(default)]
    pub address: Option<String>,
    /// Host names members reach the node by, for the certificate and the Host check.
    #[serde(default)]
    pub names: Vec<String>,
    /// The admin's own certificate chain and key (PEM), instead of one the node makes.
    #[serde(default)]
    pub certificate: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Behind a reverse proxy on this machine: the HTTPS address members use, e.g.
    /// "https://cairn.example.org"; the page then listens as plain HTTP on a loopback
    /// `address` for the proxy.
    #[serde(default)]
    pub proxy_url: Option<String>,
}

impl WebSection {
    /// The page's network setup from this section and `--web`, if it is served.
    pub fn config(&self, flag: Option<String>) -> anyhow::Result<Option<cairn_node::WebConfig>> {
        use anyhow::Context as _;
        let Some(address) = flag.or_else(|| self.address.clone()) else {
            return Ok(None);
        };
        let address = address.parse().with_context(|| {
            format!("--web {address:?} is not an address like 192.168.1.20:8443")
        })?;
        let tls = match (&self.proxy_url, &self.certificate, &self.key) {
            (Some(public_url), None, None) => cairn_node::WebTls::Proxy {
                public_url: public_url.clone(),
            },
            (None, Some(certificate), Some(key)) => cairn_node::WebTls::Files {
                certificate: certificate.clone(),
                key: key.clone(),
            },
            (None, None, None) => cairn_node::WebTls::OwnCertificate,
            _ => anyhow::bail!(
                "[web] in config.toml: give `certificate` and `key` together, or `proxy_url` alone, or none of them for a certificate the node makes"
            ),
        };
        Ok(Some(cairn_node::WebConfig {
            address,
            tls,
            names: self.names.clone(),
        }))
    }
}

/// `[node]`: every `cairn node` flag has a setting here; flags win.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    #[serde(default = "default_listen")]
    pub listen: Vec<String>,
    #[serde(default = "default_api")]
    pub api: String,
    #[serde(default)]
    pub peers: Vec<String>,
    #[serde(default)]
    pub external: Vec<String>,
    #[serde(default = "default_true")]
    pub mdns: bool,
    #[serde(default = "default_true")]
    pub kademlia: bool,
    #[serde(default = "default_true")]
    pub upnp: bool,
    #[serde(default)]
    pub allow_remote_api: bool,
    #[serde(default = "default_sync_interval")]
    pub sync_interval_secs: u64,
    /// kB a second read from one stranger's connection, and from all strangers' together;
    /// unset, the network layer's defaults.
    #[serde(default)]
    pub stranger_read_kb: Option<u32>,
    #[serde(default)]
    pub strangers_read_kb: Option<u32>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            api: default_api(),
            peers: Vec::new(),
            external: Vec::new(),
            mdns: true,
            kademlia: true,
            upnp: true,
            allow_remote_api: false,
            sync_interval_secs: default_sync_interval(),
            stranger_read_kb: None,
            strangers_read_kb: None,
        }
    }
}

/// `[relay]`: the relay this node may offer to nodes that cannot be reached directly.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    #[serde(default)]
    pub offer: bool,
    #[serde(default = "default_max_reservations")]
    pub max_reservations: usize,
    #[serde(default = "default_max_circuits")]
    pub max_circuits: usize,
    #[serde(default = "default_max_circuit_minutes")]
    pub max_circuit_minutes: u64,
    #[serde(default = "default_max_circuit_mb")]
    pub max_circuit_mb: u64,
}

impl Default for RelayConfig {
    fn default() -> Self {
        Self {
            offer: false,
            max_reservations: default_max_reservations(),
            max_circuits: default_max_circuits(),
            max_circuit_minutes: default_max_circuit_minutes(),
            max_circuit_mb: default_max_circuit_mb(),
        }
    }
}

impl RelayConfig {
    /// The limits of the relay this node offers, if it offers one.
    pub fn limits(&self, offer: bool) -> Option<cairn_net::RelayLimits> {
        (self.offer || offer).then(|| cairn_net::RelayLimits {
            max_reservations: self.max_reservations,
            max_circuits: self.max_circuits,
            max_circuit_duration: Duration::from_secs(self.max_circuit_minutes.saturating_mul(60)),
            max_circuit_bytes: self.max_circuit_mb.saturating_mul(1 << 20),
            ..cairn_net::RelayLimits::default()
        })
    }
}

fn default_max_reservations() -> usize {
    cairn_net::RelayLimits::default().max_reservations
}

fn default_max_circuits() -> usize {
    cairn_net::RelayLimits::default().max_circuits
}

fn default_max_circuit_minutes() -> u64 {
    cairn_net::RelayLimits::default()
        .max_circuit_duration
        .as_secs()
        / 60
}

fn default_max_circuit_mb() -> u64 {
    cairn_net::RelayLimits::default().max_circuit_bytes >> 20
}

fn default_listen() -> Vec<String> {
    vec![
        "/ip4/0.0.0.0/tcp/7411".into(),
        "/ip4/0.0.0.0/udp/7411/quic-v1".into(),
    ]
}

fn default_api() -> String {
    "127.0.0.1:0".into()
}

fn default_sync_interval() -> u64 {
    30
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    #[serde(default = "default_spaces")]
    pub default_spaces: Vec<String>,
}

impl Default for PublishConfig {
    fn default() -> Self {
        Self {
            default_spaces: default_spaces(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    #[serde(default = "default_cache_mb")]
    pub cache_mb: u64,
    #[serde(default = "default_max_entries_per_org")]
    pub max_entries_per_org: u64,
    #[serde(default = "default_stranger_entries")]
    pub stranger_entries: u64,
    #[serde(default = "default_stranger_kb")]
    pub stranger_kb: u64,
    #[serde(default = "default_strangers_mb")]
    pub strangers_mb: u64,
    #[serde(default = "default_max_disk_mb")]
    pub max_disk_mb: u64,
    #[serde(default = "default_min_free_disk_mb")]
    pub min_free_disk_mb: u64,
    #[serde(default = "default_max_refused")]
    pub max_refused: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            cache_mb: default_cache_mb(),
            max_entries_per_org: default_max_entries_per_org(),
            stranger_entries: default_stranger_entries(),
            stranger_kb: default_stranger_kb(),
            strangers_mb: default_strangers_mb(),
            max_disk_mb: default_max_disk_mb(),
            min_free_disk_mb: default_min_free_disk_mb(),
            max_refused: default_max_refused(),
        }
    }
}

const KB: u64 = 1_000;
const MB: u64 = 1_000_000;

fn default_budgets() -> cairn_store::Budgets {
    cairn_store::Budgets::default()
}

fn default_stranger_entries() -> u64 {
    default_budgets().stranger_entries
}

fn default_stranger_kb() -> u64 {
    default_budgets().stranger_bytes / KB
}

fn default_strangers_mb() -> u64 {
    default_budgets().strangers_bytes / MB
}

fn default_max_disk_mb() -> u64 {
    default_budgets().max_disk_bytes / MB
}

fn default_min_free_disk_mb() -> u64 {
    default_budgets().min_free_disk_bytes / MB
}

fn default_max_refused() -> u64 {
    default_budgets().max_refused
}

fn default_spaces() -> Vec<String> {
    vec![Space::DEFAULT.to_string()]
}

fn default_cache_mb() -> u64 {
    cairn_store::Config::default().cache_capacity / (1024 * 1024)
}

fn default_max_entries_per_org() -> u64 {
    cairn_store::Config::default().max_entries_per_org
}

const CONFIG_TEMPLATE: &str = r#"# Cairn configuration. Lines starting with '#' are comments.
# Every setting here is optional; the values shown are the defaults.

[publish]
# The spaces new entries go to when `cairn publish` is given no --space.
# A space is a community or field, such as "commons", "mental-health" or "housing".
default_spaces = ["commons"]

[store]
# Memory the entry store may use for its cache, in MiB.
cache_mb = 64
# The most entries kept from any one organisation; more are refused (a storage quota).
max_entries_per_org = 1000000
# Budgets for strangers: organisations this node does not follow (`cairn follow`). Each
# stranger may fill at most stranger_entries entries and stranger_kb kB here, and all
# strangers together at most strangers_mb MB; what is over is refused (and remembered as
# refused, so it is not fetched again) until you follow the organisation.
stranger_entries = 100
stranger_kb = 1000
strangers_mb = 100
# The disk ceiling: entries from other organisations are refused while the store takes
# more than max_disk_mb MB, or while its disk has less than min_free_disk_mb MB free.
# Nothing stored is dropped, and your own organisation's entries still go in.
max_disk_mb = 20000
min_free_disk_mb = 1000
# Refused entries remembered, so sync does not fetch them again; the oldest go first.
max_refused = 200000

[node]
# Addresses `cairn node` listens on for other organisations' nodes (TCP and QUIC).
listen = ["/ip4/0.0.0.0/tcp/7411", "/ip4/0.0.0.0/udp/7411/quic-v1"]
# The local API for the cairn command and the web page. Port 0 picks a free port; the node
# writes the real address to api.address. Only loopback addresses are allowed unless
# allow_remote_api is true.
api = "127.0.0.1:0"
allow_remote_api = false
# Peers to connect to at start and reconnect to whenever the link drops.
peers = []
# Addresses other nodes reach this one at, if it has a public address or the router forwards
# its port, e.g. ["/ip4/203.0.113.7/tcp/7411"]. Without them, peers find out by dialling back.
external = []
# Find other Cairn nodes on the local network automatically.
mdns = true
# Learn peers of peers (Kademlia) and connect to them.
kademlia = true
# Ask the router to forward the listening ports to this node (UPnP), where it offers to.
upnp = true
# Seconds between catch-up syncs with each connected peer (a sync also runs whenever a peer
# connects, and on `cairn sync`).
sync_interval_secs = 30
# How fast the node reads what peers it did not dial and does not keep send it unasked (their
# gossip), in kB a second: from each such connection, and from all of them together. A flood
# from strangers is read this slowly and waits on their side, so it cannot take the node from
# the peers it keeps. Answers to this node's own sync requests are read at full speed.
# stranger_read_kb = 128
# strangers_read_kb = 256

[relay]
# Offer a relay to nodes that cannot be reached directly (behind a router): they keep a place
# on it, and others reach them through it until hole punching connects them directly. Turn it
# on only on a node that others can reach (`cairn status` says "reachable directly").
offer = false
# What it carries at most: nodes holding a place, relayed connections in all, and each
# relayed connection's length and bytes (then the nodes open a new one if they need it).
max_reservations = 128
max_circuits = 32
max_circuit_minutes = 30
max_circuit_mb = 256

[web]
# Serve the web page to your organisation's network over HTTPS, so members use it from their
# own computers (`cairn member invite NAME`). Unset: only on this computer (`cairn open`).
# address = "192.168.1.20:8443"
# Host names members reach this computer by (beside the address), for the certificate.
# names = ["cairn.office.example"]
# Your own certificate chain and key (PEM files). Without them the node makes a certificate
# on first start; `cairn status` shows its fingerprint.
# certificate = "/etc/cairn/page.pem"
# key = "/etc/cairn/page.key"
# Behind a reverse proxy on this computer: the address members type. `address` is then a
# loopback one, such as "127.0.0.1:8080" (see docs/operating.md).
# proxy_url = "https://cairn.example.org"
"#;

impl Home {
    /// The home named by `--home` / `CAIRN_HOME`, or the platform's data directory.
    pub fn locate(explicit: Option<PathBuf>) -> Result<Self> {
        let root = match explicit {
            Some(root) => root,
            None => dirs::data_dir()
                .context("could not find a data directory for this user; pass --home DIR or set CAIRN_HOME")?
                .join("cairn"),
        };
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }

    fn org_key_path(&self) -> PathBuf {
        self.keys_dir().join("org.key")
    }

    fn member_key_path(&self) -> PathBuf {
        self.keys_dir().join("member.key")
    }

    fn credential_path(&self) -> PathBuf {
        self.keys_dir().join("member.credential")
    }

    pub fn node_key_path(&self) -> PathBuf {
        self.keys_dir().join("node.key")
    }

    /// Where the node keeps its runtime files in this home.
    pub fn node_files(&self) -> cairn_node::Files {
        cairn_node::Files::in_home(&self.root)
    }

    /// The node's network key, created on first use.
    pub fn node_key(&self) -> Result<SecretKey> {
        let path = self.node_key_path();
        if !path.exists() {
            let key = SecretKey::from_seed(random_seed()?);
            write_new(
                &path,
                &key_file_text("this node's network identity", &key),
                0o600,
            )?;
        }
        read_key(&path)
    }

    /// Issues a new credential with new names, signed by the org key. Entries already published
    /// keep the names they were signed with.
    pub fn rename(&self, org_name: Option<&str>, member_name: Option<&str>) -> Result<Identity> {
        let old = self.load()?;
        let org_key = read_key(&self.org_key_path())?;
        let mut claims = old.credential.claims().clone();
        if let Some(org_name) = org_name {
            claims.org_name = org_name.trim().to_string();
        }
        if let Some(member_name) = member_name {
            claims.member_name = member_name.trim().to_string();
        }
        claims.issued = Timestamp::now();
        let credential = Credential::issue(&org_key, claims)
            .context("could not issue the renamed credential")?;
        let path = self.credential_path();
        let temporary = path.with_extension("credential.tmp");
        let _ = fs::remove_file(&temporary);
        write_new(&temporary, &credential_text(&credential), 0o644)?;
        fs::rename(&temporary, &path)
            .with_context(|| format!("could not replace {}", path.display()))?;
        Ok(Identity {
            member_key: old.member_key,
            credential,
        })
    }

    fn config_path(&self) -> PathBuf {
        self.root.join("config.toml")
    }

    pub fn store_path(&self) -> PathBuf {
        self.root.join("store")
    }

    pub fn is_initialised(&self) -> bool {
        self.org_key_path().exists()
    }

    /// Creates a new identity. Refuses if this home already holds one.
    pub fn init(&self, org_name: &str, member_name: &str) -> Result<Identity> {
        if self.is_initialised() {
            let existing = self
                .load()
                .map(|identity| format!(" for {:?}", identity.credential.claims().org_name));
            bail!(
                "{} already holds a Cairn identity{}; refusing to overwrite it. Use another --home, or move that folder away if you really mean to start over",
                self.root.display(),
                existing.unwrap_or_default()
            );
        }
        let org_key = SecretKey::from_seed(random_seed()?);
        let next_key = SecretKey::from_seed(random_seed()?);
        let member_key = SecretKey::from_seed(random_seed()?);
        // The organisation's id is the hash of its inception, which commits to the next key.
        let inception = KeyEvent::incept(&org_key, &next_key.public(), Timestamp::now())
            .context("could not sign the organisation's inception")?;
        let org = inception
            .founds()
            .context("an inception always founds an organisation")?;
        let credential = Credential::issue(
            &org_key,
            CredentialClaims {
                org,
                org_name: org_name.to_string(),
                member: member_key.member_id(),
                member_name: member_name.to_string(),
                issued: Timestamp::now(),
                expires: None,
            },
        )
        .context("could not issue your membership credential")?;

        create_private_dir(&self.root)?;
        create_private_dir(&self.keys_dir())?;
        let config = self.config()?;
        self.create_store(&config)?;
        write_new(
            &self.org_key_path(),
            &key_file_text(&format!("the organisation {org_name:?}"), &org_key),
            0o600,
        )?;
        write_new(
            &self.member_key_path(),
            &key_file_text(&format!("member {member_name:?}"), &member_key),
            0o600,
        )?;
        write_new(
            &self.credential_path(),
            &credential_text(&credential),
            0o644,
        )?;
        let keystore = Keystore::new(self.keys_dir());
        keystore.save_key_log(std::slice::from_ref(&inception))?;
        keystore.save_next_key(&next_key, org, org_name)?;
        if !self.config_path().exists() {
            write_new(&self.config_path(), CONFIG_TEMPLATE, 0o600)?;
        }
        Ok(Identity {
            member_key,
            credential,
        })
    }

    /// Finishes a restore from a backup (whose files, with the hold on publishing in the node
    /// state, are in place): checks the identity is whole and creates an empty store (sync
    /// brings the entries back).
    pub fn restored(&self) -> Result<()> {
        self.load()
            .context("the backup's keys do not make a whole identity")?;
        let config = self.config()?;
        self.create_store(&config)
    }

    /// Lifts a restore's hold on publishing in the node state file, for a home whose node is
    /// not running (a running node lifts it once it has caught up).
    pub fn confirm_restore(&self) -> Result<()> {
        use cairn_node::service::state::State;
        let path = self.node_files().state;
        // No state file: nothing is held.
        if let Some(mut state) = State::load(&path)? {
            state.hold_until_synced = false;
            state.restore_heads.clear();
            state.save(&path)?;
        }
        Ok(())
    }

    /// Creates the store, or adopts an empty one left by an `init` that failed half-way.
    fn create_store(&self, config: &Config) -> Result<()> {
        let path = self.store_path();
        if path.exists() {
            let store = Store::open(&path, store_config(config))?;
            if store.count()? > 0 {
                bail!(
                    "{} holds entries but no identity; restore the keys folder from a backup instead of running init",
                    path.display()
                );
            }
            return Ok(());
        }
        Store::create(&path, store_config(config))
            .with_context(|| format!("could not create the store in {}", self.root.display()))?;
        Ok(())
    }

    /// Reads the identity, or explains how to create one.
    pub fn load(&self) -> Result<Identity> {
        if !self.is_initialised() {
            bail!(
                "{} holds no Cairn identity yet; run `cairn init --org \"Your organisation\"` first (or pass --home to use another home)",
                self.root.display()
            );
        }
        let org_key = read_key(&self.org_key_path())?;
        let member_key = read_key(&self.member_key_path())?;
        let credential_path = self.credential_path();
        let credential = read_credential(&credential_path)?;
        let claims = credential.claims();
        if credential.org_key() != org_key.member_id() || claims.member != member_key.member_id() {
            bail!(
                "{} does not belong to the keys beside it; restore the keys folder from a backup",
                credential_path.display()
            );
        }
        Ok(Identity {
            member_key,
            credential,
        })
    }

    /// Reads `config.toml`; a missing file means all defaults.
    pub fn config(&self) -> Result<Config> {
        let path = self.config_path();
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(err) => {
                return Err(err).with_context(|| format!("could not read {}", path.display()));
            }
        };
        toml::from_str(&text).with_context(|| {
            format!(
                "{} is not valid; fix the setting named above",
                path.display()
            )
        })
    }

    /// Opens this home's existing store, waiting a few seconds for another process to let it
    /// go.
    pub fn open_store(&self) -> Result<Store> {
        self.load()?;
        let config = self.config()?;
        Ok(Store::open(&self.store_path(), store_config(&config))?)
    }

    /// Opens this home's existing store at once, or fails with the store's `Locked` error if
    /// another process holds it.
    pub fn open_store_now(&self) -> Result<Store> {
        let config = self.config()?;
        let store_config = cairn_store::Config {
            lock_wait: Duration::ZERO,
            ..store_config(&config)
        };
        Ok(Store::open(&self.store_path(), store_config)?)
    }
}

fn store_config(config: &Config) -> cairn_store::Config {
    cairn_store::Config {
        cache_capacity: config.store.cache_mb.saturating_mul(1024 * 1024),
        lock_wait: Duration::from_secs(10),
        max_entries_per_org: config.store.max_entries_per_org,
        budgets: cairn_store::Budgets {
            stranger_entries: config.store.stranger_entries,
            stranger_bytes: config.store.stranger_kb.saturating_mul(KB),
            strangers_bytes: config.store.strangers_mb.saturating_mul(MB),
            max_disk_bytes: config.store.max_disk_mb.saturating_mul(MB),
            min_free_disk_bytes: config.store.min_free_disk_mb.saturating_mul(MB),
            max_refused: config.store.max_refused,
        },
    }
}

fn random_seed() -> Result<[u8; 32]> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|err| anyhow::anyhow!("the system random generator failed: {err}"))?;
    Ok(seed)
}

fn key_file_text(owner: &str, key: &SecretKey) -> String {
    format!(
        "# Cairn secret key of {owner}.\n# Whoever holds this file can publish as its owner: keep it private and back it up.\n{}\n",
        hex::encode(key.seed())
    )
}

fn read_key(path: &Path) -> Result<SecretKey> {
    Ok(cairn_node::service::keystore::read_key(path)?)
}

fn create_private_dir(path: &Path) -> Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .with_context(|| format!("could not create {}", path.display()))?;
    // `recursive` leaves an existing folder's mode alone; the home must not be readable by others.
    fs::set_permissions(path, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("could not make {} private", path.display()))
}

fn write_new(path: &Path, contents: &str, mode: u32) -> Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("could not create {}", path.display()))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("could not write {}", path.display()))
}
