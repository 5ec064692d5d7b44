//! The composed libp2p behaviour and the settings of each part. Every size and queue limit that
//! gossipsub has is set here explicitly.

use std::time::Duration;

use libp2p::gossipsub::{
    self, IdentTopic, MessageAuthenticity, MessageId, PeerScoreParams, PeerScoreThresholds,
    TopicScoreParams, ValidationMode,
};
use libp2p::request_response;
use libp2p::swarm::NetworkBehaviour;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::{
    StreamProtocol, allow_block_list, autonat, connection_limits, dcutr, identify, identity, kad,
    mdns, ping, relay, upnp,
};
use prometheus_client::registry::Registry;

use crate::codec::BytesCodec;
use crate::gate::Gate;
use crate::throttle::KeptPeers;

use crate::{Config, Error};

/// Connections in their handshake at once, from everywhere (see the gate for per address).
const MAX_PENDING_INCOMING: u32 = 128;
/// The largest gossip message: one entry frame plus room for gossipsub's own framing.
pub const MAX_TRANSMIT_SIZE: usize = cairn_core::entry::MAX_FRAME_LEN + 4 * 1024;
const IDENTIFY_PROTOCOL: &str = "/cairn/id/1";
const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/cairn/kad/1");
const TOPIC_PREFIX: &str = "cairn/space/";
const TOPIC_SUFFIX: &str = "/1";
const MESSAGE_ID_DOMAIN: &[u8] = b"cairn/gossip-message-id/1";
/// Message ids offered to one peer per heartbeat: 400 ids of 32 bytes keep an IHAVE within
/// the 16 KiB that gossipsub's decoder takes by default for an RPC's control part. A larger
/// one is refused whole, and the refusing side stops reading that stream for good.
const MAX_IHAVE_IDS: usize = 400;

#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    // Limits and blocks come first so that a refused connection is refused before the other
    // behaviours see it.
    pub gate: Gate,
    pub limits: connection_limits::Behaviour,
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub kad: Toggle<kad::Behaviour<kad::store::MemoryStore>>,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub gossip: gossipsub::Behaviour,
    // Reaching across routers: the relay client (listening and dialling through relays), the
    // relay this node offers if its admin turned it on, hole punching, reachability tests
    // (asked and answered) and port mapping on the router.
    pub relay_client: relay::client::Behaviour,
    pub relay: Toggle<relay::Behaviour>,
    pub dcutr: dcutr::Behaviour,
    pub autonat_client: autonat::v2::client::Behaviour,
    pub autonat_server: autonat::v2::server::Behaviour,
    pub upnp: Toggle<upnp::tokio::Behaviour>,
    pub sync: request_response::Behaviour<BytesCodec>,
    pub hello: request_response::Behaviour<BytesCodec>,
    pub invite: request_response::Behaviour<BytesCodec>,
}

