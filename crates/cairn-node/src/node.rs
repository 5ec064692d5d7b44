//! The daemon's shared state and what it does with entries: gossip what the service wrote,
//! validate what peers gossip (store first, then relay), keep entries that reached nobody in
//! the outbox until a peer joins their space, and manage spaces and peers.

use std::future::Future;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use cairn_core::{Credential, Entry, EntryId, Kind, Space, Timestamp};
use cairn_net::{Client, Event, Multiaddr, PeerId, Verdict};
use cairn_store::{Outcome, Store};
use tokio::sync::mpsc;

use crate::service::Service;
use crate::ticket::Ticket;
use crate::{Config, Error, Files};

/// Gossip messages validated and stored together, with one flush.
const GOSSIP_BATCH: usize = 256;
/// Stored-entry notifications buffered per listener.
const STORED_WATCH_QUEUE: usize = 4_096;

/// State shared by the API handlers, the web page and the event loop.
#[derive(Debug)]
pub struct Shared {
    /// Every operation on entries, members, profiles and policy.
    pub service: Arc<Service>,
    /// The service's store, for the daemon's own work (gossip, sync, indexing).
    pub store: Arc<Store>,
    pub client: Client,
    /// Ids of entries as they are stored (published here or received), for live views and
    /// benchmarks. Bounded: a slow listener misses ids rather than holding memory.
    stored: tokio::sync::broadcast::Sender<EntryId>,
    /// Catch-up sync: what runs now and how the last sync with each peer went.
    pub(crate) syncs: crate::sync::Syncs,
    /// Whether the search index has caught up with the store since the node started (and is
    /// not waiting for a large sync to end).
    pub(crate) search_current: std::sync::atomic::AtomicBool,
}

impl Shared {
    pub fn credential(&self) -> &Credential {
        self.service.credential()
    }

    pub fn spaces(&self) -> Vec<String> {
        self.service.spaces()
    }

    pub fn known_peers(&self) -> Vec<String> {
        self.service.known_peers()
    }

    /// Runs a service operation that writes an entry on a blocking thread, then tells
    /// listeners and gossips it; returns the entry and whether a peer received it now (if
    /// not, it stays in the outbox until one joins its space).
    pub async fn write(
        &self,
        operation: impl FnOnce(&Service) -> Result<Entry, Error> + Send + 'static,
    ) -> Result<(Entry, bool), Error> {
        let entry = self.read(operation).await?;
        // Nobody listening is fine.
        let _ = self.stored.send(entry.id());
        let shared = self.gossip(&entry).await;
        if shared {
            let store = self.store.clone();
            let id = entry.id();
            // The entry is stored and sent: a failure here must not report the publish as
            // failed. The worst case is that the outbox sends it again later.
            if let Err(err) = blocking(move || Ok(store.outbox_remove(&id)?)).await {
                tracing::warn!(%id, "could not take a shared entry out of the outbox: {err}");
            }
        }
        Ok((entry, shared))
    }

