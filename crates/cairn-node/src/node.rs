//! The node's shared state and what it does with entries: publish (sign, store, gossip),
//! validate what peers gossip (store first, then relay), keep entries that reached nobody in
//! the outbox until a peer joins their space, and manage spaces and peers.

use std::collections::BTreeSet;
use std::future::Future;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::{Arc, RwLock};

use cairn_core::{
    Credential, Draft, Entry, EntryId, Kind, Ref, Reply, Response, Retraction, SecretKey, Space,
    Story, Timestamp,
};
use cairn_net::{Client, Event, Multiaddr, PeerId, Verdict};
use cairn_store::{Outcome, Store};
use tokio::sync::{Mutex, mpsc};

use crate::state::State;
use crate::ticket::Ticket;
use crate::{Config, Error, Files};

/// Gossip messages validated and stored together, with one flush.
const GOSSIP_BATCH: usize = 256;
/// Stored-entry notifications buffered per listener.
const STORED_WATCH_QUEUE: usize = 4_096;

/// State shared by the API handlers and the event loop.
#[derive(Debug)]
pub struct Shared {
    pub store: Arc<Store>,
    pub client: Client,
    /// The full-text index, kept in step with the store by `search::run_indexer`.
    pub search: Arc<cairn_search::SearchIndex>,
    member_key: SecretKey,
    credential: Credential,
    /// Joined spaces and known peers, mirrored to the state file on every change.
    state: RwLock<State>,
    files: Files,
    /// Ids of entries as they are stored (published here or received), for live views and
    /// benchmarks. Bounded: a slow listener misses ids rather than holding memory.
    stored: tokio::sync::broadcast::Sender<EntryId>,
    /// Catch-up sync: what runs now and how the last sync with each peer went.
    pub(crate) syncs: crate::sync::Syncs,
    /// Publishing reads the chain head, signs the next entry and stores it: one at a time, so
    /// two publishes can never take the same seq (which would be a fork of our own making).
    publish_lock: Mutex<()>,
    /// Other members' keys and the organisation's key, read when needed.
    keystore: crate::keystore::Keystore,
    /// Whether the search index has caught up with the store since the node started (and is
    /// not waiting for a large sync to end).
    pub(crate) search_current: std::sync::atomic::AtomicBool,
}

/// Whose name an entry goes out under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PublishAs {
    /// The node's own member.
    #[default]
    Me,
    /// A member added with `cairn member add`, by name.
    Member(String),
    /// The organisation itself: readers see the organisation, and the author is withheld.
    Organisation,
}

impl PublishAs {
    /// From the API's `as_member` and `on_behalf` fields.
    pub fn from_request(as_member: Option<String>, on_behalf: bool) -> Result<Self, Error> {
        match (as_member, on_behalf) {
            (Some(_), true) => Err(Error::BadRequest(
                "choose either a member to publish as or the organisation, not both".into(),
            )),
            (Some(name), false) => Ok(Self::Member(name)),
            (None, true) => Ok(Self::Organisation),
            (None, false) => Ok(Self::Me),
        }
    }
}

impl Shared {
    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    pub fn spaces(&self) -> Vec<String> {
        read(&self.state).spaces.iter().cloned().collect()
    }

    /// Ids of entries from now on as they are stored, whether published here or received.
    pub fn watch_stored(&self) -> tokio::sync::broadcast::Receiver<EntryId> {
        self.stored.subscribe()
    }

    pub(crate) fn stored_sender(&self) -> &tokio::sync::broadcast::Sender<EntryId> {
        &self.stored
    }

    /// How far the running syncs have got.
    pub fn sync_progress(&self) -> crate::Progress {
        self.syncs.progress()
    }

    /// The last sync with a peer.
    pub fn last_sync(&self, peer: &PeerId) -> Option<crate::SyncRecord> {
        self.syncs.last(peer)
    }

