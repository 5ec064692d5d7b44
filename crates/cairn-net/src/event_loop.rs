//! The task that owns the swarm: it runs commands from [`Client`]s, turns swarm events into
//! [`Event`]s for the owner, redials known peers with backoff and lifts expired bans.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, MessageAcceptance, MessageId, PublishError};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, identify, kad, mdns, multiaddr::Protocol};
use prometheus_client::registry::Registry;
use tokio::sync::{mpsc, oneshot};

use crate::bans::BanList;
use crate::behaviour::{
    Behaviour, BehaviourEvent, space_of_topic, topic_for_space, topic_score_params,
};
use crate::connected::ConnectedPeers;
use crate::known::KnownPeers;
use crate::rate::TokenBucket;
use crate::reach::{RELAY_HOP_PROTOCOL, Reach};
use crate::serving::{Serving, ServingLimits};
use crate::swarm::build_swarm;
use crate::throttle::{Allowance, KeptPeers};
use crate::{Command, Config, Error, Event, PeerStatus, Status, Verdict};

/// Hello requests answered per peer per tick; a node sends one per connection.
const HELLOS_PER_TICK: u32 = 2;
/// Invitations being answered at once, at most, and per peer per tick.
const MAX_INVITES_ANSWERING: usize = 16;
const INVITES_PER_TICK: u32 = 2;
/// How often known peers are checked for redialling and bans for expiry.
const TICK: Duration = Duration::from_secs(1);
/// Addresses taken from a peer's own announcement, at most, per identify message.
const ANNOUNCED_ADDRESSES: usize = 4;
/// Log lines about blocked peers per tick; more are counted and summed up at the tick.
const REFUSAL_LINES_PER_TICK: u32 = 5;

/// Where the answer to one of our sync requests goes.
type SyncReply = (PeerId, oneshot::Sender<Result<Vec<u8>, Error>>);

/// Owns the swarm; see the crate docs. Ends when every [`crate::Client`] is dropped.
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    commands: mpsc::Receiver<Command>,
    /// Bounded: when the owner falls behind, gossip messages are ignored instead of queued.
    events: mpsc::Sender<Event>,
    /// Strangers' gossip messages, on a lane of their own (see [`crate::Events`]), within a
    /// rate for all strangers together; those over it in the current tick, for the log.
    stranger_messages: mpsc::Sender<Event>,
    stranger_rate: TokenBucket,
    strangers_over_rate: u64,
    /// How fast strangers' connections are read; its waits are logged each tick.
    allowance: Arc<Allowance>,
    /// Gossip messages from each stranger in the current tick: one that alone sends
    /// `FLOODING_MESSAGES` is flooding, and is banned.
    stranger_counts: HashMap<PeerId, u32>,
    /// Dials started by `Client::dial`, answered when the connection is up or has failed.
    pending_dials: HashMap<ConnectionId, (Multiaddr, oneshot::Sender<Result<PeerId, Error>>)>,
    /// Our sync requests awaiting answers.
    pending_sync: HashMap<OutboundRequestId, SyncReply>,
    /// Peers' sync requests the node is answering, and their budgets.
    serving: Serving,
    /// Tokens for invitations being answered.
    next_token: u64,
    /// This node's hello, and hello requests answered per peer in the current tick.
    hello: crate::HelloSource,
    hello_budget: HashMap<PeerId, u32>,
    /// Connected peers we sent our hello to (bounded by the connection limit).
    hello_sent: HashSet<PeerId>,
    /// Our invitations awaiting answers, and peers' invitations the owner is answering.
    pending_invites: HashMap<OutboundRequestId, oneshot::Sender<Result<Vec<u8>, Error>>>,
    answering_invites: HashMap<u64, ResponseChannel<Vec<u8>>>,
    invite_budget: HashMap<PeerId, u32>,
    /// Addresses to keep connected to, with their backoff.
    known: KnownPeers,
    /// Peers blocked for sending invalid entries, until their block ends.
    bans: BanList<PeerId>,
    /// Connections the gate turned away since the start, for status.
    refused_connections: u64,
    /// Log lines about blocked peers in the current tick.
    log_lines: u32,
    /// The address each connection of each connected peer was reached at or came from.
    connected: ConnectedPeers,
    /// Relays in use, and how other nodes can reach this one.
    reach: Reach,
    ban_duration: Duration,
    /// Gossipsub's counters (messages received before and after duplicate filtering, mesh
    /// changes, penalties), for `/metrics` and the benchmarks.
    metrics: Registry,
}

