//! The state the daemon's parts share (the API, the web page, the event handler, syncs, the
//! indexer, the outbox): the service, the network client, the stored-entry feed, sync
//! bookkeeping, the node's tasks, and what each connected peer said of itself. Reached only
//! through its methods.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use cairn_core::display::{Lines, printable};
use cairn_core::{Credential, Entry, EntryId, OrgId, Space, Timestamp};
use cairn_net::{Client, Multiaddr, PeerId};
use cairn_store::Store;

use super::gossip;
use super::outbox::Outbox;
use super::syncs::Syncs;
use super::tasks::Tasks;
use super::tasks::blocking;
use crate::Error;
use crate::hello::{Hello, PeerHello};
use crate::service::Service;
use crate::ticket::Ticket;

/// Peers' hellos remembered at most (far above the connection limit).
const MAX_HELLOS: usize = 1_024;
/// Stored-entry notifications buffered per listener.
const STORED_WATCH_QUEUE: usize = 4_096;

/// State shared by the API handlers, the web page and the daemon's tasks.
#[derive(Debug)]
pub struct Shared {
    /// Every operation on entries, members, profiles and policy.
    service: Arc<Service>,
    /// The service's store, for the daemon's own work (gossip, sync, indexing).
    store: Arc<Store>,
    client: Client,
    /// Ids of entries as they are stored (published here or received), for live views and
    /// benchmarks. Bounded: a slow listener misses ids rather than holding memory.
    stored: tokio::sync::broadcast::Sender<EntryId>,
    /// Catch-up sync: what runs now and how the last sync with each peer went.
    syncs: Syncs,
    /// The stop signal and the tasks started on the node's behalf.
    tasks: Arc<Tasks>,
    /// Spaces whose waiting entries the outbox task should share.
    outbox: Arc<Outbox>,
    /// Whether the search index has caught up with the store since the node started (and is
    /// not waiting for a large sync to end).
    search_current: AtomicBool,
    /// What each connected peer said of itself when it connected. Bounded by the connection
    /// limit: a peer's entry goes when it disconnects.
    hellos: Mutex<HashMap<PeerId, PeerHello>>,
    /// What each peer may gossip in formats this node cannot read.
    unreadable: super::unreadable::UnreadableBudget,
}

impl Shared {
    pub(crate) fn new(service: Arc<Service>, client: Client) -> Self {
        Self {
            store: service.store().clone(),
            service,
            client,
            stored: tokio::sync::broadcast::channel(STORED_WATCH_QUEUE).0,
            syncs: Syncs::default(),
            tasks: Arc::new(Tasks::default()),
            outbox: Arc::new(Outbox::default()),
            search_current: AtomicBool::new(false),
            hellos: Mutex::new(HashMap::new()),
            unreadable: super::unreadable::UnreadableBudget::default(),
        }
    }

