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

use super::page::{Chrome, Form, MAX_ORGS, PageResult, check_csrf, render};

#[derive(Template)]
#[template(path = "peers.html")]
struct PeersPage {
    chrome: Chrome,
    headline: String,
    latest: String,
    peers: Vec<PeerLine>,
    entries: usize,
    spaces: String,
}

struct PeerLine {
    short_id: String,
    sync: String,
}

pub async fn peers(State(web): State<Web>, Extension(session): Extension<Session>) -> PageResult {
    let net = web.shared.client().status().await.map_err(Error::from)?;
    let (entries, orgs) = web
        .shared
        .read(|service| Ok((service.count()?, service.orgs(MAX_ORGS)?)))
        .await?;
    let now = SystemTime::now();
    let own_org = web.shared.credential().claims().org;
    let mut synced = 0;
    let peers: Vec<PeerLine> = net
        .connected
        .iter()
        .map(|peer| {
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
            PeerLine {
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
        .filter(|(org, _)| *org != own_org)
        .max_by_key(|(_, entry)| entry.header().created)
        .map(|(_, entry)| {
            format!(
                "Last heard from {} {}.",
                printable(&entry.credential().claims().org_name, Lines::One),
                ago(entry.header().created, now)
            )
        })
        .unwrap_or_default();
    render(&PeersPage {
        chrome: Chrome::new(&web, &session, "Peers", "/peers"),
        headline,
        latest,
        peers,
        entries,
        spaces: web.shared.spaces().join(", "),
    })
}

pub async fn sync(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> PageResult {
    check_csrf(&session, &Form::parse(&body))?;
    crate::daemon::sync::now(&web.shared, None, None).await?;
    Ok(Redirect::to("/peers").into_response())
}
