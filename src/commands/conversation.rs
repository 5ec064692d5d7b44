//! The life of an entry after publishing: `reply`, `respond`, `amend` and `retract`.

use std::io::IsTerminal;

use anyhow::{Result, bail};
use cairn_api::Signing;
use cairn_core::body::StoryEdit;
use cairn_core::{Reply, Response, ResponseType};

use super::entries::print_entry;
use crate::backend;
use crate::cli::{AmendArgs, ResponseKindArg};
use crate::home::Home;

/// Signing as a member of the keystore, or as the node's own member.
fn as_member(name: Option<String>) -> Signing {
    Signing {
        as_member: name,
        on_behalf: false,
    }
}

pub(super) fn reply(
    home: &Home,
    prefix: &str,
    text: Option<String>,
    member: Option<String>,
    json: bool,
) -> Result<()> {
    let text = match text {
        Some(text) => text,
        None if !std::io::stdin().is_terminal() => {
            super::read_text_bounded(std::io::stdin(), "the reply on standard input")?
        }
        None => bail!("give the reply with --text \"...\" or pipe it in"),
    };
    let entry = backend::open(home)?.reply(prefix, Reply { text }, as_member(member))?;
    print_entry(&entry, json)
}

pub(super) fn respond(
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
pub(super) fn amend(home: &Home, args: AmendArgs, json: bool) -> Result<()> {
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

pub(super) fn retract(
    home: &Home,
    prefix: &str,
    reason: String,
    member: Option<String>,
    json: bool,
) -> Result<()> {
    let entry = backend::open(home)?.retract(prefix, reason, as_member(member))?;
    print_entry(&entry, json)
}
