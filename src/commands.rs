//! What each command does. Commands read the home, run their operation through the backend
//! (the running node, or the service on the store) and print through `render`; all of them
//! report failures as errors for `main` to print.

use std::io::{IsTerminal, Read};

use anyhow::{Context, Result, bail};
use cairn_api::{ListQuery, MAX_PAGE, PolicyChange, PolicyView, Signing};
use cairn_core::body::normalize_tags;
use cairn_core::{Entry, Kind, RefKind, Story};
use cairn_node::service::{NewStory, Notes};
use serde::Serialize;

use crate::cli::{
    Cli, Command, InitArgs, ListArgs, PeerAction, PolicyMode, PublishArgs, SpaceAction, StoryKind,
};
use crate::client::NodeClient;
use crate::home::Home;
use crate::output::{say, say_raw};
use crate::render::{self, EntryView};
use crate::{backend, conversation, editor, node};

pub fn run(cli: Cli) -> Result<()> {
    let home = Home::locate(cli.home)?;
    let json = cli.json;
    match cli.command {
        Command::Init(args) => init(&home, &args, json),
        Command::Publish(args) => publish(&home, *args, json),
        Command::List(args) => list(&home, &args, json),
        Command::Show { id } => show(&home, &id, json),
        Command::Whoami => whoami(&home, json),
        Command::Reply {
            id,
            text,
            as_member,
        } => conversation::reply(&home, &id, text, as_member, json),
        Command::Respond {
            id,
            kind,
            note,
            as_member,
        } => conversation::respond(&home, &id, kind, note, as_member, json),
        Command::Retract {
            id,
            reason,
            as_member,
        } => conversation::retract(&home, &id, reason, as_member, json),
        Command::Member { action } => conversation::member(&home, action, json),
        Command::Amend(args) => conversation::amend(&home, *args, json),
        Command::Profile { action } => conversation::profile(&home, action, json),
        Command::Follow { org } => policy(&home, PolicyChange::Follow { org }, json),
        Command::Unfollow { org } => policy(&home, PolicyChange::Unfollow { org }, json),
        Command::Block { org, reason } => policy(
            &home,
            PolicyChange::Block {
                org,
                reason: reason.unwrap_or_default(),
            },
            json,
        ),
        Command::Unblock { org } => policy(&home, PolicyChange::Unblock { org }, json),
        Command::Policy { mode } => match mode {
            None => show_policy(&home, json),
            Some(PolicyMode::Open) => policy(&home, PolicyChange::Open, json),
            Some(PolicyMode::Follow) => policy(&home, PolicyChange::FollowOnly, json),
        },
        Command::Search { query, limit } => conversation::search(&home, &query, limit, json),
        Command::Reindex => conversation::reindex(&home, json),
        Command::Open { print_only } => open(&home, print_only, json),
        Command::Demo => crate::demo::run(),
        Command::Rename { org, name } => rename(&home, org.as_deref(), name.as_deref(), json),
        Command::Node(args) => node::run(&home, args),
        Command::Status => status(&home, json),
        Command::Peers => peers(&home, json),
        Command::Peer {
            action: PeerAction::Add { address },
        } => {
            let added: cairn_api::PeerAddedView = NodeClient::require(&home)?
                .post("/api/peers", &cairn_api::AddressRequest { address })?;
            print_or_json(json, &added, || {
                say!("Connected to {} and remembered it.", added.peer_id)
            })
        }
        Command::Invite => {
            let ticket: cairn_api::TicketText =
                NodeClient::require(&home)?.get("/api/invite", &[])?;
            print_or_json(json, &ticket, || say!("{}", ticket.ticket))
        }
        Command::Join { ticket } => {
            let joined: cairn_api::PeerAddedView =
                NodeClient::require(&home)?.post("/api/join", &cairn_api::TicketText { ticket })?;
            print_or_json(json, &joined, || {
                say!("Joined {} and its spaces.", joined.peer_id)
            })
        }
        Command::Sync { peer, space } => sync(&home, peer, space, json),
        Command::Spaces => {
            let spaces = backend::open(&home)?.spaces()?;
            print_or_json(json, &spaces, || {
                spaces.iter().for_each(|space| say!("{space}"))
            })
        }
        Command::Space { action } => {
            let backend = backend::open(&home)?;
            let spaces = match &action {
                SpaceAction::Join { name } => backend.join_space(name)?,
                SpaceAction::Leave { name } => backend.leave_space(name)?,
            };
            print_or_json(json, &spaces, || say!("Spaces: {}", spaces.join(", ")))
        }
    }
}