    /// Syncs now with one connected peer (or all), for one space (or all joined), and waits.
    pub async fn sync_now(
        self: &Arc<Self>,
        peer: Option<&str>,
        space: Option<&str>,
    ) -> Result<Vec<crate::SyncRecord>, Error> {
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

    pub fn known_peers(&self) -> Vec<String> {
        read(&self.state).peers.iter().cloned().collect()
    }

    /// Signs, stores and gossips a story entry with its typed links; returns it and whether
    /// any peer received it.
    pub async fn publish(
        &self,
        kind: Kind,
        story: Story,
        spaces: Vec<String>,
        links: Vec<Ref>,
        publish_as: &PublishAs,
    ) -> Result<(Entry, bool), Error> {
        if !kind.has_story() {
            return Err(Error::BadRequest(format!(
                "kind {kind} cannot be published as a story"
            )));
        }
        if let Some(link) = links.iter().find(|link| !link.kind.is_story_link()) {
            return Err(Error::BadRequest(format!(
                "a story may link with builds-on, contradicts or tried-too, not {:?}",
                link.kind
            )));
        }
        for link in &links {
            self.target(&link.target).await?;
        }
        let spaces = if spaces.is_empty() {
            self.spaces()
        } else {
            spaces
        };
        let spaces = spaces
            .iter()
            .map(|name| Space::new(name))
            .collect::<Result<Vec<_>, _>>()?;
        let mut draft = Draft::story(kind, &story, spaces, Timestamp::now())?;
        draft.refs = links;
        self.publish_draft(draft, publish_as).await
    }

    /// Replies to an entry this node holds, in the spaces of that entry.
    pub async fn reply(
        &self,
        target: EntryId,
        reply: Reply,
        publish_as: &PublishAs,
    ) -> Result<(Entry, bool), Error> {
        let spaces = self.target(&target).await?.header().spaces.clone();
        let draft = Draft::reply(target, &reply, spaces, Timestamp::now())?;
        self.publish_draft(draft, publish_as).await
    }

    /// Responds to an entry this node holds, in the spaces of that entry.
    pub async fn respond(
        &self,
        target: EntryId,
        response: Response,
        publish_as: &PublishAs,
    ) -> Result<(Entry, bool), Error> {
        let spaces = self.target(&target).await?.header().spaces.clone();
        let draft = Draft::response(target, &response, spaces, Timestamp::now())?;
        self.publish_draft(draft, publish_as).await
    }

    /// Withdraws one of this member's own entries: publishes a retraction, after which every
    /// node that holds the entry drops its body and keeps its signed header.
    pub async fn retract(
        &self,
        target: EntryId,
        reason: String,
        publish_as: &PublishAs,
    ) -> Result<(Entry, bool), Error> {
        let held = self.target(&target).await?;
        if matches!(held.header().kind, Kind::RETRACT | Kind::REVOKE) {
            return Err(Error::BadRequest(format!(
                "entry {target} is a {}; retractions and revocations cannot be retracted",
                held.header().kind
            )));
        }
        let signer = self.signer(publish_as)?;
        if held.header().author != signer.key.member_id() {
            return Err(Error::BadRequest(format!(
                "entry {target} was written by {} of {}; only its author can retract it",
                held.credential().claims().member_name,
                held.credential().claims().org_name
            )));
        }
        let spaces = held.header().spaces.clone();
        let draft = Draft::retraction(target, &Retraction { reason }, spaces, Timestamp::now())?;
        self.publish_draft(draft, publish_as).await
    }

    /// Publishes a new revision of one of the signer's own stories. The revision names the
    /// original entry (also when `target` is an earlier revision), so every revision of a
    /// story hangs off the same entry.
    pub async fn amend(
        &self,
        target: EntryId,
        story: Story,
        publish_as: &PublishAs,
    ) -> Result<(Entry, bool), Error> {
        let mut held = self.target(&target).await?;
        if held.header().kind == Kind::AMEND
            && let Some(original) = held
                .header()
                .refs
                .iter()
                .find(|r| r.kind == cairn_core::RefKind::AMENDS)
                .map(|r| r.target)
        {
            held = self.target(&original).await?;
        }
        if !held.header().kind.has_story() {
            return Err(Error::BadRequest(format!(
                "entry {target} is a {}, not a learning, failure or question entry; only those can be amended",
                held.header().kind
            )));
        }
        if held.body().is_none() {
            return Err(Error::BadRequest(format!(
                "entry {} was retracted by its author; it cannot be amended",
                held.id()
            )));
        }
        let signer = self.signer(publish_as)?;
        if held.header().author != signer.key.member_id() {
            return Err(Error::BadRequest(format!(
                "entry {} was written by {} of {}; only its author can amend it",
                held.id(),
                held.credential().claims().member_name,
                held.credential().claims().org_name
            )));
        }
        let spaces = held.header().spaces.clone();
        let draft = Draft::amendment(held.id(), &story, spaces, Timestamp::now())?;
        self.publish_draft(draft, publish_as).await
    }

    /// Publishes a profile of the organisation (`PublishAs::Organisation`) or of a member, in
    /// every joined space. The newest profile of an author is the one shown.
    pub async fn set_profile(
        &self,
        profile: cairn_core::Profile,
        publish_as: &PublishAs,
    ) -> Result<(Entry, bool), Error> {
        let draft = Draft::profile(&profile, self.joined_spaces()?, Timestamp::now())?;
        self.publish_draft(draft, publish_as).await
    }

    /// The joined spaces, for entries that concern everyone this node talks to.
    fn joined_spaces(&self) -> Result<Vec<Space>, Error> {
        Ok(self
            .spaces()
            .iter()
            .map(|name| Space::new(name))
            .collect::<Result<Vec<_>, _>>()?)
    }

    /// The key and credential for `publish_as`.
    fn signer(&self, publish_as: &PublishAs) -> Result<crate::keystore::Signer, Error> {
        match publish_as {
            PublishAs::Me => Ok(crate::keystore::Signer {
                key: self.member_key.clone(),
                credential: self.credential.clone(),
            }),
            PublishAs::Member(name) => self.keystore.member(name),
            PublishAs::Organisation => self
                .keystore
                .organisation(&self.credential.claims().org_name),
        }
    }

    /// Adds a member key with its org-signed credential to this home's keystore.
    pub fn add_member(&self, name: &str) -> Result<crate::keystore::MemberKey, Error> {
        let signer = self
            .keystore
            .add_member(name, &self.credential.claims().org_name)?;
        let claims = signer.credential.claims();
        Ok(crate::keystore::MemberKey {
            handle: name.to_string(),
            member: claims.member,
            name: claims.member_name.clone(),
        })
    }

    /// The members in this home's keystore, each with the seq after which they were revoked.
    pub async fn members(&self) -> Result<Vec<(crate::keystore::MemberKey, Option<u64>)>, Error> {
        let members = self.keystore.members()?;
        let store = self.store.clone();
        let org = self.credential.claims().org;
        blocking(move || {
            members
                .into_iter()
                .map(|member| {
                    let revoked = store.revoked_after(&org, &member.member)?;
                    Ok((member, revoked))
                })
                .collect()
        })
        .await
    }

    /// Publishes the organisation's revocation of a member: their entries so far stay valid,
    /// every later one is refused by every node that holds the revocation.
    pub async fn revoke(&self, name: &str, reason: String) -> Result<(Entry, bool), Error> {
        let member = self.keystore.member(name)?.key.member_id();
        let store = self.store.clone();
        // Only the gap-free start of the chain: a stolen key could claim a huge seq.
        let last_valid_seq = blocking(move || Ok(store.contiguous_head(&member)?)).await?;
        let spaces = self.joined_spaces()?;
        let revocation = cairn_core::Revocation {
            member,
            last_valid_seq,
            reason,
        };
        let draft = Draft::revocation(&revocation, spaces, Timestamp::now())?;
        self.publish_draft(draft, &PublishAs::Organisation).await
    }

    /// The entry a reply, response or link points at; it must be held here.
    async fn target(&self, id: &EntryId) -> Result<Entry, Error> {
        let store = self.store.clone();
        let id = *id;
        blocking(move || store.get(&id).map_err(Error::from))
            .await?
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "entry {id} is not held by this node; sync with its author's peers first"
                ))
            })
    }

    /// Signs a draft as the next entry of this member's chain, stores it and gossips it; an
    /// entry no peer received waits in the outbox.
    async fn publish_draft(
        &self,
        draft: Draft,
        publish_as: &PublishAs,
    ) -> Result<(Entry, bool), Error> {
        let crate::keystore::Signer { key, credential } = self.signer(publish_as)?;
        let _one_at_a_time = self.publish_lock.lock().await;
        let store = self.store.clone();
        let entry = blocking(move || -> Result<Entry, Error> {
            let (seq, prev) = match store.chain_head(&key.member_id())? {
                Some((seq, id)) => (seq + 1, Some(id)),
                None => (1, None),
            };
            let entry = Entry::sign(&key, &credential, seq, prev, draft)?;
            store.insert(&entry.encode(), Timestamp::now())?;
            Ok(entry)
        })
        .await?;
        let _ = self.stored.send(entry.id());
        let shared = self.gossip(&entry).await;
        if !shared {
            let store = self.store.clone();
            let id = entry.id();
            blocking(move || store.outbox_add(&id).map_err(Error::from)).await?;
        }
        Ok((entry, shared))
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
        self.update_state(|state| {
            state.spaces.insert(space.clone());
        })?;
        self.flush_outbox(&space).await?;
        Ok(space)
    }

    pub async fn leave_space(&self, name: &str) -> Result<String, Error> {
        let space = Space::new(name)?.to_string();
        self.client.unsubscribe(space.clone()).await?;
        self.update_state(|state| {
            state.spaces.remove(&space);
        })?;
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
        self.update_state(|state| {
            state.peers.insert(full.to_string());
        })?;
        Ok(peer)
    }

    /// The invite ticket for this node.
    pub async fn invite(&self) -> Result<Ticket, Error> {
        let status = self.client.status().await?;
        let claims = self.credential.claims();
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

    fn update_state(&self, change: impl FnOnce(&mut State)) -> Result<(), Error> {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        change(&mut state);
        state.save(&self.files.state)
    }
}