impl std::fmt::Debug for EventLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLoop")
            .field("peer_id", self.swarm.local_peer_id())
            .finish_non_exhaustive()
    }
}

impl EventLoop {
    pub(crate) fn new(
        config: Config,
        commands: mpsc::Receiver<Command>,
        events: mpsc::Sender<Event>,
        stranger_messages: mpsc::Sender<Event>,
    ) -> Result<Self, Error> {
        let mut metrics = Registry::default();
        let kept = KeptPeers::default();
        let allowance = Allowance::new(config.strangers_read, kept.clone());
        let mut swarm = build_swarm(&config, &allowance, kept, &mut metrics)?;
        for address in &config.listen {
            swarm
                .listen_on(address.clone())
                .map_err(|err| Error::Listen {
                    address: address.clone(),
                    reason: err.to_string(),
                })?;
        }
        // Addresses the admin says others reach this node at (a public address, or a port
        // the router forwards): confirmed from the start instead of waiting for peers to test.
        for address in &config.external {
            swarm.add_external_address(address.clone());
        }
        let known = KnownPeers::new(&config.known_peers, Instant::now());
        Ok(Self {
            swarm,
            commands,
            events,
            stranger_messages,
            stranger_rate: TokenBucket::new(config.stranger_messages_per_second),
            strangers_over_rate: 0,
            allowance,
            stranger_counts: HashMap::new(),
            pending_dials: HashMap::new(),
            pending_sync: HashMap::new(),
            serving: Serving::new(ServingLimits {
                requests_per_peer: config.sync_requests_per_second,
                requests_per_address: config.sync_requests_per_address,
                bytes_per_address: config.sync_bytes_per_address,
            }),
            next_token: 0,
            hello: config.hello.clone(),
            hello_budget: HashMap::new(),
            hello_sent: HashSet::new(),
            pending_invites: HashMap::new(),
            answering_invites: HashMap::new(),
            invite_budget: HashMap::new(),
            known,
            bans: BanList::new(config.max_bans),
            refused_connections: 0,
            log_lines: 0,
            connected: ConnectedPeers::default(),
            reach: Reach::default(),
            ban_duration: config.ban_duration,
            metrics,
        })
    }

