//! `cairn reply`, `cairn respond`, `cairn search` and `cairn reindex`: writing under an entry,
//! and finding entries. Each goes through the node's API when a node runs, and works on the
//! store directly when none does.

use std::io::{IsTerminal, Read};

use anyhow::{Context, Result, bail};
use cairn_core::{Draft, Reply, Response, ResponseType, Retraction, Timestamp};
use cairn_node::api::{
    FramesView, PublishedView, ReindexView, ReplyRequest, RespondRequest, RetractRequest,
};

use crate::cli::ResponseKindArg;
use crate::client::{self, NodeClient};
use crate::commands::{print_json, publish_offline};
use crate::home::Home;
use crate::output::say;
use crate::render::{self, EntryView, Notes};

pub fn reply(home: &Home, prefix: &str, text: Option<String>, json: bool) -> Result<()> {
    let text = match text {
        Some(text) => text,
        None if !std::io::stdin().is_terminal() => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("could not read the reply from standard input (it must be UTF-8)")?;
            text
        }
        None => bail!("give the reply with --text \"...\" or pipe it in"),
    };
    let reply = Reply { text };
    if let Some(client) = NodeClient::find(home)? {
        let path = format!("/api/entries/{}/reply", prefix.trim());
        let published: PublishedView = client.post(&path, &ReplyRequest { text: reply.text })?;
        return print_published(&published, json);
    }
    let store = home.open_store()?;
    let target = store
        .get(&store.resolve(prefix)?)?
        .context("the entry disappeared while it was being read; try again")?;
    let draft = Draft::reply(
        target.id(),
        &reply,
        target.header().spaces.clone(),
        Timestamp::now(),
    )?;
    let entry = publish_offline(home, &store, draft)?;
    print_entry(&entry, json)
}

pub fn respond(
    home: &Home,
    prefix: &str,
    kind: ResponseKindArg,
    note: Option<String>,
    json: bool,
) -> Result<()> {
    let kind = match kind {
        ResponseKindArg::ThankYou => ResponseType::THANK_YOU,
        ResponseKindArg::MeToo => ResponseType::ME_TOO,
        ResponseKindArg::ThisHelpedUs => ResponseType::THIS_HELPED_US,
        ResponseKindArg::Challenge => ResponseType::CHALLENGE,
        ResponseKindArg::OfferToTalk => ResponseType::OFFER_TO_TALK,
    };
    let response = Response {
        kind,
        note: note.unwrap_or_default(),
    };
    if let Some(client) = NodeClient::find(home)? {
        let path = format!("/api/entries/{}/respond", prefix.trim());
        let request = RespondRequest {
            kind: kind.to_string(),
            note: response.note,
        };
        let published: PublishedView = client.post(&path, &request)?;
        return print_published(&published, json);
    }
    let store = home.open_store()?;
    let target = store
        .get(&store.resolve(prefix)?)?
        .context("the entry disappeared while it was being read; try again")?;
    let draft = Draft::response(
        target.id(),
        &response,
        target.header().spaces.clone(),
        Timestamp::now(),
    )?;
    let entry = publish_offline(home, &store, draft)?;
    print_entry(&entry, json)
}

pub fn retract(home: &Home, prefix: &str, reason: String, json: bool) -> Result<()> {
    if let Some(client) = NodeClient::find(home)? {
        let path = format!("/api/entries/{}/retract", prefix.trim());
        let published: PublishedView = client.post(&path, &RetractRequest { reason })?;
        return print_published(&published, json);
    }
    let identity = home.load()?;
    let store = home.open_store()?;
    let target = store
        .get(&store.resolve(prefix)?)?
        .context("the entry disappeared while it was being read; try again")?;
    if target.header().author != identity.member_key.member_id() {
        bail!(
            "entry {} was written by {} of {}; only its author can retract it",
            target.id(),
            target.credential().claims().member_name,
            target.credential().claims().org_name
        );
    }
    let draft = Draft::retraction(
        target.id(),
        &Retraction { reason },
        target.header().spaces.clone(),
        Timestamp::now(),
    )?;
    let entry = publish_offline(home, &store, draft)?;
    print_entry(&entry, json)
}

pub fn search(home: &Home, query: &str, limit: usize, json: bool) -> Result<()> {
    let (entries, notes) = if let Some(client) = NodeClient::find(home)? {
        let frames: FramesView = client.get(
            "/api/search",
            &[("q", query.to_string()), ("limit", limit.to_string())],
        )?;
        (client::entries(&frames.frames)?, Notes::from_view(&frames))
    } else {
        home.load()?;
        let store = home.open_store()?;
        let dir = home.node_files().search_index;
        // With no node running, bring the index up to date first (it may be missing).
        let index = cairn_search::SearchIndex::open(&dir)
            .with_context(|| format!("the search index in {} cannot be used", dir.display()))?;
        cairn_node::search::catch_up(&store, &index)?;
        let mut entries = Vec::new();
        for hit in index.search(query, limit)? {
            if let Some(entry) = store.get(&hit.id)? {
                entries.push(entry);
            }
        }
        let notes = Notes::read(&store, &entries)?;
        (entries, notes)
    };
    if json {
        let views: Vec<_> = entries
            .iter()
            .map(|entry| EntryView::new(entry).noted(&notes))
            .collect();
        return print_json(&views);
    }
    if entries.is_empty() {
        say!("Nothing matches {query:?}. Try fewer or different words.");
    }
    for entry in &entries {
        say!("{}", render::list_item(entry, &notes));
    }
    Ok(())
}

pub fn reindex(home: &Home, json: bool) -> Result<()> {
    let view = if let Some(client) = NodeClient::find(home)? {
        client.post::<_, ReindexView>("/api/reindex", &())?
    } else {
        home.load()?;
        let store = home.open_store()?;
        let entries = cairn_node::search::reindex(&store, &home.node_files().search_index)?;
        ReindexView { entries }
    };
    if json {
        return print_json(&view);
    }
    say!("Rebuilt the search index: {} entries.", view.entries);
    Ok(())
}

fn print_published(published: &PublishedView, json: bool) -> Result<()> {
    if json {
        let entries = client::entries(std::slice::from_ref(&published.frame))?;
        return print_json(&entries.iter().map(EntryView::new).next());
    }
    say!("{}", published.id);
    Ok(())
}

fn print_entry(entry: &cairn_core::Entry, json: bool) -> Result<()> {
    if json {
        return print_json(&EntryView::new(entry));
    }
    say!("{}", entry.id());
    Ok(())
}
