//! The life of an entry after publishing and the people behind it: `cairn reply`, `respond`,
//! `amend`, `retract` and `member`, plus `search` and `reindex`. Each goes through the node's
//! API when a node runs, and works on the store directly when none does.

use std::io::{IsTerminal, Read};

use anyhow::{Context, Result, bail};
use cairn_core::{
    Draft, Entry, Reply, Response, ResponseType, Retraction, Revocation, Space, Story, Timestamp,
};
use cairn_node::PublishAs;
use cairn_node::api::{
    AmendRequest, FramesView, MemberRequest, MemberView, ProfileRequest, ProfileView,
    PublishedView, ReindexView, ReplyRequest, RespondRequest, RetractRequest, RevokeRequest,
};

use crate::cli::{AmendArgs, MemberAction, ProfileAction, ResponseKindArg};
use crate::client::{self, NodeClient};
use crate::commands::{offline_signer, print_entries, print_json, publish_offline};
use crate::home::Home;
use crate::output::say;
use crate::render::{EntryView, Notes};

pub fn reply(
    home: &Home,
    prefix: &str,
    text: Option<String>,
    as_member: Option<String>,
    json: bool,
) -> Result<()> {
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
        let request = ReplyRequest {
            text: reply.text,
            as_member,
            on_behalf: false,
        };
        let published: PublishedView = client.post(&path, &request)?;
        return print_published(&published, json);
    }
    let entry = publish_offline_under(home, prefix, as_member, |target, spaces| {
        Draft::reply(target, &reply, spaces, Timestamp::now())
    })?;
    print_entry(&entry, json)
}

pub fn respond(
    home: &Home,
    prefix: &str,
    kind: ResponseKindArg,
    note: Option<String>,
    as_member: Option<String>,
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
            as_member,
            on_behalf: false,
        };
        let published: PublishedView = client.post(&path, &request)?;
        return print_published(&published, json);
    }
    let entry = publish_offline_under(home, prefix, as_member, |target, spaces| {
        Draft::response(target, &response, spaces, Timestamp::now())
    })?;
    print_entry(&entry, json)
}

/// Revises a story: the current version's fields, with the ones given replaced.
pub fn amend(home: &Home, args: AmendArgs, json: bool) -> Result<()> {
    let current = |entry: &Entry, notes: &Notes| -> Result<Story> {
        notes
            .story(entry)
            .context("only learning, failure and question entries can be amended")
    };
    let merge = |mut story: Story| -> Result<Story> {
        let replace = |field: &mut String, given: &Option<String>| {
            if let Some(given) = given {
                *field = given.trim().to_string();
            }
        };
        replace(&mut story.title, &args.title);
        replace(&mut story.summary, &args.summary);
        replace(&mut story.text, &args.body);
        replace(&mut story.context, &args.context);
        replace(&mut story.tried, &args.tried);
        replace(&mut story.happened, &args.happened);
        replace(&mut story.learned, &args.learned);
        replace(&mut story.next, &args.next);
        if !args.tags.is_empty() {
            story.tags = cairn_core::body::normalize_tags(args.tags.iter().map(String::as_str))?;
        }
        Ok(story)
    };
    if let Some(client) = NodeClient::find(home)? {
        let frames: FramesView = client.get(&format!("/api/entries/{}", args.id.trim()), &[])?;
        let entry = client::entries(&frames.frames)?
            .into_iter()
            .next()
            .context("the node sent no entry")?;
        let story = merge(current(&entry, &Notes::from_view(&frames))?)?;
        let request = AmendRequest {
            story,
            as_member: args.as_member.clone(),
            on_behalf: false,
        };
        let path = format!("/api/entries/{}/amend", args.id.trim());
        let published: PublishedView = client.post(&path, &request)?;
        return print_published(&published, json);
    }
    let publish_as = PublishAs::from_request(args.as_member.clone(), false)?;
    let signer = offline_signer(home, &publish_as)?;
    let store = home.open_store()?;
    let mut entry = held(&store, &args.id)?;
    // An earlier revision's id stands for the story it revises.
    if entry.header().kind == cairn_core::Kind::AMEND
        && let Some(original) = entry.header().refs.first().map(|r| r.target)
        && let Some(original) = store.get(&original)?
    {
        entry = original;
    }
    if entry.body().is_none() {
        bail!(
            "entry {} was retracted by its author; it cannot be amended",
            entry.id()
        );
    }
    if !entry.header().kind.has_story() {
        bail!(
            "only learning, failure and question entries can be amended (this is a {})",
            entry.header().kind
        );
    }
    if entry.header().author != signer.key.member_id() {
        bail!(
            "entry {} was written by {} of {}; only its author can amend it",
            entry.id(),
            entry.credential().claims().member_name,
            entry.credential().claims().org_name
        );
    }
    let notes = Notes::read(&store, std::slice::from_ref(&entry))?;
    let story = merge(current(&entry, &notes)?)?;
    let draft = Draft::amendment(
        entry.id(),
        &story,
        entry.header().spaces.clone(),
        Timestamp::now(),
    )?;
    let revision = publish_offline(home, &store, draft, &publish_as)?;
    print_entry(&revision, json)
}