    pub fn local_peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    /// Runs until every client is dropped.
    pub async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        loop {
            tokio::select! {
                // Local work first: commands from the node before remote traffic.
                biased;
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                _ = tick.tick() => self.on_tick(),
            }
        }
        tracing::debug!("network event loop stopped");
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Dial { address, reply } => {
                let opts = dial_options(&address);
                let connection = opts.connection_id();
                match self.swarm.dial(opts) {
                    Ok(()) => {
                        self.pending_dials.insert(connection, (address, reply));
                    }
                    Err(err) => {
                        let _ = reply.send(Err(Error::Dial {
                            address: address.to_string(),
                            reason: err.to_string(),
                        }));
                    }
                }
            }
            Command::Remember { address } => self.known.remember(address, Instant::now()),
            Command::Forget { peer } => self.known.forget(peer),
            Command::Publish { space, data, reply } => {
                let result = self
                    .swarm
                    .behaviour_mut()
                    .gossip
                    .publish(topic_for_space(&space), data);
                let _ = reply.send(match result {
                    Ok(_) | Err(PublishError::Duplicate) => Ok(()),
                    Err(PublishError::NoPeersSubscribedToTopic) => Err(Error::NoPeers(space)),
                    Err(err) => Err(Error::Publish {
                        space,
                        reason: err.to_string(),
                    }),
                });
            }
            Command::Report {
                message_id,
                source,
                verdict,
            } => {
                let acceptance = match verdict {
                    Verdict::Accept => MessageAcceptance::Accept,
                    Verdict::Ignore => MessageAcceptance::Ignore,
                    Verdict::Reject => MessageAcceptance::Reject,
                };
                self.judge(&MessageId::new(&message_id), &source, acceptance);
                if verdict == Verdict::Reject {
                    self.ban(source, "sent invalid entries", 1);
                }
            }
            Command::Subscribe { space, reply } => {
                let topic = topic_for_space(&space);
                let gossip = &mut self.swarm.behaviour_mut().gossip;
                if let Err(err) = gossip.set_topic_params(topic.clone(), topic_score_params()) {
                    tracing::warn!(%space, "could not score peers in the space: {err}");
                }
                let result = gossip.subscribe(&topic);
                let _ = reply.send(result.map(drop).map_err(|err| Error::Publish {
                    space,
                    reason: err.to_string(),
                }));
            }
            Command::Unsubscribe { space } => {
                self.swarm
                    .behaviour_mut()
                    .gossip
                    .unsubscribe(&topic_for_space(&space));
            }
            Command::Status { reply } => {
                let _ = reply.send(self.status());
            }
            Command::SyncRequest {
                peer,
                request,
                reply,
            } => {
                let id = self.swarm.behaviour_mut().sync.send_request(&peer, request);
                self.pending_sync.insert(id, (peer, reply));
            }
            Command::SyncRespond { token, response } => {
                let Some(channel) = self.serving.answer(token, response.len()) else {
                    return;
                };
                if self
                    .swarm
                    .behaviour_mut()
                    .sync
                    .send_response(channel, response)
                    .is_err()
                {
                    tracing::debug!("a peer went away before its sync answer was sent");
                }
            }
            Command::Invite {
                peer,
                request,
                reply,
            } => {
                let id = self
                    .swarm
                    .behaviour_mut()
                    .invite
                    .send_request(&peer, request);
                self.pending_invites.insert(id, reply);
            }
            Command::InviteRespond { token, response } => {
                if let Some(channel) = self.answering_invites.remove(&token)
                    && self
                        .swarm
                        .behaviour_mut()
                        .invite
                        .send_response(channel, response)
                        .is_err()
                {
                    tracing::debug!("a peer went away before its invitation was answered");
                }
            }
            Command::Block { peer } => self.ban(peer, "sent invalid entries", 1),
            Command::Keep { peer } => self.keep(peer),
            Command::Metrics { reply } => {
                let mut text = String::new();
                if let Err(err) =
                    prometheus_client::encoding::text::encode(&mut text, &self.metrics)
                {
                    tracing::warn!("could not encode metrics: {err}");
                }
                let _ = reply.send(text);
            }
        }
    }

    /// Blocks a peer for the ban duration (this also closes its connections), and counts
    /// `strikes` against the address it came from.
    fn ban(&mut self, peer: PeerId, why: &str, strikes: u32) {
        let now = Instant::now();
        if self.log_lines < REFUSAL_LINES_PER_TICK {
            tracing::warn!(%peer, "peer {why}; blocking it for {:?}", self.ban_duration);
        }
        self.log_lines += 1;
        if let Some(lifted) = self.bans.insert(peer, now + self.ban_duration) {
            self.swarm.behaviour_mut().blocked.unblock_peer(lifted);
        }
        self.swarm.behaviour_mut().blocked.block_peer(peer);
        if let Some(remote) = self.connected.address(&peer).cloned()
            && let Some(address) = self.swarm.behaviour_mut().gate.strike(
                &peer,
                &remote,
                strikes,
                now,
                self.ban_duration,
            )
        {
            tracing::warn!(
                %address,
                "peer after peer from one address was blocked; refusing connections from it for {:?}",
                self.ban_duration
            );
        }
    }

    /// Passes a peer's sync request to the owner, whose answer comes back as
    /// `Command::SyncRespond`; if the owner's queue is full, the request is dropped.
    fn hand_over_sync_request(&mut self, (token, peer, request): crate::serving::Handed) {
        let event = Event::SyncRequest {
            peer,
            token,
            request,
        };
        if self.events.try_send(event).is_err() {
            self.serving.abandon(token);
        }
    }

    /// The remote IP address of a connected peer (`None` through a relay).
    fn address_of(&self, peer: &PeerId) -> Option<IpAddr> {
        self.connected
            .address(peer)
            .and_then(crate::gate::address_of)
    }

    /// Takes the addresses a connected peer announces for itself on the IP address its
    /// connection came from (another IP address could be anybody's, and this node would be
    /// knocking on it, or sending others to): passed on to peers looking for it, and dialled
    /// to confirm when a known peer has moved.
    fn on_identify(&mut self, peer: PeerId, info: identify::Info) {
        self.reach.announced(peer, info.listen_addrs.clone());
        let Some(seen) = self.address_of(&peer) else {
            return;
        };
        let announced: Vec<Multiaddr> = info
            .listen_addrs
            .into_iter()
            .filter(|address| crate::gate::address_of(address) == Some(seen))
            .take(ANNOUNCED_ADDRESSES)
            .collect();
        // A known peer that moved and reached this node first: dialled back where it says it
        // is, so the address book learns the address that works instead of keeping a dead one.
        if let Some(address) = announced.first()
            && info
                .protocols
                .iter()
                .any(|protocol| protocol.as_ref() == RELAY_HOP_PROTOCOL)
        {
            self.reach.offered(peer, address.clone());
        }
        let confirm = self.known.worth_confirming(peer, &announced);
        if !confirm.is_empty() {
            tracing::info!(%peer, addresses = ?confirm, "a known peer came back from a new address; dialling it there to confirm");
            let opts = DialOpts::peer_id(peer)
                .addresses(confirm)
                .condition(PeerCondition::Always)
                .allocate_new_port()
                .build();
            if let Err(err) = self.swarm.dial(opts) {
                tracing::debug!(%peer, "dial failed: {err}");
            }
        }
        if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
            for address in announced {
                kad.add_address(&peer, address);
            }
        }
    }

    /// Lets a peer past the strangers' limits; a peer the gate forgets to make room loses
    /// its pass through libp2p's own limits too.
    fn keep(&mut self, peer: PeerId) {
        let behaviour = self.swarm.behaviour_mut();
        if let Some(forgotten) = behaviour.gate.keep(peer) {
            behaviour.limits.remove_peer_id(&forgotten);
        }
        behaviour.limits.bypass_peer_id(&peer);
    }

    /// A peer's hello: answered with ours (within the per-peer budget) and passed on.
    fn on_hello(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let budget = self.hello_budget.entry(peer).or_insert(0);
                *budget += 1;
                if *budget > HELLOS_PER_TICK {
                    tracing::debug!(%peer, "hello refused: over the per-peer rate limit");
                    return;
                }
                let hello = self.hello.make();
                if self
                    .swarm
                    .behaviour_mut()
                    .hello
                    .send_response(channel, hello)
                    .is_err()
                {
                    tracing::debug!(%peer, "a peer went away before our hello was sent");
                }
                self.emit(Event::Hello {
                    peer,
                    hello: request,
                });
            }
            request_response::Event::Message {
                peer,
                message: request_response::Message::Response { response, .. },
                ..
            } => self.emit(Event::Hello {
                peer,
                hello: response,
            }),
            request_response::Event::OutboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "no hello from the peer: {error}");
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "a peer's hello failed: {error}");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    /// Invitations: peers' go to the owner to answer (within bounds), answers to ours back to
    /// whoever presented them.
    fn on_invite(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let budget = self.invite_budget.entry(peer).or_insert(0);
                *budget += 1;
                if *budget > INVITES_PER_TICK
                    || self.answering_invites.len() >= MAX_INVITES_ANSWERING
                {
                    tracing::info!(%peer, "an invitation was refused: too many at once");
                    return;
                }
                let token = self.next_token;
                self.next_token += 1;
                let asked = Event::InviteRequest {
                    peer,
                    token,
                    request,
                };
                // Held only while the owner has it to answer: never left waiting for nobody.
                if self.events.try_send(asked).is_ok() {
                    self.answering_invites.insert(token, channel);
                } else {
                    tracing::warn!(%peer, "the node is not keeping up; an invitation was refused");
                }
            }
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some(reply) = self.pending_invites.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some(reply) = self.pending_invites.remove(&request_id) {
                    let _ = reply.send(Err(Error::Sync {
                        peer,
                        reason: format!("it did not answer the invitation: {error}"),
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "a peer's invitation failed: {error}");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_sync(&mut self, event: request_response::Event<Vec<u8>, Vec<u8>>) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let address = self.address_of(&peer);
                match self.serving.on_request(peer, address, request, channel) {
                    Ok(Some(handed)) => self.hand_over_sync_request(handed),
                    // It waits for its address's budget (see `on_tick`).
                    Ok(None) => {}
                    // Dropping the channel tells the peer the request failed.
                    Err(reason) => tracing::debug!(%peer, "sync request refused: {reason}"),
                }
            }
            request_response::Event::Message {
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
                ..
            } => {
                if let Some((_, reply)) = self.pending_sync.remove(&request_id) {
                    let _ = reply.send(Ok(response));
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                if let Some((_, reply)) = self.pending_sync.remove(&request_id) {
                    let _ = reply.send(Err(Error::Sync {
                        peer,
                        reason: error.to_string(),
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, "a sync request from a peer failed: {error}");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn status(&self) -> Status {
        let gossip = &self.swarm.behaviour().gossip;
        let mut spaces_of: HashMap<PeerId, BTreeSet<String>> = HashMap::new();
        for (peer, topics) in gossip.all_peers() {
            let spaces = topics
                .iter()
                .filter_map(|topic| space_of_topic(topic.as_str()).map(str::to_string));
            spaces_of.entry(*peer).or_default().extend(spaces);
        }
        let mut connected: Vec<PeerStatus> = self
            .connected
            .iter()
            .map(|(peer, address)| PeerStatus {
                peer_id: *peer,
                address: address.clone(),
                spaces: spaces_of
                    .remove(peer)
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
            })
            .collect();
        connected.sort_by_key(|peer| peer.peer_id);
        let known = self.known.addresses();
        Status {
            peer_id: *self.swarm.local_peer_id(),
            listen_addrs: self.swarm.listeners().cloned().collect(),
            connected,
            blocked: self.bans.keys().copied().collect(),
            blocked_addresses: self.swarm.behaviour().gate.banned_addresses(),
            refused_connections: self.refused_connections,
            known,
            reachability: self.reach.reachability(&self.swarm),
            relay_offered: self.swarm.behaviour().relay.is_enabled(),
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        self.reach.update(&mut self.swarm);
        let known = &self.known;
        self.reach.retry_hole_punching(
            now,
            &self.connected,
            |peer| known.contains_peer(peer),
            &mut self.swarm,
        );
        self.hello_budget.clear();
        self.invite_budget.clear();
        for handed in self.serving.on_tick() {
            self.hand_over_sync_request(handed);
        }
        for peer in self.bans.expire(now) {
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
        if self.log_lines > REFUSAL_LINES_PER_TICK {
            tracing::warn!(
                "{} more peers were blocked in the last second (not logged one by one)",
                self.log_lines - REFUSAL_LINES_PER_TICK
            );
        }
        self.log_lines = 0;
        self.stranger_counts.clear();
        if self.strangers_over_rate > 0 {
            tracing::info!(
                "{} gossip messages from strangers ignored in the last second: over the limit of {} a second for all strangers (catch-up sync brings what was missed)",
                self.strangers_over_rate,
                self.stranger_rate.per_second
            );
            self.strangers_over_rate = 0;
        }
        let waits = self.allowance.take_waits();
        if waits > 0 {
            tracing::debug!(
                "strangers' connections waited {waits} times in the last second for their read allowance"
            );
        }
        let gate = &mut self.swarm.behaviour_mut().gate;
        gate.expire(now);
        let (refused, last) = gate.take_refusals();
        if refused > 0 {
            self.refused_connections += refused;
            tracing::warn!(
                "{refused} inbound connections turned away in the last second by the connection limits (the last: {})",
                last.unwrap_or_default()
            );
        }
        let swarm = &self.swarm;
        let bans = &self.bans;
        let due = self.known.due(now, |peer| {
            !swarm.is_connected(&peer) && !bans.contains(&peer)
        });
        for address in due {
            tracing::debug!(%address, "dialling known peer");
            let opts = dial_options(&address);
            let connection = opts.connection_id();
            match self.swarm.dial(opts) {
                Ok(()) => self.known.dialling(connection, address),
                Err(err) => tracing::debug!(%address, "dial failed: {err}"),
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.emit(Event::Listening { address });
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                num_established,
                ..
            } => {
                // A peer that came through a relay has no address of its own to show: where it
                // came in (this node's relayed address) says which relay.
                let address = match &endpoint {
                    ConnectedPoint::Listener { local_addr, .. } if endpoint.is_relayed() => {
                        local_addr.clone()
                    }
                    _ => endpoint.get_remote_address().clone(),
                };
                if let Some((_, reply)) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Ok(peer_id));
                }
                // A direct connection to a peer reached only through a relay so far is hole
                // punching's: its address is a passing router mapping, for neither the redial
                // set nor the address book.
                let hole_punched = !crate::reach::is_relayed(&address)
                    && !self.connected.only_relayed(&peer_id).is_empty();
                if endpoint.is_dialer() && !hole_punched {
                    let reached =
                        self.known
                            .reached(peer_id, &address, connection_id, Instant::now());
                    // A peer this node keeps dialling is one it knows: past strangers' limits.
                    if let Some(dropped) = reached {
                        self.keep(peer_id);
                        if !dropped.is_empty() {
                            tracing::info!(%peer_id, %address, ?dropped, "a known peer was reached at a new address; its addresses that failed are dropped");
                            self.emit(Event::AddressesDropped {
                                peer: peer_id,
                                addresses: dropped,
                            });
                        }
                    }
                    if let Some(kad) = self.swarm.behaviour_mut().kad.as_mut() {
                        kad.add_address(&peer_id, address.clone());
                    }
                    self.emit(Event::Reached {
                        peer: peer_id,
                        address: address.clone(),
                    });
                }
                // Our hello goes on the first connection we dialled to the peer, whether or not
                // it is the first connection between us: when both sides dial at once, each
                // side's first established connection may be the other's.
                if endpoint.is_dialer() && self.hello_sent.insert(peer_id) {
                    let hello = self.hello.make();
                    self.swarm
                        .behaviour_mut()
                        .hello
                        .send_request(&peer_id, hello);
                }
                if self.connected.add(peer_id, connection_id, address.clone()) {
                    tracing::info!(%peer_id, %address, "connected directly to a peer that was reached through a relay");
                    self.reach.punched(&peer_id);
                }
                if num_established.get() == 1 {
                    tracing::info!(%peer_id, %address, "connected");
                    self.emit(Event::Connected {
                        peer: peer_id,
                        address,
                        dialed: endpoint.is_dialer(),
                    });
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                num_established,
                ..
            } => {
                self.connected.remove(&peer_id, connection_id);
                if num_established == 0 {
                    tracing::info!(%peer_id, "disconnected");
                    self.hello_sent.remove(&peer_id);
                    self.reach.disconnected(&peer_id);
                    self.emit(Event::Disconnected { peer: peer_id });
                }
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                reason,
                ..
            } => {
                self.reach
                    .listener_closed(listener_id, reason.map_err(|err| err.to_string()));
            }
            SwarmEvent::ExternalAddrConfirmed { address } => crate::reach::log_confirmed(&address),
            SwarmEvent::ExternalAddrExpired { address } => {
                tracing::info!(%address, "no longer confirmed as reachable at this address");
            }
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(event)) => {
                self.reach.on_relay_client(event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(event)) => {
                self.reach.on_hole_punch(event, &self.connected);
            }
            SwarmEvent::Behaviour(BehaviourEvent::AutonatClient(event)) => {
                self.reach.on_dial_back(event);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Upnp(event)) => crate::reach::log_upnp(event),
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id: _,
                error,
            } => {
                if let Some((address, reply)) = self.pending_dials.remove(&connection_id) {
                    let _ = reply.send(Err(Error::Dial {
                        address: address.to_string(),
                        reason: error.to_string(),
                    }));
                } else if let Some((peer, dropped)) =
                    self.known.dial_failed(connection_id, |peer| {
                        self.connected
                            .address(&peer)
                            .is_some_and(|address| !crate::reach::is_relayed(address))
                    })
                {
                    if let Some(address) = dropped {
                        tracing::info!(%peer, %address, "a known peer's old address failed while another works; it is dropped");
                        self.emit(Event::AddressesDropped {
                            peer,
                            addresses: vec![address],
                        });
                    } else {
                        // A known peer's redial failed: one line per attempt, which the backoff
                        // spaces out, so an admin can see why a peer stays away.
                        tracing::info!(%peer, "could not reach a known peer (will retry): {error}");
                        self.known.look_up(peer, &mut self.swarm);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossip(event)) => self.on_gossip(event),
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync(event),
            SwarmEvent::Behaviour(BehaviourEvent::Hello(event)) => self.on_hello(event),
            SwarmEvent::Behaviour(BehaviourEvent::Invite(event)) => self.on_invite(event),
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, address) in found {
                    if !self.swarm.is_connected(&peer) && !self.bans.contains(&peer) {
                        tracing::debug!(%peer, %address, "found on the local network");
                        let _ = self
                            .swarm
                            .dial(DialOpts::peer_id(peer).addresses(vec![address]).build());
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetClosestPeers(result),
                step,
                ..
            })) => self.known.on_lookup(id, result, step.last, &mut self.swarm),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => self.on_identify(peer_id, info),
            _ => {}
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event) {
        match event {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => {
                let Some(space) = space_of_topic(message.topic.as_str()).map(str::to_string) else {
                    self.judge(&message_id, &propagation_source, MessageAcceptance::Reject);
                    return;
                };
                let event = Event::Message {
                    source: propagation_source,
                    message_id: message_id.0.clone(),
                    space,
                    data: message.data,
                };
                let kept = self.swarm.behaviour().gate.is_kept(&propagation_source);
                if !kept {
                    let count = self.stranger_counts.entry(propagation_source).or_insert(0);
                    *count += 1;
                    if *count == FLOODING_MESSAGES {
                        self.ban(
                            propagation_source,
                            "sent gossip far faster than strangers may",
                            FLOOD_STRIKES,
                        );
                    }
                }
                let lane = if kept {
                    &self.events
                } else if self.stranger_rate.take(Instant::now()) {
                    &self.stranger_messages
                } else {
                    self.strangers_over_rate += 1;
                    self.judge(&message_id, &propagation_source, MessageAcceptance::Ignore);
                    return;
                };
                if lane.try_send(event).is_err() {
                    // The node is behind: drop without relaying. Catch-up sync fills the gap.
                    self.judge(&message_id, &propagation_source, MessageAcceptance::Ignore);
                }
            }
            gossipsub::Event::Subscribed { peer_id, topic } => {
                if let Some(space) = space_of_topic(topic.as_str()) {
                    self.emit(Event::PeerJoinedSpace {
                        peer: peer_id,
                        space: space.to_string(),
                    });
                }
            }
            _ => {}
        }
    }

    /// Tells gossipsub whether to relay a message it holds.
    fn judge(&mut self, id: &MessageId, source: &PeerId, acceptance: MessageAcceptance) {
        self.swarm
            .behaviour_mut()
            .gossip
            .report_message_validation_result(id, source, acceptance);
    }

    /// Sends an event to the owner without waiting; if the owner is far behind the event is
    /// dropped (every event here is either repeated later or recovered by sync).
    fn emit(&self, event: Event) {
        if self.events.try_send(event).is_err() {
            tracing::warn!("the node is not keeping up with network events; one was dropped");
        }
    }
}

/// How this node dials an address: from a fresh local port. Reusing the listening port (the
/// default) fails with "address in use" for as long as an earlier connection between the same
/// two ports lingers in TIME_WAIT (a minute), which a node restarted on a new port can hit.
fn dial_options(address: &Multiaddr) -> DialOpts {
    DialOpts::unknown_peer_id()
        .address(address.clone())
        .allocate_new_port()
        .build()
}

/// The peer id at the end of an address (`.../p2p/<id>`), if any. A relayed address names the
/// relay's peer id too, before `/p2p-circuit`: the peer is the one after it.
pub fn peer_of(address: &Multiaddr) -> Option<PeerId> {
    match address.iter().last()? {
        Protocol::P2p(peer) => Some(peer),
        _ => None,
    }
}

/// A stranger's peer sending this many gossip messages within a tick (a second) is banned...
/// An honest node relays what it takes in: its kept peers' entries and strangers' at most at
/// their rate (100 a second; older versions took 500), so the margin must be wide, or a busy
/// honest relay, of this version or an older one, would be banned as a flooder.
const FLOODING_MESSAGES: u32 = 2_500;
/// ...and counts as this many strikes against its address: flooding is unmistakable, so two
/// flooding identities from one address get the address refused.
const FLOOD_STRIKES: u32 = 4;