fn print_or_json<T: Serialize>(json: bool, value: &T, text: impl FnOnce()) -> Result<()> {
    if json {
        print_json(value)
    } else {
        text();
        Ok(())
    }
}

#[derive(Serialize)]
struct WhoamiView {
    org: String,
    org_name: String,
    member: String,
    member_name: String,
    home: String,
    entries: usize,
}

fn init(home: &Home, args: &InitArgs, json: bool) -> Result<()> {
    let org_name = args.org.trim();
    let member_name = match &args.name {
        Some(name) => name.trim().to_string(),
        None => format!("Member of {org_name}"),
    };
    let identity = home.init(org_name, &member_name)?;
    let claims = identity.credential.claims();
    if json {
        return print_json(&WhoamiView {
            org: claims.org.to_string(),
            org_name: claims.org_name.clone(),
            member: claims.member.to_string(),
            member_name: claims.member_name.clone(),
            home: home.root().display().to_string(),
            entries: 0,
        });
    }
    say!("Created a Cairn identity in {}", home.root().display());
    say!();
    say!("  organisation  {}", claims.org_name);
    say!("  org id        {}", claims.org);
    say!("  you           {}", claims.member_name);
    say!("  member id     {}", claims.member);
    say!();
    say!(
        "Back up {} : the keys in it cannot be recovered.",
        home.root().join("keys").display()
    );
    say!();
    say!("Next, try:");
    say!(
        "  cairn publish --kind learning --title \"What we learned\" --summary \"In plain words...\""
    );
    say!("  cairn list");
    say!("  cairn whoami");
    Ok(())
}

fn publish(home: &Home, args: PublishArgs, json: bool) -> Result<()> {
    home.load()?;
    let story = story_from(args.clone_story_parts()?, &args)?;
    let kind = match args.kind {
        StoryKind::Learning => Kind::LEARNING,
        StoryKind::Failure => Kind::FAILURE,
        StoryKind::Question => Kind::QUESTION,
    };
    let mut links = Vec::new();
    for (name, target) in args.typed_links() {
        let kind = RefKind::from_name(name).context("typed link names are known")?;
        links.push((kind, target));
    }
    let new = NewStory {
        kind,
        story,
        // Empty: the joined spaces.
        spaces: args.spaces.clone(),
        links,
    };
    let signing = Signing {
        as_member: args.as_member.clone(),
        on_behalf: args.on_behalf,
    };
    let entry = backend::open(home)?.publish(new, signing)?;
    if json {
        return print_json(&EntryView::new(&entry));
    }
    say!("{}", entry.id());
    Ok(())
}

/// Body text and sections as given on the command line, before the editor may fill them.
struct StoryParts {
    summary: String,
    text: Option<String>,
    sections: [Option<String>; 5],
}

impl PublishArgs {
    fn clone_story_parts(&self) -> Result<StoryParts> {
        let text = match (&self.body, &self.body_file) {
            (Some(body), _) => Some(body.clone()),
            (None, Some(path)) if path.as_os_str() == "-" => {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text).context(
                    "could not read the body from standard input (it must be UTF-8 text)",
                )?;
                Some(text)
            }
            (None, Some(path)) => Some(std::fs::read_to_string(path).with_context(|| {
                format!(
                    "could not read the body from {} (it must be UTF-8 text)",
                    path.display()
                )
            })?),
            (None, None) => None,
        };
        Ok(StoryParts {
            summary: self.summary.clone().unwrap_or_default(),
            text,
            sections: [
                self.context.clone(),
                self.tried.clone(),
                self.happened.clone(),
                self.learned.clone(),
                self.next.clone(),
            ],
        })
    }
}

