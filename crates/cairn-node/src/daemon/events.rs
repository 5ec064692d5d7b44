//! The daemon's event handler: gossiped messages (validated and stored in batches, then given
//! their verdicts), peers joining spaces (for the outbox), new connections and the periodic
//! tick (for catch-up sync), and peers' sync requests.

use std::future::Future;
use std::sync::Arc;

use cairn_net::{Event, Verdict};

use super::gossip::{GOSSIP_BATCH, validate_and_store};
use super::shared::Shared;
use super::tasks::blocking;
use super::{serve, sync};
use crate::Error;

/// Strangers' gossip messages validated and stored at once: small, so that a batch of
/// theirs in progress holds up a kept peer's message only briefly.
const STRANGER_BATCH: usize = 32;
/// How often a running node forgets the peers it has not reached for 30 days.
const ADDRESS_BOOK_PRUNE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3_600);

/// Handles network events until shutdown. Strangers' gossip messages are handled on their
/// own lane beside the rest, never before them: a flood from strangers takes at most its
/// share of the node and never delays what kept peers send.
pub(crate) async fn handle_network(
    shared: Arc<Shared>,
    events: cairn_net::Events,
    sync_interval: std::time::Duration,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    let cairn_net::Events {
        main: mut events,
        strangers: mut stranger_messages,
    } = events;
    tokio::pin!(shutdown);
    let mut batch = Vec::with_capacity(GOSSIP_BATCH);
    let strangers = async {
        let mut batch = Vec::with_capacity(STRANGER_BATCH);
        while stranger_messages
            .recv_many(&mut batch, STRANGER_BATCH)
            .await
            > 0
        {
            handle_events(&shared, std::mem::take(&mut batch)).await;
        }
    };
    tokio::pin!(strangers);
    let mut sync_tick =
        tokio::time::interval(sync_interval.max(std::time::Duration::from_millis(100)));
    sync_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The start pruned the address book; a long-running node prunes it every hour too.
    let mut prune_tick = tokio::time::interval_at(
        tokio::time::Instant::now() + ADDRESS_BOOK_PRUNE_INTERVAL,
        ADDRESS_BOOK_PRUNE_INTERVAL,
    );
    loop {
        tokio::select! {
            biased;
            () = &mut shutdown => return Ok(()),
            _ = sync_tick.tick() => {
                // Gossip never heals a partition on its own: pull from every peer now and then.
                if let Ok(status) = shared.client().status().await {
                    for peer in status.connected {
                        let sync = sync::with_peer(shared.clone(), peer.peer_id, shared.synced_spaces());
                        shared.tasks().spawn(async move {
                            sync.await;
                        });
                    }
                }
            }
            _ = prune_tick.tick() => {
                if let Err(err) = shared.prune_address_book().await {
                    tracing::warn!("could not prune the address book: {err}");
                }
            }
            received = events.recv_many(&mut batch, GOSSIP_BATCH) => {
                if received == 0 {
                    return Err(Error::Task("the network task stopped unexpectedly".into()));
                }
                handle_events(&shared, std::mem::take(&mut batch)).await;
            }
            () = &mut strangers => {
                return Err(Error::Task("the network task stopped unexpectedly".into()));
            }
        }
    }
}

/// Handles one batch of network events: gossiped messages are validated and stored together.
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
                if shared.synced_spaces().contains(&space) {
                    shared.outbox().wake(&space);
                }
            }
            Event::Connected { peer, dialed, .. } => {
                shared
                    .tasks()
                    .spawn(sync::on_connect(Arc::downgrade(shared), peer, dialed));
            }
            // An address this node dialled and reached goes in the address book; where peers
            // came from is not an address to dial them at.
            Event::Reached { peer, address } => shared.record_connection(peer, address),
            Event::SyncRequest {
                peer,
                token,
                request,
            } => serve::in_turn(shared, peer, token, request),
            Event::Hello { peer, hello } => shared.heard_hello(peer, &hello),
            Event::InviteRequest {
                peer,
                token,
                request,
            } => {
                let weak = Arc::downgrade(shared);
                shared.tasks().spawn(async move {
                    let Some(shared) = weak.upgrade() else { return };
                    let answer = shared.answer_invitation(request).await;
                    if answer.is_empty() {
                        tracing::info!(%peer, "a node accepted this node's invitation");
                    } else {
                        tracing::info!(%peer, "an invitation was refused: {}", String::from_utf8_lossy(&answer));
                    }
                    let _ = shared.client().invite_respond(token, answer).await;
                });
            }
            Event::Disconnected { peer } => shared.forget_peer(&peer),
            Event::AddressesDropped { peer, addresses } => {
                shared.drop_addresses(peer, addresses);
            }
            Event::Listening { .. } => {}
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
    let store = shared.store().clone();
    let verdicts = blocking(move || -> Result<Vec<Verdict>, Error> {
        Ok(validate_and_store(&store, &frames, &spaces))
    })
    .await;
    let verdicts = verdicts.unwrap_or_else(|err| {
        tracing::error!("could not store gossiped entries: {err}");
        vec![Verdict::Ignore; messages.len()]
    });
    for ((source, message_id, _, data), mut verdict) in messages.into_iter().zip(verdicts) {
        if verdict == Verdict::Ignore
            && matches!(
                cairn_core::entry::frame_header(&data),
                Err(cairn_core::Error::UnsupportedVersion(_))
            )
            && !shared.take_unreadable(source)
        {
            tracing::info!(peer = %source, "penalising a peer that sent more frames in an unknown format than a newer node would");
            verdict = Verdict::Reject;
        }
        if verdict == Verdict::Accept
            && let Some(id) = cairn_core::entry::frame_id(&data)
        {
            // Nobody listening is fine.
            let _ = shared.stored_sender().send(id);
        }
        if let Err(err) = shared.client().report(message_id, source, verdict).await {
            tracing::warn!("could not report a verdict: {err}");
        }
    }
}