    /// Runs a service operation on a blocking thread.
    pub async fn read<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&Service) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let service = self.service.clone();
        blocking(move || operation(&service)).await
    }

    /// Ids of entries from now on as they are stored, whether published here or received.
    pub fn watch_stored(&self) -> tokio::sync::broadcast::Receiver<EntryId> {
        self.stored.subscribe()
    }

    pub(crate) fn stored_sender(&self) -> &tokio::sync::broadcast::Sender<EntryId> {
        &self.stored
    }

    /// How far the running syncs have got.
    pub fn sync_progress(&self) -> cairn_api::Progress {
        self.syncs.progress()
    }

    /// The last sync with a peer.
    pub fn last_sync(&self, peer: &PeerId) -> Option<cairn_api::SyncRecord> {
        self.syncs.last(peer)
    }

    /// Syncs now with one connected peer (or all), for one space (or all joined), and waits.
    pub async fn sync_now(
        self: &Arc<Self>,
        peer: Option<&str>,
        space: Option<&str>,
    ) -> Result<Vec<cairn_api::SyncRecord>, Error> {
        let spaces = match space {
            Some(name) => vec![Space::new(name)?.to_string()],
            None => self.spaces(),
        };
        let connected: Vec<PeerId> = self
            .client
            .status()
            .await?
            .connected
            .into_iter()
            .map(|peer| peer.peer_id)
            .collect();
        let peers = match peer {
            None => connected,
            Some(text) => {
                let wanted: PeerId = text
                    .trim()
                    .parse()
                    .map_err(|_| Error::BadRequest(format!("{text:?} is not a peer id")))?;
                if !connected.contains(&wanted) {
                    return Err(Error::BadRequest(format!(
                        "peer {wanted} is not connected; see `cairn peers`"
                    )));
                }
                vec![wanted]
            }
        };
        if peers.is_empty() {
            return Err(Error::BadRequest(
                "no peer is connected, so there is nobody to sync with; see `cairn peers`".into(),
            ));
        }
        let mut records = Vec::new();
        for peer in peers {
            // A sync already running with this peer reports when it is done.
            let record = loop {
                if let Some(record) =
                    crate::sync::with_peer(self.clone(), peer, spaces.clone()).await
                {
                    break record;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            };
            records.push(record);
        }
        Ok(records)
    }

    /// Gossips an entry to each of its spaces; true if at least one peer got it.
    async fn gossip(&self, entry: &Entry) -> bool {
        let frame = entry.encode();
        let mut reached = false;
        for space in &entry.header().spaces {
            match self.client.publish(space.to_string(), frame.clone()).await {
                Ok(()) => reached = true,
                Err(cairn_net::Error::NoPeers(_)) => {
                    tracing::debug!(id = %entry.id(), %space, "no peer in the space yet")
                }
                Err(err) => tracing::warn!(id = %entry.id(), "could not gossip: {err}"),
            }
        }
        reached
    }

    /// Sends outbox entries in `space` now that a peer there is connected.
    async fn flush_outbox(&self, space: &str) -> Result<(), Error> {
        let store = self.store.clone();
        let waiting: Vec<Entry> = blocking(move || -> Result<Vec<Entry>, Error> {
            let mut entries = Vec::new();
            for id in store.outbox()? {
                match store.get(&id)? {
                    Some(entry) => entries.push(entry),
                    None => store.outbox_remove(&id)?,
                }
            }
            Ok(entries)
        })
        .await?;
        tracing::debug!(space, waiting = waiting.len(), "entries in the outbox");
        for entry in waiting
            .into_iter()
            .filter(|entry| entry.header().spaces.iter().any(|s| s.as_str() == space))
        {
            if self.gossip(&entry).await {
                tracing::info!(id = %entry.id(), "shared an entry written while no peer was connected");
                let store = self.store.clone();
                let id = entry.id();
                blocking(move || store.outbox_remove(&id).map_err(Error::from)).await?;
            }
        }
        Ok(())
    }

    /// Joins a space: subscribes to its gossip and remembers it.
    pub async fn join_space(&self, name: &str) -> Result<String, Error> {
        let space = Space::new(name)?.to_string();
        self.client.subscribe(space.clone()).await?;
        let joined = space.clone();
        self.read(move |service| service.join_space(&joined))
            .await?;
        self.flush_outbox(&space).await?;
        Ok(space)
    }

    pub async fn leave_space(&self, name: &str) -> Result<String, Error> {
        let space = Space::new(name)?.to_string();
        self.client.unsubscribe(space.clone()).await?;
        let left = space.clone();
        self.read(move |service| service.leave_space(&left)).await?;
        Ok(space)
    }

    /// Connects to a peer and remembers it for reconnection.
    pub async fn add_peer(&self, address: &str) -> Result<PeerId, Error> {
        let address: Multiaddr = address.trim().parse().map_err(|err| {
            Error::BadRequest(format!(
                "{address:?} is not a peer address like /ip4/192.0.2.1/tcp/7411/p2p/12D3Koo…: {err}"
            ))
        })?;
        let peer = self.client.dial(address.clone()).await?;
        let full = with_peer(address, peer);
        self.client.remember(full.clone()).await?;
        let text = full.to_string();
        self.read(move |service| service.remember_peer(text))
            .await?;
        Ok(peer)
    }

    /// The invite ticket for this node.
    pub async fn invite(&self) -> Result<Ticket, Error> {
        let status = self.client.status().await?;
        let claims = self.credential().claims();
        let addresses = status
            .listen_addrs
            .into_iter()
            .map(|address| with_peer(address, status.peer_id).to_string())
            .collect();
        Ok(Ticket {
            peer_id: status.peer_id.to_string(),
            addresses,
            org: claims.org.to_string(),
            org_name: claims.org_name.clone(),
            spaces: self.spaces(),
        })
    }

    /// Connects to the peer in a ticket through the first address that works, remembers it
    /// and joins its spaces.
    pub async fn join(&self, ticket: &Ticket) -> Result<PeerId, Error> {
        let mut failures = Vec::new();
        let mut joined = None;
        for address in &ticket.addresses {
            match self.add_peer(address).await {
                Ok(peer) => {
                    joined = Some(peer);
                    break;
                }
                Err(err) => failures.push(format!("{address}: {err}")),
            }
        }
        let peer = joined.ok_or_else(|| {
            Error::BadRequest(format!(
                "could not reach {} at any address in the ticket ({})",
                ticket.org_name,
                failures.join("; ")
            ))
        })?;
        for space in &ticket.spaces {
            self.join_space(space).await?;
        }
        Ok(peer)
    }
}