fn story_from(parts: StoryParts, args: &PublishArgs) -> Result<Story> {
    let no_content = parts.text.is_none() && parts.sections.iter().all(Option::is_none);
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let (summary, text, sections) = if no_content && interactive {
        let mut filled: editor::Sections = Default::default();
        filled[0] = parts.summary.clone();
        let written = editor::edit(&args.title, &filled)?;
        if written.iter().all(String::is_empty) {
            bail!("the entry was left empty, so nothing was published");
        }
        let [summary, context, tried, happened, learned, next, text] = written;
        (summary, text, [context, tried, happened, learned, next])
    } else {
        (
            parts.summary,
            parts.text.unwrap_or_default(),
            parts.sections.map(Option::unwrap_or_default),
        )
    };
    let tags = normalize_tags(args.tags.iter().map(String::as_str))?;
    let [context, tried, happened, learned, next] = sections;
    // The service tidies whitespace, as for every other way of publishing.
    Ok(Story {
        title: args.title.clone(),
        summary,
        text,
        context,
        tried,
        happened,
        learned,
        next,
        tags,
        language: args.language.clone().unwrap_or_default(),
        links: args.links.clone(),
    })
}

/// Lists entries page by page until `--limit` is reached or nothing more matches, so a
/// listing answers the same with or without a node.
fn list(home: &Home, args: &ListArgs, json: bool) -> Result<()> {
    let backend = backend::open(home)?;
    let mut query = ListQuery {
        kind: args.kind.clone(),
        space: args.space.clone(),
        tag: args.tag.clone(),
        org: args.org.clone(),
        author: args.author.clone(),
        limit: None,
        cursor: args.after.clone(),
    };
    let mut entries = Vec::new();
    let mut notes = Notes::default();
    let next = loop {
        query.limit = Some(args.limit.saturating_sub(entries.len()).min(MAX_PAGE));
        let page = backend.list(&query)?;
        entries.extend(page.entries);
        notes.extend(page.notes);
        match page.next {
            Some(next) if entries.len() < args.limit => query.cursor = Some(next),
            next => break next,
        }
    };
    print_entries(
        &entries,
        &notes,
        next.as_deref(),
        json,
        "No entries match. Publish one with `cairn publish`.",
    )
}

/// A list of entries as text (or JSON), with `when_empty` if there are none. `next`, for a
/// listing cut short, is where it continues.
pub fn print_entries(
    entries: &[Entry],
    notes: &Notes,
    next: Option<&str>,
    json: bool,
    when_empty: &str,
) -> Result<()> {
    if json {
        let mut views: Vec<_> = entries
            .iter()
            .map(|entry| EntryView::noted(entry, notes))
            .collect();
        if let Some(last) = views.last_mut() {
            last.cursor = next.map(str::to_string);
        }
        return print_json(&views);
    }
    if entries.is_empty() {
        say!("{when_empty}");
    }
    for entry in entries {
        say!("{}", render::list_item(entry, notes));
    }
    if let Some(next) = next {
        // On standard error, so that a script reading the list sees entries only.
        eprintln!("More entries match; add `--after {next}` to the same command to see them.");
    }
    Ok(())
}

fn show(home: &Home, prefix: &str, json: bool) -> Result<()> {
    let shown = backend::open(home)?.show(prefix)?;
    let notes = &shown.notes;
    if json {
        return print_json(&render::ShowView {
            entry: EntryView::noted(&shown.entry, notes),
            related: shown
                .related
                .iter()
                .map(|entry| EntryView::noted(entry, notes))
                .collect(),
        });
    }
    let thread = cairn_node::thread::Thread::gather(&shown.entry, shown.related.iter().cloned());
    say_raw!(
        "{}{}",
        render::entry_text(&shown.entry, notes),
        render::thread_text(&thread, notes)
    );
    Ok(())
}

/// Applies a policy change.
fn policy(home: &Home, change: PolicyChange, json: bool) -> Result<()> {
    let view = backend::open(home)?.change_policy(&change)?;
    if json {
        return print_json(&view);
    }
    match &change {
        PolicyChange::Block { .. } => say!(
            "Blocked. Removed {} of their entries; their entries will be refused from now on.",
            view.removed
        ),
        PolicyChange::Unblock { .. } => say!("Unblocked: their entries are accepted again."),
        PolicyChange::Follow { .. } => say!("Following."),
        PolicyChange::Unfollow { .. } => say!("No longer following."),
        PolicyChange::Open | PolicyChange::FollowOnly => {}
    }
    print_policy(&view);
    Ok(())
}

