//! How this node's swarm is put together: the transports (QUIC, and TCP with noise and
//! yamux, each with the handshake timeout; DNS names; the relay client), every connection
//! wrapped so that strangers' connections are read within their allowance, and the
//! behaviour.

use std::sync::Arc;
use std::time::Duration;

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::{Transport as _, upgrade};
use libp2p::{Swarm, noise, quic, tcp, yamux};
use prometheus_client::registry::Registry;

use crate::behaviour::Behaviour;
use crate::throttle::{Allowance, KeptPeers};
use crate::{Config, Error};

/// Connections with no traffic are closed after this long (gossip keeps live ones busy).
const IDLE_TIMEOUT: Duration = Duration::from_secs(120);

/// The swarm for `config`, not yet listening.
pub(crate) fn build_swarm(
    config: &Config,
    allowance: &Arc<Allowance>,
    kept: KeptPeers,
    metrics: &mut Registry,
) -> Result<Swarm<Behaviour>, Error> {
    let handshake_timeout = config.handshake_timeout;
    let (quic_allowance, tcp_allowance) = (Arc::clone(allowance), Arc::clone(allowance));
    let builder = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
        .with_tokio()
        // Both transports built by hand, so that strangers' connections are read within
        // their allowance (see `throttle`).
        .with_other_transport(|key| {
            let mut quic = quic::Config::new(key);
            quic.handshake_timeout = handshake_timeout;
            quic::tokio::Transport::new(quic).map(move |(peer, connection), endpoint| {
                let muxer = StreamMuxerBox::new(connection);
                (peer, quic_allowance.wrap(peer, &endpoint, muxer))
            })
        })
        .map_err(|err| Error::Transport("QUIC", err.to_string()))?
        // TCP with a handshake timeout: a connection that has not finished noise and
        // yamux in time is dropped, so idle sockets cannot hold handshake slots.
        .with_other_transport(|key| {
            let noise = noise::Config::new(key)
                .map_err(|err| Box::new(err) as Box<dyn std::error::Error + Send + Sync>)?;
            Ok(
                tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                    .upgrade(upgrade::Version::V1Lazy)
                    .authenticate(noise)
                    .multiplex(yamux::Config::default())
                    .timeout(handshake_timeout)
                    .map(move |(peer, muxer), endpoint| {
                        let muxer = StreamMuxerBox::new(muxer);
                        (peer, tcp_allowance.wrap(peer, &endpoint, muxer))
                    }),
            )
        })
        .map_err(|err| Error::Transport("TCP", err.to_string()))?;
    // Peers may be named by DNS (/dns4, /dns6, /dns): resolved as the system says (its
    // resolvers and hosts file), or with public resolvers where it names none.
    let (resolvers, options) = hickory_resolver::system_conf::read_system_conf()
        .unwrap_or_else(|err| {
            tracing::info!("no usable DNS settings in the system ({err}); peers' DNS names are resolved with public resolvers");
            Default::default()
        });
    let builder = builder.with_dns_config(resolvers, options);
    let swarm = builder
        // Listening and dialling through relays (`/p2p-circuit` addresses).
        .with_relay_client(noise::Config::new, yamux::Config::default)
        .map_err(|err| Error::Transport("relay", err.to_string()))?
        .with_behaviour(|key, relay_client| {
            Behaviour::new(key, config, relay_client, kept, metrics)
                .map_err(|err| Box::new(err) as Box<dyn std::error::Error + Send + Sync>)
        })
        .map_err(|err| Error::Transport("behaviour", err.to_string()))?
        .with_swarm_config(|swarm| swarm.with_idle_connection_timeout(IDLE_TIMEOUT))
        .build();
    Ok(swarm)
}
