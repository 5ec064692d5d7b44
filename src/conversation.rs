//! The life of an entry after publishing and the people behind it: `cairn reply`, `respond`,
//! `amend`, `retract`, `member` and `profile`, plus `search` and `reindex`. Each runs through
//! the backend: the running node's API, or the service on the store when no node runs.

use std::io::{IsTerminal, Read};

use anyhow::{Context, Result, bail};
use cairn_api::Signing;
use cairn_core::body::StoryEdit;
use cairn_core::{Entry, Reply, Response, ResponseType};

use crate::backend;
use crate::cli::{AmendArgs, MemberAction, ProfileAction, ResponseKindArg};
use crate::commands::{print_entries, print_json};
use crate::home::Home;
use crate::output::say;
use crate::render::EntryView;

/// Signing as a member of the keystore, or as the node's own member.
fn as_member(name: Option<String>) -> Signing {
    Signing {
        as_member: name,
        on_behalf: false,
    }
}

pub fn reply(
    home: &Home,
    prefix: &str,
    text: Option<String>,
    member: Option<String>,
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
    let entry = backend::open(home)?.reply(prefix, Reply { text }, as_member(member))?;
    print_entry(&entry, json)
}

pub fn respond(
    home: &Home,
    prefix: &str,
    kind: ResponseKindArg,
    note: Option<String>,
    member: Option<String>,
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
    let entry = backend::open(home)?.respond(prefix, response, as_member(member))?;
    print_entry(&entry, json)
}

/// Revises a story: the current version's fields, with the ones given replaced.
pub fn amend(home: &Home, args: AmendArgs, json: bool) -> Result<()> {
    let edit = StoryEdit {
        title: args.title,
        summary: args.summary,
        text: args.body,
        context: args.context,
        tried: args.tried,
        happened: args.happened,
        learned: args.learned,
        next: args.next,
        tags: (!args.tags.is_empty()).then_some(args.tags),
    };
    let entry = backend::open(home)?.amend(&args.id, edit, as_member(args.as_member))?;
    print_entry(&entry, json)
}

pub fn retract(
    home: &Home,
    prefix: &str,
    reason: String,
    member: Option<String>,
    json: bool,
) -> Result<()> {
    let entry = backend::open(home)?.retract(prefix, reason, as_member(member))?;
    print_entry(&entry, json)
}

pub fn search(home: &Home, query: &str, limit: usize, json: bool) -> Result<()> {
    let found = backend::open(home)?.search(query, limit)?;
    print_entries(
        &found.entries,
        &found.notes,
        None,
        json,
        &format!("Nothing matches {query:?}. Try fewer or different words."),
    )
}

pub fn reindex(home: &Home, json: bool) -> Result<()> {
    let entries = backend::open(home)?.reindex()?;
    if json {
        return print_json(&cairn_api::ReindexView { entries });
    }
    say!("Rebuilt the search index: {entries} entries.");
    Ok(())
}

/// Prints a new entry's id, or with `--json` the entry.
fn print_entry(entry: &Entry, json: bool) -> Result<()> {
    if json {
        return print_json(&EntryView::new(entry));
    }
    say!("{}", entry.id());
    Ok(())
}

pub fn member(home: &Home, action: MemberAction, json: bool) -> Result<()> {
    match action {
        MemberAction::Add { name } => {
            let view = backend::open(home)?.add_member(&name)?;
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
            let members = backend::open(home)?.members()?;
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
            let entry = backend::open(home)?.revoke(&name, reason.unwrap_or_default())?;
            if json {
                return print_entry(&entry, json);
            }
            say!(
                "Revoked {name}: every node that receives revocation {} refuses their later entries.",
                entry.id().short(12)
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
                about,
                website,
                contact,
            };
            let signing = Signing {
                as_member,
                on_behalf: org,
            };
            let entry = backend::open(home)?.set_profile(profile, signing)?;
            print_entry(&entry, json)
        }
        ProfileAction::Show { id } => {
            let author = match &id {
                Some(id) => id.trim().to_string(),
                None => {
                    cairn_core::MemberId::from(home.load()?.credential.claims().org).to_string()
                }
            };
            let view = backend::open(home)?.profile(&author)?;
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