    /// Records a peer's hello: the organisation its binding names (if it checks) and its
    /// clock, with a warning when that is far from ours.
    pub(crate) fn heard_hello(&self, peer: PeerId, bytes: &[u8]) {
        let key_is_current = |org, key: &[u8; 32]| self.key_is_current(org, key);
        let heard = match Hello::read(bytes, &peer.to_bytes(), Timestamp::now(), key_is_current) {
            Ok(heard) => heard,
            Err(err) => {
                tracing::info!(%peer, "the peer's hello is unreadable; it stays anonymous: {err}");
                return;
            }
        };
        match (&heard.org, &heard.anonymous_because) {
            (Some((org, name)), _) => {
                tracing::info!(%peer, %org, name = %printable(name, Lines::One), "peer bound to its organisation");
                let (service, peer_text, org_text) =
                    (self.service.clone(), peer.to_string(), org.to_string());
                self.tasks().spawn(async move {
                    let recorded = blocking(move || service.record_peer_org(&peer_text, org_text));
                    if let Err(err) = recorded.await {
                        tracing::warn!(
                            "could not note a peer's organisation in the address book: {err}"
                        );
                    }
                });
                // A node of this organisation or one it follows is let past the limits on
                // strangers' connections, so it gets in even while strangers crowd the node.
                if *org == self.service.own_org() || self.store().policy().followed.contains(org) {
                    let client = self.client.clone();
                    self.tasks().spawn(async move {
                        let _ = client.keep(peer).await;
                    });
                }
            }
            (None, Some(why)) => tracing::info!(%peer, "peer is anonymous: {why}"),
            (None, None) => {}
        }
        if heard.clock_is_off() {
            tracing::warn!(
                %peer,
                "the peer's clock is {} s {} this node's; entries written there carry that time",
                heard.clock_skew_ms.unsigned_abs() / 1_000,
                if heard.clock_skew_ms > 0 { "ahead of" } else { "behind" }
            );
        }
        let mut hellos = lock(&self.hellos);
        // Entries leave when their peer disconnects; should a disconnection be missed (the
        // event queue was full), the map is still bounded.
        if hellos.len() >= MAX_HELLOS && !hellos.contains_key(&peer) {
            tracing::warn!("forgetting what peers said when they connected: too many remembered");
            hellos.clear();
        }
        hellos.insert(peer, heard);
    }

    /// Forgets what a peer that disconnected said of itself.
    pub(crate) fn forget_peer(&self, peer: &PeerId) {
        lock(&self.hellos).remove(peer);
    }

    /// Takes one unreadable frame from `peer`'s budget; `false` once the peer has sent more
    /// than an honest newer node would.
    pub(crate) fn take_unreadable(&self, peer: PeerId) -> bool {
        self.unreadable.take(peer)
    }

    /// The handles of this home's members who are not revoked.
    pub async fn active_members(&self) -> Result<Vec<String>, Error> {
        self.read(|service| {
            Ok(service
                .members()?
                .into_iter()
                .filter(|member| member.revoked_after.is_none())
                .map(|member| member.key.handle)
                .collect())
        })
        .await
    }

    /// Whether member `handle` is no longer in this home's keystore, or was revoked.
    pub async fn member_revoked(&self, handle: &str) -> Result<bool, Error> {
        Ok(!self
            .active_members()
            .await?
            .iter()
            .any(|active| active == handle))
    }

    /// What `peer` said in its hello, its binding checked against the key logs held now.
    pub fn hello_of(&self, peer: &PeerId) -> Option<PeerHello> {
        let mut hello = lock(&self.hellos).get(peer).cloned()?;
        hello.check_key(|org, key| self.key_is_current(org, key));
        Some(hello)
    }

    /// Whether `key` signs for `org` by the key log this node holds.
    fn key_is_current(&self, org: OrgId, key: &[u8; 32]) -> bool {
        cairn_core::binding::key_is_current(org, key, self.store().key_state(&org).as_ref())
    }

    /// The network: peers, gossip, sync requests.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Sync bookkeeping: running syncs, records, pacing, serving queues.
    pub(crate) fn syncs(&self) -> &Syncs {
        &self.syncs
    }

    /// The stop signal and the tasks started on the node's behalf.
    pub(crate) fn tasks(&self) -> &Arc<Tasks> {
        &self.tasks
    }

    /// The outbox task's queue of spaces to share waiting entries in.
    pub(crate) fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    pub(crate) fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn credential(&self) -> &Credential {
        self.service.credential()
    }

    pub fn spaces(&self) -> Vec<String> {
        self.service.spaces()
    }

    /// The joined spaces and the key-event space: what the node syncs and gossips.
    pub fn synced_spaces(&self) -> Vec<String> {
        self.service.synced_spaces()
    }

    pub fn known_peers(&self) -> Vec<String> {
        self.service.known_peers()
    }

    /// Whether search sees every stored entry.
    pub fn search_up_to_date(&self) -> bool {
        self.search_current.load(Ordering::Relaxed)
    }

