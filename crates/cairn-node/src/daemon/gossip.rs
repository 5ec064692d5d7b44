//! Gossip: publishing an entry to its spaces' topics, and judging what peers gossip (store
//! first, then relay) with a verdict for each message.

use cairn_core::{Entry, Kind, Timestamp};
use cairn_net::{Client, Verdict};
use cairn_store::{Outcome, Store};

/// Gossip messages validated and stored together, with one flush.
pub(crate) const GOSSIP_BATCH: usize = 256;

/// Gossips an entry to each of its spaces; true if at least one peer got it.
pub(crate) async fn publish(client: &Client, entry: &Entry) -> bool {
    let frame = entry.encode();
    let mut reached = false;
    for space in &entry.header().spaces {
        match client.publish(space.to_string(), frame.clone()).await {
            Ok(()) => reached = true,
            Err(cairn_net::Error::NoPeers(_)) => {
                tracing::debug!(id = %entry.id(), %space, "no peer in the space yet")
            }
            Err(err) => tracing::warn!(id = %entry.id(), "could not gossip: {err}"),
        }
    }
    reached
}

/// Passes on entries this node just stored from a sync, on each of their spaces' topics, so
/// its other peers hear of them now rather than at their next sync with it (a hub between two
/// nodes that are never online together passes news on in seconds). Peers that have them
/// already drop the copy.
pub(crate) async fn forward(client: &Client, frames: Vec<Vec<u8>>) {
    for frame in frames {
        let Ok(header) = cairn_core::entry::frame_header(&frame) else {
            continue;
        };
        for space in &header.spaces {
            match client.publish(space.to_string(), frame.clone()).await {
                Ok(()) | Err(cairn_net::Error::NoPeers(_)) => {}
                Err(err) => {
                    tracing::debug!(%space, "could not pass on an entry from a sync: {err}")
                }
            }
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
