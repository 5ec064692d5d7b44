//! The running node: the composition root that starts, runs and stops everything, and the
//! parts it wires together.
//!
//! - `shared`: the state the parts share ([`Shared`]), reached through its methods;
//! - `tasks`: the stop signal every long task checks, and the tasks stopping waits for;
//! - `events`: the network event handler;
//! - `gossip`: publishing to topics, and the verdicts on what peers gossip;
//! - `outbox`: sharing entries written while no peer could take them;
//! - `sync`, `syncs`, `serve`: catch-up sync with peers, its bookkeeping, and serving peers'
//!   requests;
//! - `indexer`: keeping the search index in step with the store.
//!
//! Stopping is bounded: the stop signal goes out first, so syncs end between pages and a sync
//! request waiting on the API returns; every task the node started is then waited for up to
//! [`STOP_DEADLINE`] and aborted after it, and the store is flushed last.

mod events;
mod gossip;
mod indexer;
mod outbox;
mod serve;
pub(crate) mod shared;
pub(crate) mod sync;
mod syncs;
mod tasks;
mod unreadable;

use std::future::Future;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;
use std::time::Duration;

pub use gossip::validate_and_store;
pub use serve::answer_sync_request;
pub use shared::Shared;
use tasks::blocking;

use crate::service::Service;
use crate::{Config, Error, Files};

/// How long stopping waits for the node's tasks (syncs, serving) before aborting them, and
/// for each of its long-lived parts.
pub const STOP_DEADLINE: Duration = Duration::from_millis(1_500);

/// How often the page's accounts are checked against revocations made elsewhere (by the CLI
/// with the node stopped, or on another node of the organisation).
const ACCOUNT_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// A started node; stop it with [`Running::stop`].
#[derive(Debug)]
pub struct Running {
    pub shared: Arc<Shared>,
    pub api_address: std::net::SocketAddr,
    files: Files,
    /// Tells the API server to finish its requests and stop.
    stop_api: tokio::sync::oneshot::Sender<()>,
    api: tokio::task::JoinHandle<std::io::Result<()>>,
    /// The page on the organisation's network, if served: its address, stop signal and task.
    pub web_address: Option<std::net::SocketAddr>,
    web: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
    /// Tells the event handler to stop.
    stop_events: tokio::sync::oneshot::Sender<()>,
    events: tokio::task::JoinHandle<Result<(), Error>>,
    network: tokio::task::JoinHandle<()>,
    indexer: tokio::task::JoinHandle<()>,
    outbox: tokio::task::JoinHandle<()>,
}

/// Runs the node until `shutdown` completes (or its event handler fails), then stops it.
pub(crate) async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
    let mut running = start(config).await?;
    let failed = tokio::select! {
        () = shutdown => None,
        result = &mut running.events => Some(result.map_err(|err| Error::Task(err.to_string())).and_then(|result| result)),
    };
    let stopped = running.stop().await;
    match failed {
        Some(Err(err)) => Err(err),
        _ => stopped,
    }
}