/// A started node; stop it with [`Running::stop`].
#[derive(Debug)]
pub struct Running {
    pub shared: Arc<Shared>,
    pub api_address: std::net::SocketAddr,
    files: Files,
    /// Tells the API server to finish its requests and stop.
    stop_api: tokio::sync::oneshot::Sender<()>,
    api: tokio::task::JoinHandle<std::io::Result<()>>,
    /// Tells the event handler to stop.
    stop_events: tokio::sync::oneshot::Sender<()>,
    events: tokio::task::JoinHandle<Result<(), Error>>,
    network: tokio::task::JoinHandle<()>,
    indexer: tokio::task::JoinHandle<()>,
}

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

/// Starts the network, the event handler and the API.
pub async fn start(config: Config) -> Result<Running, Error> {
    if !config.api_address.ip().is_loopback() && !config.allow_remote_api {
        return Err(Error::RemoteApi(config.api_address));
    }
    let files = config.files.clone();
    let search = Arc::new(crate::search::open(&files.search_index)?);
    let service = blocking(move || {
        let service = Service::new(
            crate::service::Config {
                store: config.store.clone(),
                member_key: config.member_key,
                credential: config.credential,
                files: config.files,
                default_spaces: config.default_spaces,
            },
            Some(search),
        )?;
        service.save_state()?;
        // Before going online: the first sync with a peer starts as soon as it connects, and
        // should find each joined space's items and the per-organisation counts already read.
        service.store().warm(&service.spaces())?;
        Ok(Arc::new(service))
    })
    .await?;
    let mut net_config = config.net.clone();
    net_config.known_peers.extend(
        service
            .known_peers()
            .iter()
            .filter_map(|address| address.parse().ok()),
    );
    let (client, events, network_loop) = cairn_net::new(net_config)?;
    let peer_id = network_loop.local_peer_id();
    let network = tokio::spawn(network_loop.run());
    for space in service.spaces() {
        client.subscribe(space).await?;
    }

    let shared = Arc::new(Shared {
        store: service.store().clone(),
        service,
        client,
        stored: tokio::sync::broadcast::channel(STORED_WATCH_QUEUE).0,
        syncs: crate::sync::Syncs::default(),
        search_current: std::sync::atomic::AtomicBool::new(false),
    });

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
    write_private(&files.api_token, &format!("{token}\n"))?;
    write_private(&files.api_address, &format!("{api_address}\n"))?;
    tracing::info!(%api_address, %peer_id, "node running");

    let (stop_api, api_stopped) = tokio::sync::oneshot::channel::<()>();
    let router = crate::api::router(shared.clone(), token, api_address);
    let api = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = api_stopped.await;
            })
            .await
    });

    let indexer = tokio::spawn(crate::search::run_indexer(shared.clone()));
    let (stop_events, events_stopped) = tokio::sync::oneshot::channel::<()>();
    let handler = tokio::spawn(handle_network(
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
        stop_events,
        events: handler,
        network,
        indexer,
    })
}