fn show_policy(home: &Home, json: bool) -> Result<()> {
    let view = backend::open(home)?.policy()?;
    if json {
        return print_json(&view);
    }
    print_policy(&view);
    Ok(())
}

fn print_policy(view: &PolicyView) {
    let name = |org: &cairn_api::OrgView| {
        if org.name.is_empty() {
            org.org.clone()
        } else {
            format!("{} ({})", org.name, &org.org[..12])
        }
    };
    match view.mode.as_str() {
        "follow" => say!("Policy: follow (entries only from the organisations followed)"),
        _ => say!("Policy: open (entries from every organisation not blocked)"),
    }
    for org in &view.followed {
        say!("  following {}", name(org));
    }
    for org in &view.blocked {
        let reason = if org.reason.is_empty() {
            String::new()
        } else {
            format!(": {}", org.reason)
        };
        say!("  blocked   {}{reason}", name(org));
    }
    say!(
        "  at most {} entries kept per organisation",
        view.max_entries_per_org
    );
}

/// Asks the node for a one-time login link to its web page, prints it and opens a browser
/// where there is a desktop to open it on.
fn open(home: &Home, print_only: bool, json: bool) -> Result<()> {
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

fn whoami(home: &Home, json: bool) -> Result<()> {
    let identity = home.load()?;
    let entries = backend::open(home)?.count()?;
    let claims = identity.credential.claims();
    let view = WhoamiView {
        org: claims.org.to_string(),
        org_name: claims.org_name.clone(),
        member: claims.member.to_string(),
        member_name: claims.member_name.clone(),
        home: home.root().display().to_string(),
        entries,
    };
    if json {
        return print_json(&view);
    }
    say!("{}, member of {}", view.member_name, view.org_name);
    say!("  member id  {}", view.member);
    say!("  org id     {}", view.org);
    say!("  home       {}", view.home);
    say!("  entries    {} in the local store", view.entries);
    Ok(())
}

fn rename(home: &Home, org: Option<&str>, name: Option<&str>, json: bool) -> Result<()> {
    let identity = home.rename(org, name)?;
    let claims = identity.credential.claims();
    print_or_json(
        json,
        &serde_json::json!({"org_name": claims.org_name, "member_name": claims.member_name}),
        || {
            say!(
                "From now on you publish as {} of {}.",
                claims.member_name,
                claims.org_name
            );
            if NodeClient::find(home).ok().flatten().is_some() {
                say!("Restart the running node so that it uses the new names.");
            }
        },
    )
}

fn status(home: &Home, json: bool) -> Result<()> {
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
    say!("  api       {}", status.api);
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
            "    {} at {} ({})",
            peer.peer_id,
            peer.address,
            peer.spaces.join(", ")
        );
        if let Some(sync) = &peer.last_sync {
            say!(
                "      last sync {}: {} ({} fetched)",
                sync.finished,
                sync.message,
                sync.fetched
            );
        }
    }
    if !status.blocked_peers.is_empty() {
        say!(
            "  blocked   {} (sent invalid entries)",
            status.blocked_peers.join(", ")
        );
    }
    for fork in &status.forked_authors {
        let seqs: Vec<String> = fork.seqs.iter().map(ToString::to_string).collect();
        say!(
            "  forked    {} of {} signed two different entries with the same number ({}): {}",
            fork.author_name,
            fork.org_name,
            seqs.join(", "),
            fork.author
        );
    }
    Ok(())
}

fn sync(home: &Home, peer: Option<String>, space: Option<String>, json: bool) -> Result<()> {
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
            sync.message,
            sync.fetched,
            sync.round_trips
        );
    }
    if view.syncs.iter().any(|sync| !sync.ok) {
        anyhow::bail!("some syncs failed; see above");
    }
    Ok(())
}

fn peers(home: &Home, json: bool) -> Result<()> {
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
            "{}  {}  {}",
            peer.peer_id,
            peer.address,
            peer.spaces.join(", ")
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

pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    say!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