/// Starts the service, the network, the event handler, the indexer, the outbox and the API.
pub async fn start(config: Config) -> Result<Running, Error> {
    if !config.api_address.ip().is_loopback() && !config.allow_remote_api {
        return Err(Error::RemoteApi(config.api_address));
    }
    let files = config.files.clone();
    let service = blocking(move || {
        let search = Arc::new(crate::service::search::open(&config.files.search_index)?);
        let service = Service::new(
            crate::service::Config {
                store: config.store,
                member_key: config.member_key,
                credential: config.credential,
                files: config.files,
                default_spaces: config.default_spaces,
            },
            Some(search),
        )?;
        service.save_state()?;
        // A rotation made with the node stopped is in the store already; this covers a
        // newest key event whose entry was lost (a restore confirmed without a peer).
        if !service.publishing_held() {
            service.publish_key_log()?;
        }
        // Before going online: the first sync with a peer starts as soon as it connects, and
        // should find each joined space's items and the per-organisation counts already read.
        service.store().warm(&service.synced_spaces())?;
        Ok(Arc::new(service))
    })
    .await?;
    let mut net_config = config.net.clone();
    let own_peer_id = net_config.keypair.public().to_peer_id().to_bytes();
    let binding = {
        let service = service.clone();
        blocking(move || service.node_binding(&own_peer_id)).await?
    };
    net_config.hello = cairn_net::HelloSource::new(move || {
        crate::hello::Hello::new(binding.as_ref())
            .encode()
            .unwrap_or_default()
    });
    // Peers that have not worked for a month are dropped before the node redials the rest.
    let pruning = service.clone();
    let pruned = blocking(move || {
        pruning.prune_address_book(cairn_core::Timestamp::now(), &Default::default())
    })
    .await?;
    log_pruned(pruned.len());
    net_config.known_peers.extend(
        service
            .known_peers()
            .iter()
            .filter_map(|address| address.parse().ok()),
    );
    let (client, events, network_loop) = cairn_net::new(net_config)?;
    let peer_id = network_loop.local_peer_id();
    let network = tokio::spawn(network_loop.run());
    for space in service.synced_spaces() {
        client.subscribe(space).await?;
    }
    let shared = Arc::new(Shared::new(service, client));

    let listener = tokio::net::TcpListener::bind(config.api_address)
        .await
        .map_err(|source| Error::ApiBind {
            address: config.api_address,
            source,
        })?;
    let api_address = listener.local_addr().map_err(|source| Error::ApiBind {
        address: config.api_address,
        source,
    })?;
    let token = random_token()?;
    let (written, secret) = (files.clone(), token.clone());
    blocking(move || {
        write_private(&written.api_token, &format!("{secret}\n"))?;
        write_private(&written.api_address, &format!("{api_address}\n"))
    })
    .await?;
    tracing::info!(%api_address, %peer_id, "node running");

    let org_name = shared.credential().claims().org_name.clone();
    let (web_dir, web_config) = (files.web.clone(), config.web.clone());
    let (accounts, prepared) = blocking(move || {
        let accounts = crate::http::web::accounts::Accounts::open(web_dir.join("accounts.json"))?;
        let prepared = web_config
            .as_ref()
            .map(|web| crate::http::network::prepare(web, &web_dir, &org_name))
            .transpose()?;
        Ok((accounts, prepared))
    })
    .await?;
    let pages = crate::http::Pages {
        sessions: Arc::new(crate::http::web::session::Sessions::new()),
        accounts: Arc::new(accounts),
        network: prepared
            .as_ref()
            .map(|prepared| Arc::new(prepared.page.clone())),
        feed_key: crate::http::web::feed_key(&token).into(),
    };
    // Accounts of members revoked while the node was stopped close before anyone logs in;
    // those revoked from elsewhere while it runs, within a check interval.
    crate::http::web::members::close_revoked_accounts(&shared, &pages.accounts, &pages.sessions)
        .await?;
    shared.tasks().spawn({
        let (shared, pages) = (shared.clone(), pages.clone());
        async move {
            let mut checks = tokio::time::interval(ACCOUNT_CHECK_INTERVAL);
            checks.tick().await;
            loop {
                tokio::select! {
                    () = shared.tasks().stopping() => break,
                    _ = checks.tick() => {}
                }
                let closed = crate::http::web::members::close_revoked_accounts(
                    &shared,
                    &pages.accounts,
                    &pages.sessions,
                )
                .await;
                if let Err(err) = closed {
                    tracing::warn!("could not check the page accounts against revocations: {err}");
                }
            }
        }
    });
    let (web_address, web) = match (&config.web, prepared) {
        (Some(web_config), Some(prepared)) => {
            let listener = tokio::net::TcpListener::bind(web_config.address)
                .await
                .map_err(|source| Error::WebBind {
                    address: web_config.address,
                    source,
                })?;
            let address = listener.local_addr().map_err(|source| Error::WebBind {
                address: web_config.address,
                source,
            })?;
            let router = crate::http::network_router(shared.clone(), &pages, &prepared);
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let task = tokio::spawn(crate::http::network::serve(
                listener,
                router,
                prepared.tls,
                stopped,
            ));
            tracing::info!(%address, url = %prepared.page.url, fingerprint = prepared.page.fingerprint.as_deref().unwrap_or("(the proxy's)"), "serving the page to the organisation's network");
            (Some(address), Some((stop, task)))
        }
        _ => (None, None),
    };

    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let router = crate::http::router(shared.clone(), token, api_address, pages);
    let api = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = api_stopped.await;
            })
            .await
    });

    let indexer = tokio::spawn({
        let shared = shared.clone();
        async move {
            tokio::select! {
                () = shared.tasks().stopping() => {}
                () = indexer::run(shared.clone()) => {}
            }
        }
    });
    let outbox = tokio::spawn(outbox::run(
        shared.store().clone(),
        shared.client().clone(),
        shared.outbox().clone(),
        shared.tasks().clone(),
    ));
    // Entries written while the node was down wait for a peer in their spaces.
    for space in shared.synced_spaces() {
        shared.outbox().wake(&space);
    }
    let (stop_events, events_stopped) = tokio::sync::oneshot::channel::<()>();
    let handler = tokio::spawn(events::handle_network(
        shared.clone(),
        events,
        config.sync_interval,
        async {
            let _ = events_stopped.await;
        },
    ));
    Ok(Running {
        shared,
        api_address,
        files,
        stop_api,
        api,
        web_address,
        web,
        stop_events,
        events: handler,
        network,
        indexer,
        outbox,
    })
}