    pub(crate) fn set_search_up_to_date(&self, current: bool) {
        self.search_current.store(current, Ordering::Relaxed);
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
        let shared = gossip::publish(&self.client, &entry).await;
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

    /// Joins a space: subscribes to its gossip and remembers it.
    pub async fn join_space(&self, name: &str) -> Result<String, Error> {
        let space = Space::new(name)?.to_string();
        self.client.subscribe(space.clone()).await?;
        let joined = space.clone();
        self.read(move |service| service.join_space(&joined))
            .await?;
        self.outbox.wake(&space);
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

    /// Notes in the address book that this node dialled and reached `peer` at `address`.
    /// Drops addresses of a known peer that stopped working (it was reached at another).
    pub(crate) fn drop_addresses(self: &Arc<Self>, peer: PeerId, addresses: Vec<Multiaddr>) {
        let service = self.service.clone();
        let addresses: Vec<String> = addresses.iter().map(ToString::to_string).collect();
        self.tasks().spawn(async move {
            let dropped = blocking(move || service.drop_addresses(&peer.to_string(), &addresses));
            if let Err(err) = dropped.await {
                tracing::warn!(%peer, "could not drop the peer's dead addresses from the address book: {err}");
            }
        });
    }

    /// Forgets the peers of the address book not reached for 30 days, except those connected
    /// now (a node may run for months without the prune at its start, and a connection can
    /// last that long). They are not redialled after the next start; until then the node
    /// keeps trying them, at most every five minutes, as it does peers given on the command
    /// line.
    pub(crate) async fn prune_address_book(&self) -> Result<(), Error> {
        let connected: std::collections::HashSet<String> = self
            .client()
            .status()
            .await?
            .connected
            .iter()
            .map(|peer| peer.peer_id.to_string())
            .collect();
        let service = self.service.clone();
        let pruned =
            blocking(move || service.prune_address_book(Timestamp::now(), &connected)).await?;
        super::log_pruned(pruned.len());
        Ok(())
    }

    pub(crate) fn record_connection(self: &Arc<Self>, peer: PeerId, address: Multiaddr) {
        let shared = self.clone();
        let address = with_peer(address, peer).to_string();
        self.tasks().spawn(async move {
            let now = Timestamp::now();
            let service = shared.service.clone();
            let org = move || {
                let hello = shared.hello_of(&peer)?;
                hello.org.map(|(org, _)| org.to_string())
            };
            let recorded =
                blocking(move || service.record_connection(&peer.to_string(), address, now, org));
            if let Err(err) = recorded.await {
                tracing::warn!(%peer, "could not remember the peer in the address book: {err}");
            }
        });
    }

    /// Forgets a remembered peer (by peer id or address) and stops redialling it; returns
    /// the peer ids and addresses forgotten.
    pub async fn forget_remembered_peer(&self, target: &str) -> Result<Vec<String>, Error> {
        let target_text = target.to_string();
        let forgotten = self
            .read(move |service| service.forget_peer(&target_text))
            .await?;
        for item in &forgotten {
            let peer = item.parse::<PeerId>().ok().or_else(|| {
                let address: Multiaddr = item.parse().ok()?;
                cairn_net::peer_of(&address)
            });
            if let Some(peer) = peer {
                self.client.forget(peer).await?;
            }
        }
        Ok(forgotten)
    }

    /// A signed invite ticket for this node, valid for `lifetime`, for one node only if
    /// `single_use`.
    pub async fn invite(
        &self,
        lifetime: std::time::Duration,
        single_use: bool,
    ) -> Result<Ticket, Error> {
        let status = self.client.status().await?;
        // Addresses others confirmed (or the router maps) first, then through relays, then
        // the rest of what the node listens on.
        let mut ranked = match status.reachability {
            cairn_net::Reachability::Direct { addresses }
            | cairn_net::Reachability::Relayed { addresses, .. } => addresses,
            _ => Vec::new(),
        };
        ranked.extend(status.listen_addrs);
        let mut addresses: Vec<String> = Vec::new();
        for address in ranked {
            let address = with_peer(address, status.peer_id).to_string();
            if !addresses.contains(&address) {
                addresses.push(address);
            }
        }
        addresses.truncate(cairn_core::invitation::MAX_ADDRESSES);
        let peer_id = status.peer_id.to_bytes();
        let invitation = self
            .read(move |service| service.invitation(&peer_id, addresses, lifetime, single_use))
            .await?;
        Ok(Ticket { invitation })
    }

    /// Accepts an invitation: connects to the node it names through the first address that
    /// works, presents the invitation there, and once that node accepts it, remembers the
    /// node and joins its spaces.
    pub async fn join(&self, ticket: &Ticket) -> Result<PeerId, Error> {
        ticket.check_current(Timestamp::now())?;
        let claims = ticket.invitation.claims();
        let org_name = printable(&claims.org_name, Lines::One);
        let wanted = PeerId::from_bytes(&claims.peer_id.0)
            .map_err(|_| Error::Ticket("the node it names has no valid peer id".into()))?;
        let mut failures = Vec::new();
        let mut joined = None;
        for address in &claims.addresses {
            // Only addresses of the invited node: it ends with its peer id.
            let parsed = address.parse::<Multiaddr>().ok().filter(|parsed| {
                matches!(parsed.iter().last(), Some(cairn_net::multiaddr::Protocol::P2p(peer)) if peer == wanted)
            });
            let Some(parsed) = parsed else {
                failures.push(format!("{address}: not an address of the invited node"));
                continue;
            };
            match self.client.dial(parsed.clone()).await {
                Ok(peer) if peer == wanted => {
                    joined = Some((peer, with_peer(parsed, peer)));
                    break;
                }
                Ok(peer) => failures.push(format!(
                    "{address}: another node answered ({peer}), not the one invited to"
                )),
                Err(err) => failures.push(format!("{address}: {err}")),
            }
        }
        let (peer, address) = joined.ok_or_else(|| {
            // The addresses come from the ticket: shown, never obeyed.
            Error::BadRequest(format!(
                "could not reach {org_name} at any address in the invitation ({})",
                printable(&failures.join("; "), Lines::One)
            ))
        })?;
        let answer = self
            .client
            .present_invitation(peer, ticket.invitation.as_bytes().to_vec())
            .await?;
        if !answer.is_empty() {
            let why = String::from_utf8_lossy(&answer[..answer.len().min(512)]).into_owned();
            return Err(Error::Ticket(format!(
                "{org_name}'s node refused it: {}",
                printable(&why, Lines::One)
            )));
        }
        self.client.remember(address.clone()).await?;
        let text = address.to_string();
        self.read(move |service| service.remember_peer(text))
            .await?;
        for space in &claims.spaces {
            self.join_space(space).await?;
        }
        Ok(peer)
    }

    /// Answers a peer that presents an invitation: empty if accepted, else why not.
    pub(crate) async fn answer_invitation(&self, request: Vec<u8>) -> Vec<u8> {
        let own = self
            .client
            .status()
            .await
            .map(|status| status.peer_id.to_bytes());
        let Ok(own) = own else {
            return b"the node is stopping".to_vec();
        };
        match self
            .read(move |service| service.accept_invitation(&request, &own))
            .await
        {
            Ok(()) => Vec::new(),
            Err(Error::BadRequest(why)) => why.into_bytes(),
            Err(err) => {
                tracing::warn!("could not check an invitation a peer presented: {err}");
                b"the node could not check it; try again later".to_vec()
            }
        }
    }
}

/// `address` ending in `/p2p/<peer>`: added unless it ends in a peer id already (a relayed
/// address names the relay's peer id before `/p2p-circuit`, and needs this node's after it).
fn with_peer(address: Multiaddr, peer: PeerId) -> Multiaddr {
    if matches!(
        address.iter().last(),
        Some(cairn_net::multiaddr::Protocol::P2p(_))
    ) {
        address
    } else {
        address.with(cairn_net::multiaddr::Protocol::P2p(peer))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