/// A started node; stop it with [`Running::stop`].
#[derive(Debug)]
pub struct Running {
    pub shared: Arc<Shared>,
    pub api_address: std::net::SocketAddr,
    files: Files,
    store: Arc<Store>,
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
    let state = match State::load(&config.files.state)? {
        Some(state) => state,
        None => State {
            spaces: config.default_spaces.iter().cloned().collect(),
            peers: BTreeSet::new(),
        },
    };
    // Before going online: the first sync with a peer starts as soon as it connects, and
    // should find each joined space's items and the per-organisation counts already read.
    let store = config.store.clone();
    let spaces: Vec<String> = state.spaces.iter().cloned().collect();
    blocking(move || Ok(store.warm(&spaces)?)).await?;
    let mut net_config = config.net.clone();
    net_config.known_peers.extend(
        state
            .peers
            .iter()
            .filter_map(|address| address.parse().ok()),
    );
    let (client, events, network_loop) = cairn_net::new(net_config)?;
    let peer_id = network_loop.local_peer_id();
    let network = tokio::spawn(network_loop.run());
    for space in &state.spaces {
        client.subscribe(space.clone()).await?;
    }
    state.save(&config.files.state)?;

    let search = crate::search::open(&config.files.search_index)?;
    let shared = Arc::new(Shared {
        store: config.store.clone(),
        client,
        search: Arc::new(search),
        member_key: config.member_key,
        credential: config.credential,
        state: RwLock::new(state),
        files: config.files.clone(),
        stored: tokio::sync::broadcast::channel(STORED_WATCH_QUEUE).0,
        syncs: crate::sync::Syncs::default(),
        publish_lock: Mutex::new(()),
        keystore: crate::keystore::Keystore::new(config.files.keys.clone()),
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
    write_private(&config.files.api_token, &format!("{token}\n"))?;
    write_private(&config.files.api_address, &format!("{api_address}\n"))?;
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
        files: config.files,
        store: config.store,
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
        drop(self.shared);
        let _ = self.network.await;
        self.store.flush()?;
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

/// Stores what is valid, and says for each frame whether to relay it (Accept), drop it quietly
/// (Ignore) or drop it and penalise the sender (Reject).
fn validate_and_store(store: &Store, frames: &[Vec<u8>], spaces: &[String]) -> Vec<Verdict> {
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

/// Duplicates, entries from newer formats, clocks that disagree and chain conflicts are things
/// an honest peer can relay: ignored. Everything else is forged or broken: rejected.
pub(crate) fn verdict_for(err: &cairn_core::Error) -> Verdict {
    match err.code() {
        // A body can be missing because the entry was retracted and the retraction has not
        // arrived yet: an honest peer serves such entries, so they are only ignored.
        "duplicate:id"
        | "invalid:version"
        | "invalid:clock-skew"
        | "invalid:chain-conflict"
        | "invalid:body-missing"
        // This node's own policy refused it; the sender did nothing wrong.
        | "blocked:org"
        | "blocked:not-followed"
        | "blocked:quota"
        // Entries of a revoked member are relayed by peers that have not seen the revocation.
        | "revoked:member" => Verdict::Ignore,
        code => {
            tracing::warn!(reason = code, "refused a gossiped entry: {err}");
            Verdict::Reject
        }
    }
}

/// An id an API caller gave, resolved against the store.
pub(crate) async fn resolve(store: &Arc<Store>, prefix: String) -> Result<Option<Entry>, Error> {
    let store = store.clone();
    blocking(move || -> Result<Option<Entry>, Error> {
        let id: EntryId = store.resolve(&prefix)?;
        Ok(store.get(&id)?)
    })
    .await
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

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