pub fn retract(
    home: &Home,
    prefix: &str,
    reason: String,
    as_member: Option<String>,
    json: bool,
) -> Result<()> {
    if let Some(client) = NodeClient::find(home)? {
        let path = format!("/api/entries/{}/retract", prefix.trim());
        let request = RetractRequest {
            reason,
            as_member,
            on_behalf: false,
        };
        let published: PublishedView = client.post(&path, &request)?;
        return print_published(&published, json);
    }
    let publish_as = PublishAs::from_request(as_member, false)?;
    let signer = offline_signer(home, &publish_as)?;
    let store = home.open_store()?;
    let target = held(&store, prefix)?;
    if matches!(
        target.header().kind,
        cairn_core::Kind::RETRACT | cairn_core::Kind::REVOKE
    ) {
        bail!("retractions and revocations cannot be retracted");
    }
    if target.header().author != signer.key.member_id() {
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
    let entry = publish_offline(home, &store, draft, &publish_as)?;
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
        let entries = cairn_node::search::matching(&store, &index, query, limit)?;
        let notes = Notes::read(&store, &entries)?;
        (entries, notes)
    };
    print_entries(
        &entries,
        &notes,
        json,
        &format!("Nothing matches {query:?}. Try fewer or different words."),
    )
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

/// Publishes, with no node running, an entry about the held entry `prefix` names (a reply or
/// a response), in that entry's spaces.
fn publish_offline_under(
    home: &Home,
    prefix: &str,
    as_member: Option<String>,
    draft: impl FnOnce(cairn_core::EntryId, Vec<Space>) -> Result<Draft, cairn_core::Error>,
) -> Result<Entry> {
    let store = home.open_store()?;
    let target = held(&store, prefix)?;
    let draft = draft(target.id(), target.header().spaces.clone())?;
    publish_offline(
        home,
        &store,
        draft,
        &PublishAs::from_request(as_member, false)?,
    )
}

/// The entry an id or unique prefix names, read from the store.
fn held(store: &cairn_store::Store, prefix: &str) -> Result<Entry> {
    store
        .get(&store.resolve(prefix)?)?
        .context("the entry disappeared while it was being read; try again")
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

pub fn member(home: &Home, action: MemberAction, json: bool) -> Result<()> {
    match action {
        MemberAction::Add { name } => {
            let view: MemberView = match NodeClient::find(home)? {
                Some(client) => client.post("/api/members", &MemberRequest { name })?,
                None => {
                    let identity = home.load()?;
                    let keystore = cairn_node::keystore::Keystore::new(home.node_files().keys);
                    let signer =
                        keystore.add_member(&name, &identity.credential.claims().org_name)?;
                    MemberView {
                        name: signer.credential.claims().member_name.clone(),
                        member: signer.key.member_id().to_string(),
                        revoked_after: None,
                    }
                }
            };
            if json {
                return print_json(&view);
            }
            say!("Added {} (member id {}).", view.name, view.member);
            say!(
                "They publish with `cairn publish --as \"{}\" ...`.",
                view.name
            );
            Ok(())
        }
        MemberAction::List => {
            let members: Vec<MemberView> = match NodeClient::find(home)? {
                Some(client) => client.get("/api/members", &[])?,
                None => {
                    let identity = home.load()?;
                    let org = identity.credential.claims().org;
                    let store = home.open_store()?;
                    let keystore = cairn_node::keystore::Keystore::new(home.node_files().keys);
                    keystore
                        .members()?
                        .into_iter()
                        .map(|member| {
                            Ok(MemberView {
                                revoked_after: store.revoked_after(&org, &member.member)?,
                                name: member.name,
                                member: member.member.to_string(),
                            })
                        })
                        .collect::<Result<_>>()?
                }
            };
            if json {
                return print_json(&members);
            }
            if members.is_empty() {
                say!("No members added yet. Add one with `cairn member add NAME`.");
            }
            for member in &members {
                match member.revoked_after {
                    Some(seq) => say!(
                        "{}  {}  (revoked; entries after number {seq} are refused)",
                        member.member,
                        member.name
                    ),
                    None => say!("{}  {}", member.member, member.name),
                }
            }
            Ok(())
        }
        MemberAction::Revoke { name, reason } => {
            let request = RevokeRequest {
                name: name.clone(),
                reason: reason.unwrap_or_default(),
            };
            let id = match NodeClient::find(home)? {
                Some(client) => {
                    let published: PublishedView = client.post("/api/members/revoke", &request)?;
                    if json {
                        return print_published(&published, json);
                    }
                    published.id
                }
                None => {
                    let store = home.open_store()?;
                    let keystore = cairn_node::keystore::Keystore::new(home.node_files().keys);
                    let member = keystore.member(&name)?.key.member_id();
                    let last_valid_seq = store.contiguous_head(&member)?;
                    let spaces = home.default_spaces()?;
                    let revocation = Revocation {
                        member,
                        last_valid_seq,
                        reason: request.reason,
                    };
                    let draft = Draft::revocation(&revocation, spaces, Timestamp::now())?;
                    let entry = publish_offline(home, &store, draft, &PublishAs::Organisation)?;
                    if json {
                        return print_entry(&entry, json);
                    }
                    entry.id().to_string()
                }
            };
            say!(
                "Revoked {name}: every node that receives revocation {} refuses their later entries.",
                &id[..12]
            );
            Ok(())
        }
    }
}

pub fn profile(home: &Home, action: ProfileAction, json: bool) -> Result<()> {
    match action {
        ProfileAction::Set {
            org,
            as_member,
            about,
            website,
            contact,
        } => {
            let profile = cairn_core::Profile {
                about: about.trim().to_string(),
                website: website.trim().to_string(),
                contact: contact.trim().to_string(),
            };
            if let Some(client) = NodeClient::find(home)? {
                let request = ProfileRequest {
                    profile,
                    as_member,
                    on_behalf: org,
                };
                let published: PublishedView = client.post("/api/profile", &request)?;
                return print_published(&published, json);
            }
            let publish_as = PublishAs::from_request(as_member, org)?;
            let store = home.open_store()?;
            let spaces = home.default_spaces()?;
            let draft = Draft::profile(&profile, spaces, Timestamp::now())?;
            let entry = publish_offline(home, &store, draft, &publish_as)?;
            print_entry(&entry, json)
        }
        ProfileAction::Show { id } => {
            let author = match id {
                Some(id) => id.trim().to_string(),
                None => {
                    cairn_core::MemberId::from(home.load()?.credential.claims().org).to_string()
                }
            };
            let view: Option<ProfileView> = match NodeClient::find(home)? {
                Some(client) => client.get("/api/profile", &[("author", author.clone())])?,
                None => {
                    let member = author
                        .parse()
                        .map_err(|_| anyhow::anyhow!("{author:?} is not a 64-digit id"))?;
                    cairn_node::api::profile_view(&home.open_store()?, &member)?
                }
            };
            if json {
                return print_json(&view);
            }
            match view {
                None => say!("No profile from {author} yet. Publish one with `cairn profile set`."),
                Some(view) => {
                    say!("{} (updated {})", view.name, view.updated);
                    if !view.about.is_empty() {
                        say!("  {}", view.about);
                    }
                    if !view.website.is_empty() {
                        say!("  website  {}", view.website);
                    }
                    if !view.contact.is_empty() {
                        say!("  contact  {}", view.contact);
                    }
                }
            }
            Ok(())
        }
    }
}