impl Running {
    /// Stops the API, the event handler and the network (closing every connection), removes
    /// the API files and flushes the store.
    pub async fn stop(self) -> Result<(), Error> {
        tracing::info!("shutting down");
        let _ = self.stop_api.send(());
        let _ = self.api.await;
        for path in [&self.files.api_address, &self.files.api_token] {
            let _ = std::fs::remove_file(path);
        }
        let _ = self.stop_events.send(());
        if !self.events.is_finished() {
            let _ = self.events.await;
        }
        // The indexer commits per batch; what it had not committed is caught up at next start.
        self.indexer.abort();
        let _ = self.indexer.await;
        // Dropping the last client ends the network task, which closes every connection.
        let store = self.shared.store.clone();
        drop(self.shared);
        let _ = self.network.await;
        store.flush()?;
        Ok(())
    }
}

/// Handles network events until shutdown.
async fn handle_network(
    shared: Arc<Shared>,
    mut events: mpsc::Receiver<Event>,
    sync_interval: std::time::Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    tokio::pin!(shutdown);
    let mut batch = Vec::with_capacity(GOSSIP_BATCH);
    let mut sync_tick =
        tokio::time::interval(sync_interval.max(std::time::Duration::from_millis(100)));
    sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => return Ok(()),
            _ = sync_tick.tick() => {
                // Gossip never heals a partition on its own: pull from every peer now and then.
                if let Ok(status) = shared.client.status().await {
                    for peer in status.connected {
                        tokio::spawn(crate::sync::with_peer(shared.clone(), peer.peer_id, shared.spaces()));
                    }
                }
            }
            received = events.recv_many(&mut batch, GOSSIP_BATCH) => {
                if received == 0 {
                    return Err(Error::Task("the network task stopped unexpectedly".into()));
                }
                handle_events(&shared, std::mem::take(&mut batch)).await;
            }
        }
    }
}

async fn handle_events(shared: &Arc<Shared>, events: Vec<Event>) {
    let mut messages = Vec::new();
    for event in events {
        match event {
            Event::Message {
                source,
                message_id,
                space,
                data,
            } => messages.push((source, message_id, space, data)),
            Event::PeerJoinedSpace { peer, space } => {
                tracing::debug!(%peer, %space, "peer joined a space");
                if let Err(err) = shared.flush_outbox(&space).await {
                    tracing::warn!("could not share waiting entries: {err}");
                }
            }
            Event::Connected { peer, dialed, .. } => {
                tokio::spawn(crate::sync::on_connect(
                    Arc::downgrade(shared),
                    peer,
                    dialed,
                ));
            }
            Event::SyncRequest {
                peer,
                token,
                request,
            } => crate::sync::serve_in_turn(shared, peer, token, request),
            Event::Disconnected { .. } | Event::Listening { .. } => {}
        }
    }
    if messages.is_empty() {
        return;
    }
    let frames: Vec<Vec<u8>> = messages
        .iter()
        .map(|(_, _, _, data)| data.clone())
        .collect();
    let spaces: Vec<String> = messages
        .iter()
        .map(|(_, _, space, _)| space.clone())
        .collect();
    let store = shared.store.clone();
    let verdicts = blocking(move || -> Result<Vec<Verdict>, Error> {
        Ok(validate_and_store(&store, &frames, &spaces))
    })
    .await;
    let verdicts = verdicts.unwrap_or_else(|err| {
        tracing::error!("could not store gossiped entries: {err}");
        vec![Verdict::Ignore; messages.len()]
    });
    for ((source, message_id, _, data), verdict) in messages.into_iter().zip(verdicts) {
        if verdict == Verdict::Accept
            && let Some(id) = cairn_core::entry::frame_id(&data)
        {
            // Nobody listening is fine.
            let _ = shared.stored.send(id);
        }
        if let Err(err) = shared.client.report(message_id, source, verdict).await {
            tracing::warn!("could not report a verdict: {err}");
        }
    }
}

