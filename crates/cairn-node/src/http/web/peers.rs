//! `GET /peers`: who this node is connected to and how up to date it is; `POST /sync`.

use std::time::SystemTime;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Redirect};

use super::view::ago;
use super::{Session, Web};
use cairn_core::display::{Lines, printable};

use crate::Error;
use crate::service::names;

use super::page::{Chrome, MAX_ORGS, PageResult, posted_form, render};

#[derive(Template)]
#[template(path = "peers.html")]
struct PeersPage {
    chrome: Chrome,
    headline: String,
    latest: String,
    peers: Vec<PeerLine>,
    entries: usize,
    spaces: String,
    /// How other nodes can reach this one, in plain words.
    reach: String,
}

struct PeerLine {
    /// The organisation its binding names, as "Riverside Trust (followed)", or "An
    /// anonymous node" when it has no binding that checks.
    org: String,
    short_id: String,
    sync: String,
}

pub async fn peers(State(web): State<Web>, Extension(session): Extension<Session>) -> PageResult {
    let net = web.shared.client().status().await.map_err(Error::from)?;
    let hellos: Vec<_> = net
        .connected
        .iter()
        .map(|peer| web.shared.hello_of(&peer.peer_id))
        .collect();
    let bound: Vec<_> = hellos
        .iter()
        .filter_map(|hello| hello.as_ref()?.org.clone())
        .collect();
    let (entries, orgs, labels) = web
        .shared
        .read(move |service| {
            let labels = names::claimed_labels(
                service.store(),
                service.own_org(),
                bound.iter().map(|(org, name)| (*org, Some(name.as_str()))),
            )?;
            Ok((service.count()?, service.directory(MAX_ORGS)?, labels))
        })
        .await?;
    let now = SystemTime::now();
    let own_org = web.shared.credential().claims().org;
    let mut synced = 0;
    let peers: Vec<PeerLine> = net
        .connected
        .iter()
        .zip(&hellos)
        .map(|(peer, hello)| {
            let org = match hello.as_ref().and_then(|hello| hello.org.as_ref()) {
                Some((org, name)) => match labels.get(org) {
                    Some(label) => format!(
                        "{} ({})",
                        printable(label.shown(name), Lines::One),
                        label.describe()
                    ),
                    None => printable(name, Lines::One),
                },
                None => "An anonymous node".into(),
            };
            let sync = match web.shared.last_sync(&peer.peer_id) {
                Some(record) if record.ok => {
                    synced += 1;
                    format!("up to date (last caught up {})", record.finished)
                }
                Some(record) => format!(
                    "the last catch-up failed: {}",
                    printable(&record.message, Lines::One)
                ),
                None => "connected; catching up has not finished yet".into(),
            };
            let mut sync = sync;
            if let Some(hello) = hello.as_ref().filter(|hello| hello.clock_is_off()) {
                sync.push_str(&format!(
                    "; its clock is {} minutes {} this node's, so entries written there carry that time",
                    hello.clock_skew_ms.unsigned_abs() / 60_000,
                    if hello.clock_skew_ms > 0 { "ahead of" } else { "behind" }
                ));
            }
            PeerLine {
                org,
                short_id: peer
                    .peer_id
                    .to_string()
                    .chars()
                    .rev()
                    .take(8)
                    .collect::<String>()
                    .chars()
                    .rev()
                    .collect(),
                sync,
            }
        })
        .collect();
    let headline = match (peers.len(), synced) {
        (0, _) => "Not connected to any other node right now. Entries you write wait here and go out when a peer connects.".to_string(),
        (1, 1) => "Connected to 1 other node and up to date with it.".to_string(),
        (count, done) if count == done => format!("Connected to {count} other nodes and up to date with all of them."),
        (count, done) => format!("Connected to {count} other nodes; up to date with {done} of them."),
    };
    let latest = orgs
        .iter()
        .filter(|known| known.org() != own_org)
        .max_by_key(|known| known.newest.header().created)
        .map(|known| {
            format!(
                "Last heard from {} {}.",
                known.display_with(|name| printable(name, Lines::One)),
                ago(known.newest.header().created, now)
            )
        })
        .unwrap_or_default();
    let reach = crate::wire::reachability_view(&net.reachability, net.relay_offered, |relay| {
        web.shared
            .hello_of(relay)
            .and_then(|hello| hello.org.map(|(_, name)| name))
    })
    .summary;
    render(&PeersPage {
        chrome: Chrome::new(&web, &session, "Peers", "/peers"),
        headline,
        latest,
        peers,
        entries,
        spaces: web.shared.spaces().join(", "),
        reach,
    })
}

pub async fn sync(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> PageResult {
    posted_form(&session, &body)?;
    crate::daemon::sync::now(&web.shared, None, None).await?;
    Ok(Redirect::to("/peers").into_response())
}
