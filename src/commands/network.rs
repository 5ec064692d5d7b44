//! The node on the network: `status`, `peers`, `peer add`, `invite`, `join`, `spaces`, `space`,
//! `sync`, and `open` (a login link to the web page).

use std::io::IsTerminal;

use anyhow::Result;

use super::{print_json, print_or_json};
use crate::backend;
use crate::cli::SpaceAction;
use crate::client::NodeClient;
use crate::home::Home;
use crate::output::say;
use crate::render;

/// Asks the node for a one-time login link to its web page, prints it and opens a browser
/// where there is a desktop to open it on.
pub(super) fn open(home: &Home, print_only: bool, json: bool) -> Result<()> {
    let login: cairn_api::LoginView = NodeClient::require(home)?.post("/api/login", &())?;
    if json {
        return print_json(&login);
    }
    say!("Open this link in a browser on this computer (it works once, for 10 minutes):");
    say!();
    say!("  {}", login.url);
    let desktop = std::env::var_os("DISPLAY").is_some()
        || std::env::var_os("WAYLAND_DISPLAY").is_some()
        || cfg!(target_os = "macos");
    if !print_only && desktop {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        let started = std::process::Command::new(opener)
            .arg(&login.url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if started.is_err() {
            say!();
            say!("(Could not start {opener}; copy the link into your browser.)");
        }
    }
    Ok(())
}

pub(super) fn status(home: &Home, json: bool) -> Result<()> {
    let Some(client) = NodeClient::find(home)? else {
        if json {
            return print_json(
                &serde_json::json!({"running": false, "home": home.root().display().to_string()}),
            );
        }
        say!(
            "No node is running for {}. Start it with `cairn node`.",
            home.root().display()
        );
        return Ok(());
    };
    let status: cairn_api::StatusView = client.get("/api/status", &[])?;
    if json {
        let mut value = serde_json::to_value(&status)?;
        value["running"] = serde_json::Value::Bool(true);
        return print_json(&value);
    }
    say!(
        "Node running for {} ({} entries)",
        status.org_name,
        status.entries
    );
    say!("  peer id   {}", status.peer_id);
    for address in &status.listen_addrs {
        say!("  listening {address}");
    }
    say!(
        "  reach     {}",
        render::field(&status.reachability.summary)
    );
    if status.reachability.relay_offered {
        say!("  relay     offered to nodes that cannot be reached directly");
    }
    say!("  api       {}", status.api);
    if let Some(web) = &status.web {
        say!(
            "  page      {} (for members' own computers)",
            render::field(&web.url)
        );
        if let Some(fingerprint) = &web.fingerprint {
            say!("  cert      SHA-256 {fingerprint}");
        }
    }
    if !status.search_up_to_date {
        say!("  search    catching up with the store; new entries may not be found yet");
    }
    say!("  spaces    {}", status.spaces.join(", "));
    say!(
        "  peers     {} connected, {} known",
        status.connected_peers.len(),
        status.known_peers.len()
    );
    for peer in &status.connected_peers {
        say!(
            "    {}: {} at {} ({})",
            render::peer_org(peer)?,
            peer.peer_id,
            peer.address,
            render::field(&peer.spaces.join(", "))
        );
        if let Some(sync) = &peer.last_sync {
            say!(
                "      last sync {}: {} ({} fetched)",
                sync.finished,
                render::field(&sync.message),
                sync.fetched
            );
        }
    }
    if let Some(reason) = &status.intake_stopped {
        say!("  intake    STOPPED: {}", render::field(reason));
    }
    match status.blocked_peers.len() {
        0 => {}
        1..=5 => say!(
            "  blocked   {} (sent invalid entries, or gossip far too fast)",
            status.blocked_peers.join(", ")
        ),
        many => {
            say!(
                "  blocked   {many} peers (sent invalid entries, or gossip far too fast; `cairn peers --json` lists them)"
            )
        }
    }
    if status.blocked_addresses > 0 {
        say!(
            "  blocked   {} addresses (sent peer after peer that was blocked)",
            status.blocked_addresses
        );
    }
    if status.refused_connections > 0 {
        say!(
            "  limits    {} inbound connections turned away since the start",
            status.refused_connections
        );
    }
    if let Some(keys) = &status.key_log {
        match keys.events {
            0 => {
                say!("  keys      no key log yet; start one with `cairn org adopt` (node stopped)")
            }
            events => say!(
                "  keys      {events} key event{}, current key {}{}",
                if events == 1 { "" } else { "s" },
                &keys.current_key[..12],
                if keys.next_key_here {
                    "; the next key is still on this computer: move it offline"
                } else {
                    ""
                }
            ),
        }
        if keys.duplicity {
            say!(
                "  keys      WARNING: two different histories of this organisation's key log were seen"
            );
        }
    }
    for fork in &status.forked_authors {
        let seqs: Vec<String> = fork.seqs.iter().map(ToString::to_string).collect();
        say!(
            "  forked    {} of {} signed two different entries with the same number ({}): {}",
            render::field(&fork.author_name),
            render::field(&fork.org_name),
            seqs.join(", "),
            fork.author
        );
    }
    Ok(())
}

pub(super) fn sync(
    home: &Home,
    peer: Option<String>,
    space: Option<String>,
    json: bool,
) -> Result<()> {
    let client = std::sync::Arc::new(NodeClient::require(home)?);
    let started = std::time::Instant::now();
    let request = cairn_api::SyncRequest { peer, space };
    let worker = {
        let client = client.clone();
        std::thread::spawn(move || client.post::<_, cairn_api::SyncView>("/api/sync", &request))
    };
    let show_bar = !json && std::io::stderr().is_terminal();
    while !worker.is_finished() {
        if show_bar
            && let Ok(progress) = client.get::<cairn_api::Progress>("/api/sync/progress", &[])
        {
            eprint!(
                "\r{}",
                render::progress_bar(progress.fetched, progress.expected)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    if show_bar {
        eprint!("\r{:60}\r", "");
    }
    let view = worker
        .join()
        .map_err(|_| anyhow::anyhow!("the sync request thread failed"))??;
    if json {
        return print_json(&view.syncs);
    }
    let fetched: u64 = view.syncs.iter().map(|sync| sync.fetched).sum();
    let bytes: u64 = view.syncs.iter().map(|sync| sync.bytes).sum();
    say!(
        "Synced with {} peer(s): {fetched} entries fetched, {} KiB exchanged, in {:.1} s.",
        view.syncs.len(),
        bytes / 1024,
        started.elapsed().as_secs_f64()
    );
    for sync in &view.syncs {
        say!(
            "  {}  {}  ({} fetched, {} round trips)",
            sync.peer_id,
            render::field(&sync.message),
            sync.fetched,
            sync.round_trips
        );
    }
    if view.syncs.iter().any(|sync| !sync.ok) {
        anyhow::bail!("some syncs failed; see above");
    }
    Ok(())
}

pub(super) fn peers(home: &Home, json: bool) -> Result<()> {
    let status: cairn_api::StatusView = NodeClient::require(home)?.get("/api/status", &[])?;
    if json {
        return print_json(&serde_json::json!({
            "connected": status.connected_peers,
            "known": status.known_peers,
            "blocked": status.blocked_peers,
        }));
    }
    if status.connected_peers.is_empty() {
        say!("No peers connected. Add one with `cairn peer add ADDRESS` or `cairn join TICKET`.");
    }
    for peer in &status.connected_peers {
        say!(
            "{}\n  {}  {}  {}",
            render::peer_org(peer)?,
            peer.peer_id,
            peer.address,
            render::field(&peer.spaces.join(", "))
        );
    }
    for address in &status.known_peers {
        say!("known: {address}");
    }
    for peer in &status.blocked_peers {
        say!("blocked: {peer}");
    }
    Ok(())
}

pub(super) fn add_peer(home: &Home, address: String, json: bool) -> Result<()> {
    let added: cairn_api::PeerAddedView =
        NodeClient::require(home)?.post("/api/peers", &cairn_api::AddressRequest { address })?;
    print_or_json(json, &added, || {
        say!("Connected to {} and remembered it.", added.peer_id)
    })
}

pub(super) fn forget_peer(home: &Home, peer: &str, json: bool) -> Result<()> {
    let forgotten = backend::open(home)?.forget_peer(peer)?;
    let view = cairn_api::ForgottenView { forgotten };
    print_or_json(json, &view, || {
        for item in &view.forgotten {
            say!("forgot: {item}");
        }
    })
}

pub(super) fn invite(
    home: &Home,
    expires: std::time::Duration,
    single_use: bool,
    json: bool,
) -> Result<()> {
    let query = [
        ("expires_secs", expires.as_secs().to_string()),
        ("single_use", single_use.to_string()),
    ];
    let ticket: cairn_api::TicketText = NodeClient::require(home)?.get("/api/invite", &query)?;
    print_or_json(json, &ticket, || {
        say!("{}", ticket.ticket);
        eprintln!(
            "Valid for {}{}. Give it to the other organisation; they run `cairn join` with it.",
            humantime::format_duration(expires),
            if single_use {
                ", for one node only"
            } else {
                ""
            }
        );
    })
}

pub(super) fn join(home: &Home, ticket: String, json: bool) -> Result<()> {
    let joined: cairn_api::PeerAddedView =
        NodeClient::require(home)?.post("/api/join", &cairn_api::TicketText { ticket })?;
    print_or_json(json, &joined, || {
        say!("Joined {} and its spaces.", joined.peer_id)
    })
}

pub(super) fn spaces(home: &Home, json: bool) -> Result<()> {
    let spaces = backend::open(home)?.spaces()?;
    print_or_json(json, &spaces, || {
        spaces.iter().for_each(|space| say!("{space}"))
    })
}

pub(super) fn space(home: &Home, action: &SpaceAction, json: bool) -> Result<()> {
    let backend = backend::open(home)?;
    let spaces = match action {
        SpaceAction::Join { name } => backend.join_space(name)?,
        SpaceAction::Leave { name } => backend.leave_space(name)?,
    };
    print_or_json(json, &spaces, || say!("Spaces: {}", spaces.join(", ")))
}