/// Stores what is valid among frames gossiped in `spaces` (one topic per frame), and says for
/// each frame whether to relay it (Accept), drop it quietly (Ignore) or drop it and penalise
/// the sender (Reject).
pub fn validate_and_store(store: &Store, frames: &[Vec<u8>], spaces: &[String]) -> Vec<Verdict> {
    // A retraction or revocation can change or remove entries stored before it in the batch.
    let mut withdraws = false;
    // An entry must belong to the space it was gossiped in; check that before storing.
    let in_topic: Vec<Result<(), cairn_core::Error>> = frames
        .iter()
        .zip(spaces)
        .map(|(frame, space)| {
            let entry = Entry::decode(frame)?;
            withdraws |= matches!(entry.header().kind, Kind::RETRACT | Kind::REVOKE);
            if entry.header().spaces.iter().any(|s| s.as_str() == space) {
                Ok(())
            } else {
                Err(cairn_core::Error::BadField {
                    field: "spaces",
                    reason: format!("gossiped in {space}, which the entry is not in"),
                })
            }
        })
        .collect();
    let admissible: Vec<&Vec<u8>> = frames
        .iter()
        .zip(&in_topic)
        .filter(|(_, ok)| ok.is_ok())
        .map(|(frame, _)| frame)
        .collect();
    let stored = match store.insert_batch(&admissible, Timestamp::now()) {
        Ok(results) => results,
        Err(err) => {
            tracing::error!("the store failed: {err}");
            return vec![Verdict::Ignore; frames.len()];
        }
    };
    let mut stored = stored.into_iter();
    in_topic
        .into_iter()
        .enumerate()
        .map(|(index, check)| match check {
            Err(err) => verdict_for(&err),
            Ok(()) => match stored.next() {
                Some(Ok(inserted)) => match inserted.outcome {
                    Outcome::ForkProof | Outcome::Stored => {
                        if inserted.outcome == Outcome::ForkProof {
                            tracing::warn!(id = %inserted.id, "received a fork proof: an author signed two entries at one seq");
                        }
                        // Relay only what is still held exactly as received: a retraction or
                        // revocation later in the same batch may have changed or removed it.
                        // Without one in the batch there is nothing to re-read.
                        if !withdraws {
                            return Verdict::Accept;
                        }
                        match store.frames(&[inserted.id], usize::MAX) {
                            Ok((held, _)) if held.first() == frames.get(index) => Verdict::Accept,
                            _ => Verdict::Ignore,
                        }
                    }
                    // Its author withdrew it: keep the header, never pass the body on.
                    Outcome::Retracted => Verdict::Ignore,
                },
                // Already held, e.g. from the same entry's gossip in another space: relay it in
                // this space too, if it is byte for byte the entry that was verified.
                Some(Err(cairn_store::Error::Rejected(cairn_core::Error::Duplicate(id)))) => {
                    match store.frames(&[id], usize::MAX) {
                        Ok((held, _)) if held.first() == frames.get(index) => Verdict::Accept,
                        _ => Verdict::Ignore,
                    }
                }
                Some(Err(cairn_store::Error::Rejected(err))) => verdict_for(&err),
                Some(Err(err)) => {
                    tracing::error!("the store failed: {err}");
                    Verdict::Ignore
                }
                None => Verdict::Ignore,
            },
        })
        .collect()
}

/// What to tell gossip about an entry the store refused: relay nothing either way, and
/// penalise the sender only when [`cairn_core::Error::blame`] says an honest peer could not
/// have sent it.
pub(crate) fn verdict_for(err: &cairn_core::Error) -> Verdict {
    match err.blame() {
        cairn_core::Blame::Nobody => Verdict::Ignore,
        cairn_core::Blame::Sender => {
            tracing::warn!(reason = err.code(), "refused a gossiped entry: {err}");
            Verdict::Reject
        }
    }
}

/// Runs blocking store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|err| Error::Task(err.to_string()))?
}

fn with_peer(address: Multiaddr, peer: PeerId) -> Multiaddr {
    if address
        .iter()
        .any(|protocol| matches!(protocol, cairn_net::multiaddr::Protocol::P2p(_)))
    {
        address
    } else {
        address.with(cairn_net::multiaddr::Protocol::P2p(peer))
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
