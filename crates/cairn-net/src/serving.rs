//! The sync requests this node answers for its peers: which are being answered (each holds the
//! channel its answer goes back on), and the budgets that bound them per peer, per remote
//! address and in total.
//!
//! A peer over its own per-second rate, or holding too many requests, is refused: an honest
//! node paces itself below these. An *address* over its per-second share (many peer ids on one
//! machine, or one node catching up fast) is made to wait instead: its requests are held until
//! the next second has budget for them, so an honest catch-up slows down rather than fails.
//! What waits is bounded per address and counts towards the totals.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use libp2p::PeerId;
use libp2p::request_response::ResponseChannel;

/// Peers' sync requests being answered (or waiting for their address's budget) at once.
const MAX_SERVING: usize = 64;
/// One peer's sync requests being answered at once, at most, so no peer can hold every slot
/// (a Cairn node keeps at most five in flight to a peer).
const MAX_SERVING_PER_PEER: usize = 8;
/// Requests from one address waiting for the next second's budget, at most.
const MAX_WAITING_PER_ADDRESS: usize = 8;

/// The per-second limits on serving sync requests.
#[derive(Debug, Clone, Copy)]
pub struct ServingLimits {
    pub requests_per_peer: u32,
    pub requests_per_address: u32,
    pub bytes_per_address: u64,
}

/// A request to hand to the node's owner: its token (for the answer), who asked, and what.
pub type Handed = (u64, PeerId, Vec<u8>);

/// A request that waits for its address's budget.
struct Waiting {
    token: u64,
    peer: PeerId,
    address: IpAddr,
    request: Vec<u8>,
}

/// A request being answered: who asked, from which address (`None` through a relay), and
/// where its answer goes.
struct Answering {
    peer: PeerId,
    address: Option<IpAddr>,
    channel: ResponseChannel<Vec<u8>>,
}

/// Requests being answered and the budgets of the current second.
pub struct Serving {
    limits: ServingLimits,
    /// By token.
    answering: HashMap<u64, Answering>,
    /// Requests over their address's share, oldest first; each also holds a slot in
    /// `answering`.
    waiting: VecDeque<Waiting>,
    next_token: u64,
    /// Requests received per peer in the current second.
    per_peer: HashMap<PeerId, u32>,
    /// Requests handed over and answer bytes sent per remote address in the current second.
    per_address: HashMap<IpAddr, (u32, u64)>,
}

impl Serving {
    pub fn new(limits: ServingLimits) -> Self {
        Self {
            limits,
            answering: HashMap::new(),
            waiting: VecDeque::new(),
            next_token: 0,
            per_peer: HashMap::new(),
            per_address: HashMap::new(),
        }
    }

    /// Takes a peer's request that came from `address` (`None` through a relay, where only the
    /// peer's own limits apply). Returns the request to hand over now, nothing if it waits for
    /// the next second, or why it was refused (then dropping the channel tells the peer).
    pub fn on_request(
        &mut self,
        peer: PeerId,
        address: Option<IpAddr>,
        request: Vec<u8>,
        channel: ResponseChannel<Vec<u8>>,
    ) -> Result<Option<Handed>, &'static str> {
        let asked = self.per_peer.entry(peer).or_insert(0);
        *asked += 1;
        if *asked > self.limits.requests_per_peer {
            return Err("over the per-second rate limit");
        }
        if self.answering.len() >= MAX_SERVING {
            return Err("too many requests waiting for an answer");
        }
        let held = self
            .answering
            .values()
            .filter(|answering| answering.peer == peer)
            .count();
        if held >= MAX_SERVING_PER_PEER {
            return Err("too many of this peer's requests waiting for an answer");
        }
        let must_wait = address.filter(|address| !self.address_has_budget(*address));
        if let Some(address) = must_wait {
            let waiting_here = self
                .waiting
                .iter()
                .filter(|waiting| waiting.address == address)
                .count();
            if waiting_here >= MAX_WAITING_PER_ADDRESS {
                return Err("over its address's per-second share, with more already waiting");
            }
        }
        let token = self.next_token;
        self.next_token += 1;
        self.answering.insert(
            token,
            Answering {
                peer,
                address,
                channel,
            },
        );
        match (must_wait, address) {
            (Some(address), _) => {
                self.waiting.push_back(Waiting {
                    token,
                    peer,
                    address,
                    request,
                });
                Ok(None)
            }
            (None, Some(address)) => {
                self.per_address.entry(address).or_default().0 += 1;
                Ok(Some((token, peer, request)))
            }
            (None, None) => Ok(Some((token, peer, request))),
        }
    }

    /// The answer for `token`, of `bytes`, is ready: the channel to send it on. Its bytes
    /// count against the address the request came from.
    pub fn answer(&mut self, token: u64, bytes: usize) -> Option<ResponseChannel<Vec<u8>>> {
        let answering = self.answering.remove(&token)?;
        if let Some(address) = answering.address {
            self.per_address.entry(address).or_default().1 += bytes as u64;
        }
        Some(answering.channel)
    }

    /// The owner could not take a handed-over request: its slot is freed (and the dropped
    /// channel tells the peer).
    pub fn abandon(&mut self, token: u64) {
        self.answering.remove(&token);
    }

    /// A new second: budgets start again, answers that can no longer be sent are forgotten,
    /// and waiting requests whose address now has budget are returned, oldest first.
    pub fn on_tick(&mut self) -> Vec<Handed> {
        self.per_peer.clear();
        self.per_address.clear();
        self.answering
            .retain(|_, answering| answering.channel.is_open());
        let answering = &self.answering;
        self.waiting
            .retain(|waiting| answering.contains_key(&waiting.token));
        let mut handed = Vec::new();
        let mut still_waiting = VecDeque::new();
        for waiting in std::mem::take(&mut self.waiting) {
            if self.address_has_budget(waiting.address) {
                self.per_address.entry(waiting.address).or_default().0 += 1;
                handed.push((waiting.token, waiting.peer, waiting.request));
            } else {
                still_waiting.push_back(waiting);
            }
        }
        self.waiting = still_waiting;
        handed
    }

    /// Whether `address` may have one more request handed over this second. Answer bytes are
    /// counted as they are sent, so a second's answers can pass the byte budget by the
    /// requests handed over before it filled, which `MAX_SERVING` bounds.
    fn address_has_budget(&self, address: IpAddr) -> bool {
        let (requests, bytes) = self.per_address.get(&address).copied().unwrap_or_default();
        requests < self.limits.requests_per_address && bytes < self.limits.bytes_per_address
    }
}