impl Behaviour {
    pub fn new(
        key: &identity::Keypair,
        config: &Config,
        relay_client: relay::client::Behaviour,
        kept: KeptPeers,
        metrics: &mut Registry,
    ) -> Result<Self, Error> {
        let peer_id = key.public().to_peer_id();
        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(config.max_connections))
            // A peer may have a relayed connection and a direct one (hole punching), a dial
            // back to confirm a moved peer's address, and, for a few seconds after it
            // restarted, its old connection not yet found dead.
            .with_max_established_per_peer(Some(4))
            .with_max_pending_incoming(Some(MAX_PENDING_INCOMING))
            .with_max_pending_outgoing(Some(32));
        // Kademlia finds peers of peers (and connects to them). Off, a node only ever talks to
        // the peers it was given and the ones that dial it.
        let kad = config.kademlia.then(|| {
            // Peer routing only: records and provider announcements that peers put are
            // handed to the event loop, which drops them, instead of being stored: Cairn
            // keeps nothing for strangers in its routing layer.
            let mut kad_config = kad::Config::new(KAD_PROTOCOL);
            kad_config.set_record_filtering(kad::StoreInserts::FilterBoth);
            // The routing table takes only addresses the event loop adds: ones this node
            // dialled and reached, and ones a connected peer announces for itself on the IP
            // address its connection came from; never a third party's claims.
            kad_config.set_kbucket_inserts(kad::BucketInserts::Manual);
            let mut kad = kad::Behaviour::with_config(
                peer_id,
                kad::store::MemoryStore::new(peer_id),
                kad_config,
            );
            kad.set_mode(Some(kad::Mode::Server));
            kad
        });
        let mdns = if config.mdns {
            Some(
                mdns::tokio::Behaviour::new(mdns::Config::default(), peer_id)
                    .map_err(|err| Error::Transport("mDNS", err.to_string()))?,
            )
        } else {
            None
        };
        Ok(Self {
            gate: Gate::new(config.gate.clone(), kept),
            limits: connection_limits::Behaviour::new(limits),
            blocked: allow_block_list::Behaviour::default(),
            identify: identify::Behaviour::new(
                identify::Config::new(IDENTIFY_PROTOCOL.into(), key.public())
                    .with_agent_version(format!("cairn/{}", env!("CARGO_PKG_VERSION")))
                    // Peers hear at once of a new or lost relayed address (a reservation
                    // made or gone) instead of at the next periodic identify.
                    .with_push_listen_addr_updates(true),
            ),
            ping: ping::Behaviour::new(ping::Config::new()),
            kad: kad.into(),
            mdns: mdns.into(),
            relay_client,
            relay: config
                .relay
                .as_ref()
                .map(|limits| relay_server(peer_id, limits))
                .into(),
            dcutr: dcutr::Behaviour::new(peer_id),
            // Tests an untested address of this node every 5 seconds.
            autonat_client: autonat::v2::client::Behaviour::default(),
            autonat_server: autonat::v2::server::Behaviour::default(),
            upnp: config.upnp.then(upnp::tokio::Behaviour::default).into(),
            gossip: gossip(config.mesh_degree)?.with_metrics(
                metrics.sub_registry_with_prefix("gossipsub"),
                gossipsub::MetricsConfig::default(),
            ),
            sync: request_response::Behaviour::with_codec(
                BytesCodec {
                    request_limit: config.sync_request_limit,
                    response_limit: config.sync_response_limit,
                },
                [(
                    StreamProtocol::new(config.sync_protocol),
                    request_response::ProtocolSupport::Full,
                )],
                // A Cairn node keeps at most four requests in flight to a peer.
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(60))
                    .with_max_concurrent_streams(8),
            ),
            hello: request_response::Behaviour::with_codec(
                BytesCodec {
                    request_limit: crate::MAX_HELLO_LEN,
                    response_limit: crate::MAX_HELLO_LEN,
                },
                [(
                    StreamProtocol::new(config.hello_protocol),
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(10))
                    .with_max_concurrent_streams(2),
            ),
            invite: request_response::Behaviour::with_codec(
                BytesCodec {
                    request_limit: crate::MAX_INVITE_LEN,
                    response_limit: crate::MAX_INVITE_LEN,
                },
                [(
                    StreamProtocol::new(config.invite_protocol),
                    request_response::ProtocolSupport::Full,
                )],
                request_response::Config::default()
                    .with_request_timeout(Duration::from_secs(30))
                    .with_max_concurrent_streams(2),
            ),
        })
    }
}

/// Gossipsub for entries. Entries carry their authors' signatures, so gossipsub's own
/// per-message signature would be a second sign and verify for nothing: messages are anonymous
/// and their id is the entry id and topic, so the same entry from two peers is one message.
fn gossip(mesh_degree: usize) -> Result<gossipsub::Behaviour, Error> {
    let mesh_degree = mesh_degree.max(2);
    let config = gossipsub::ConfigBuilder::default()
        .validate_messages()
        .validation_mode(ValidationMode::Anonymous)
        .message_id_fn(|message| message_id(&message.data, message.topic.as_str()))
        .max_transmit_size(MAX_TRANSMIT_SIZE)
        .mesh_n(mesh_degree)
        .mesh_n_low(mesh_degree.saturating_sub(1).max(1))
        .mesh_n_high(mesh_degree * 2)
        .mesh_outbound_min(1)
        .gossip_lazy(mesh_degree)
        .heartbeat_interval(Duration::from_millis(500))
        .history_length(6)
        .history_gossip(3)
        .duplicate_cache_time(Duration::from_secs(300))
        .connection_handler_queue_len(1_024)
        .max_ihave_messages_heartbeat(10)
        .max_control_messages_sent(MAX_IHAVE_IDS)
        // Take control parts as large as a message may be, from peers that send more.
        .max_control_message_size(MAX_TRANSMIT_SIZE)
        .idontwant_message_size_threshold(512)
        .build()
        .map_err(|err| Error::Config(format!("gossipsub: {err}")))?;
    let mut gossip = gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, config)
        .map_err(|err| Error::Config(err.to_string()))?;
    gossip
        .with_peer_score(score_params(), score_thresholds())
        .map_err(|err| Error::Config(format!("gossipsub scores: {err}")))?;
    Ok(gossip)
}

