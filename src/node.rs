//! `cairn node`: builds the node's configuration from the home, `config.toml` and flags, then
//! runs the daemon until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use cairn_net::Multiaddr;

use crate::cli::NodeArgs;
use crate::home::Home;

const DEFAULT_ORG: &str = "Unnamed organisation";

pub fn run(home: &Home, args: NodeArgs) -> Result<()> {
    limit_malloc_arenas();
    init_logging(None);
    if !home.is_initialised() {
        home.init(DEFAULT_ORG, &format!("Member of {DEFAULT_ORG}"))?;
        eprintln!(
            "Created a new Cairn identity for \"{DEFAULT_ORG}\" in {}.\nName your organisation with `cairn rename --org \"Your organisation\"`, then restart the node.",
            home.root().display()
        );
    }
    let node = config(home, args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
        .context("could not start the async runtime")?;
    let signals = shutdown_signal(&runtime);
    let result = runtime.block_on(cairn_node::run(node, signals));
    // Work still on a blocking thread (a search index catch-up, say) is only a cache of the
    // store, which is flushed: leave it rather than keep the process alive for it.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    result?;
    eprintln!("Node stopped.");
    Ok(())
}

/// glibc gives threads that allocate at the same time arenas of their own (up to 8 per core).
/// In a node, sled's long-lived cache pages end up interleaved with short-lived entry frames
/// in all of them, and the arenas fragment: a 100,000-entry bootstrap peaked at about 300 MB
/// with glibc's default and about 170 MB with two arenas, at the same speed (see
/// docs/performance.md). glibc reads the limit only when a process starts, so the node
/// re-executes itself once with `MALLOC_ARENA_MAX=2` unless the variable is already set (set
/// it to choose another value). If that fails, the node carries on with the default.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn limit_malloc_arenas() {
    use std::os::unix::process::CommandExt;
    const VARIABLE: &str = "MALLOC_ARENA_MAX";
    if std::env::var_os(VARIABLE).is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    // `exec` returns only if it failed.
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env(VARIABLE, "2")
        .exec();
    eprintln!("cairn: could not restart with {VARIABLE}=2 ({err}); carrying on without it");
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn limit_malloc_arenas() {}

/// How long the process waits, once the node has stopped, for work still on blocking threads.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// Threads for the store, search and sync work the node runs off its async threads. Each
/// allocating thread keeps memory of its own, so fewer threads hold less at peak; the work
/// queues for a free thread instead.
const MAX_BLOCKING_THREADS: usize = 8;

/// The node's configuration from the home, its `config.toml` and the flags.
pub fn config(home: &Home, args: NodeArgs) -> Result<cairn_node::Config> {
    let identity = home.load()?;
    let config = home.config()?;
    let node_config = &config.node;
    let listen = if args.listen.is_empty() {
        node_config.listen.clone()
    } else {
        args.listen
    };
    let peers: Vec<String> = node_config
        .peers
        .iter()
        .cloned()
        .chain(args.peers)
        .collect();
    let api = args.api.unwrap_or_else(|| node_config.api.clone());
    let api_address: SocketAddr = api
        .parse()
        .with_context(|| format!("--api {api:?} is not an address like 127.0.0.1:7412"))?;

    let node_key = home.node_key()?;
    let keypair = cairn_net::Keypair::ed25519_from_bytes(node_key.seed())
        .context("the node key is not usable")?;
    let mut net = cairn_net::Config::new(keypair);
    net.listen = parse_addresses("--listen", &listen)?;
    net.known_peers = parse_addresses("--peer", &peers)?;
    let external: Vec<String> = node_config
        .external
        .iter()
        .cloned()
        .chain(args.external)
        .collect();
    net.external = parse_addresses("--external", &external)?;
    net.mdns = node_config.mdns && !args.no_mdns;
    net.kademlia = node_config.kademlia && !args.no_kademlia;
    net.upnp = node_config.upnp && !args.no_upnp;
    net.relay = config.relay.limits(args.relay);
    let bytes_per_second = |kb: u32| kb.saturating_mul(1_000).max(1_000);
    if let Some(kb) = node_config.stranger_read_kb {
        net.strangers_read.per_connection = bytes_per_second(kb);
    }
    if let Some(kb) = node_config.strangers_read_kb {
        net.strangers_read.strangers = bytes_per_second(kb);
    }

    let store = Arc::new(home.open_store()?);
    let node = cairn_node::Config {
        store,
        member_key: identity.member_key,
        credential: identity.credential,
        net,
        api_address,
        allow_remote_api: node_config.allow_remote_api || args.allow_remote_api,
        web: config.web.config(args.web)?,
        default_spaces: config.publish.default_spaces.clone(),
        sync_interval: std::time::Duration::from_secs(
            args.sync_interval
                .unwrap_or(node_config.sync_interval_secs)
                .max(1),
        ),
        files: home.node_files(),
    };
    Ok(node)
}

fn parse_addresses(flag: &str, addresses: &[String]) -> Result<Vec<Multiaddr>> {
    addresses
        .iter()
        .map(|address| {
            address.parse().with_context(|| {
                format!("{flag} {address:?} is not a multiaddress like /ip4/192.0.2.7/tcp/7411")
            })
        })
        .collect()
}

/// Listens for SIGINT (Ctrl-C) and SIGTERM on `runtime` from the moment it is called; the
/// future it returns ends at the first of them. Registering at once means a signal that
/// arrives while the node is still starting is not lost to the default action (which would
/// kill the process without a clean stop).
pub fn shutdown_signal(
    runtime: &tokio::runtime::Runtime,
) -> impl std::future::Future<Output = ()> + use<> {
    use tokio::signal::unix::{SignalKind, signal};
    let _in_runtime = runtime.enter();
    let listen = |kind: SignalKind, name: &str| {
        signal(kind)
            .inspect_err(|err| tracing::warn!("cannot listen for {name}: {err}"))
            .ok()
    };
    let mut interrupt = listen(SignalKind::interrupt(), "SIGINT");
    let mut terminate = listen(SignalKind::terminate(), "SIGTERM");
    async move {
        tokio::select! {
            () = received(interrupt.as_mut()) => {}
            () = received(terminate.as_mut()) => {}
        }
    }
}

/// Waits for the next delivery of a signal being listened for; forever if it is not.
async fn received(signal: Option<&mut tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending::<()>().await,
    }
}

/// Logs to stderr at `RUST_LOG`'s level, or else at `default` (info if `None`).
pub fn init_logging(default: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            default.unwrap_or("info,libp2p_gossipsub=warn,libp2p_mdns=warn,libp2p_kad=error"),
        )
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}