impl Running {
    /// Stops the node within a bounded time: signals every task to stop, stops the API, the
    /// event handler, the indexer, the outbox and the syncs (aborting what outlives
    /// [`STOP_DEADLINE`]), closes every connection, removes the API files and flushes the
    /// store.
    pub async fn stop(self) -> Result<(), Error> {
        tracing::info!("shutting down");
        let tasks = self.shared.tasks().clone();
        tasks.signal_stop();
        let _ = self.stop_api.send(());
        settle("the API", self.api).await;
        if let Some((stop, task)) = self.web {
            let _ = stop.send(());
            settle("the page on the network", task).await;
        }
        let files = self.files.clone();
        let _ = blocking(move || {
            for path in [&files.api_address, &files.api_token] {
                let _ = std::fs::remove_file(path);
            }
            Ok(())
        })
        .await;
        let _ = self.stop_events.send(());
        // `run` may have awaited it to its end already; a finished handle is not polled again.
        if !self.events.is_finished() {
            settle("the event handler", self.events).await;
        }
        settle("the indexer", self.indexer).await;
        settle("the outbox", self.outbox).await;
        let aborted = tasks.stop(STOP_DEADLINE).await;
        if aborted > 0 {
            tracing::warn!(
                aborted,
                "tasks still running at the stop deadline were aborted"
            );
        }
        // Dropping the last client ends the network task, which closes every connection.
        let store = self.shared.store().clone();
        drop(self.shared);
        settle("the network", self.network).await;
        blocking(move || Ok(store.flush()?)).await
    }
}

/// Waits up to [`STOP_DEADLINE`] for a part of the node to end, then aborts it.
async fn settle<T>(what: &str, mut task: tokio::task::JoinHandle<T>) {
    if tokio::time::timeout(STOP_DEADLINE, &mut task)
        .await
        .is_err()
    {
        tracing::warn!("{what} did not stop within {STOP_DEADLINE:?}; aborting it");
        task.abort();
        let _ = task.await;
    }
}

fn random_token() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|err| Error::Task(format!("the system random generator failed: {err}")))?;
    Ok(hex::encode(bytes))
}

/// Writes a file readable only by its owner, replacing any old one.
fn write_private(path: &std::path::Path, contents: &str) -> Result<(), Error> {
    let _ = std::fs::remove_file(path);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut file| file.write_all(contents.as_bytes()))
        .map_err(|source| Error::File {
            action: "write",
            path: path.to_path_buf(),
            source,
        })
}

/// Logs how many peers the address book forgot for not being reached in 30 days.
fn log_pruned(count: usize) {
    if count > 0 {
        tracing::info!(
            "forgot {count} peers of the address book that have not been reached for 30 days"
        );
    }
}