/// Peer scores across spaces. What lowers a score: invalid entries (an honest peer verifies
/// before it relays, so one is enough to be graylisted, and the event loop blocks the peer as
/// well) and misuse of gossipsub's control messages. What raises it: time in a space's mesh
/// and being first with new entries. Nothing punishes a peer for delivering little, since a
/// quiet space has little to deliver. Many peers from one address are the connection gate's
/// business, so the score does not count them.
fn score_params() -> PeerScoreParams {
    PeerScoreParams {
        topic_score_cap: 50.0,
        app_specific_weight: 0.0,
        ip_colocation_factor_weight: 0.0,
        behaviour_penalty_weight: -10.0,
        behaviour_penalty_threshold: 6.0,
        behaviour_penalty_decay: 0.9,
        // A peer slow to take what this node relays is not misbehaving (it may be busy with
        // a flood from elsewhere): no penalty, or a flood could get honest peers pruned.
        slow_peer_weight: 0.0,
        // Scores of peers that left are kept a while (a peer cannot shed a bad score by
        // reconnecting), but not for long: identities are free, so the table must not grow.
        retain_score: Duration::from_secs(600),
        ..PeerScoreParams::default()
    }
}

fn score_thresholds() -> PeerScoreThresholds {
    PeerScoreThresholds {
        gossip_threshold: -20.0,
        publish_threshold: -40.0,
        graylist_threshold: -80.0,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 2.0,
    }
}

/// Each space's score parameters (see [`score_params`]).
pub(crate) fn topic_score_params() -> TopicScoreParams {
    TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 300.0,
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: 0.9,
        first_message_deliveries_cap: 20.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -100.0,
        invalid_message_deliveries_decay: 0.995,
        ..TopicScoreParams::default()
    }
}

/// A gossip message's id: SHA-256 over a domain string, the topic (with its length) and the
/// whole message. The entry id alone covers only the signed header (which holds the body's
/// hash), so a copy with the same header and another body, or none, would share the real
/// entry's id and shadow it in gossipsub's duplicate filter for minutes; hashing the whole
/// message makes each its own message, and only the valid one is stored and relayed. An entry
/// in two spaces is one message per space, so the duplicate filter never stops it reaching
/// the second space. 32 bytes, so that IHAVE lists stay small (see [`MAX_IHAVE_IDS`]).
pub(crate) fn message_id(data: &[u8], topic: &str) -> MessageId {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    hash.update(MESSAGE_ID_DOMAIN);
    hash.update((topic.len() as u64).to_be_bytes());
    hash.update(topic.as_bytes());
    hash.update(data);
    MessageId::new(&hash.finalize())
}

/// The gossip topic of a space.
pub fn topic_for_space(space: &str) -> IdentTopic {
    IdentTopic::new(format!("{TOPIC_PREFIX}{space}{TOPIC_SUFFIX}"))
}

/// The space a topic belongs to, if it is one of Cairn's.
pub fn space_of_topic(topic: &str) -> Option<&str> {
    topic.strip_prefix(TOPIC_PREFIX)?.strip_suffix(TOPIC_SUFFIX)
}

/// The relay this node offers: always on (its admin turned it on), within `limits`.
fn relay_server(peer_id: libp2p::PeerId, limits: &crate::RelayLimits) -> relay::Behaviour {
    let config = relay::Config {
        max_reservations: limits.max_reservations,
        max_reservations_per_peer: 2,
        reservation_duration: limits.reservation_duration,
        max_circuits: limits.max_circuits,
        max_circuits_per_peer: limits.max_circuits_per_peer,
        max_circuit_duration: limits.max_circuit_duration,
        max_circuit_bytes: limits.max_circuit_bytes,
        // The library's rate limits on reservations and circuits, per peer and per address.
        ..relay::Config::default()
    };
    let mut relay = relay::Behaviour::new(peer_id, config);
    relay.set_status(Some(relay::Status::Enable));
    relay
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::Kind;
    use cairn_core::testkit::{Author, EPOCH, story};

    #[test]
    fn a_copy_with_the_same_header_is_another_message() {
        let entry = Author::ana()
            .entry(1, None, Kind::LEARNING, &story(1, 200), EPOCH)
            .expect("entry");
        let full = entry.encode();
        let header_only = cairn_core::entry::frame(entry.signed_header(), None);
        let mut tampered = full.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let topic = "cairn/space/commons/1";
        let id = message_id(&full, topic);
        assert_eq!(
            id,
            message_id(&full, topic),
            "the same message, the same id"
        );
        assert_ne!(id, message_id(&header_only, topic));
        assert_ne!(id, message_id(&tampered, topic));
        assert_ne!(id, message_id(&full, "cairn/space/housing/1"));
        assert_eq!(
            id.0.len(),
            32,
            "short ids keep IHAVE lists within the decoder's limit"
        );
    }
}
