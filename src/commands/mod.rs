//! What each command does, by group. Commands read the home, run their operation through the
//! backend (the running node, or the service on the store) and print through `render`; all
//! of them report failures as errors for `main` to print.
//!
//! - `entries`: publish, list, show, search, reindex;
//! - `conversation`: reply, respond, amend, retract;
//! - `people`: init, whoami, rename, members and profiles;
//! - `policy`: block, follow and the policy mode;
//! - `network`: status, peers, invites, spaces, sync and the web page's login link.

mod conversation;
mod entries;
mod keys;
mod network;
mod people;
mod policy;

use anyhow::Result;
use cairn_api::PolicyChange;
use serde::Serialize;

use crate::cli::{Cli, Command, PeerAction, PolicyMode};
use crate::home::Home;
use crate::node;
use crate::output::say;

pub fn run(cli: Cli) -> Result<()> {
    let home = Home::locate(cli.home)?;
    let json = cli.json;
    match cli.command {
        Command::Init(args) => people::init(&home, &args, json),
        Command::Publish(args) => entries::publish(&home, *args, json),
        Command::List(args) => entries::list(&home, &args, json),
        Command::Show { id } => entries::show(&home, &id, json),
        Command::Whoami => people::whoami(&home, json),
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
        Command::Member { action } => people::member(&home, action, json),
        Command::Org { action } => keys::org(&home, action, json),
        Command::Amend(args) => conversation::amend(&home, *args, json),
        Command::Profile { action } => people::profile(&home, action, json),
        Command::Follow { org, petname } => {
            policy::change(&home, PolicyChange::Follow { org, petname }, json)
        }
        Command::Orgs { limit } => policy::directory(&home, limit, json),
        Command::Unfollow { org } => policy::change(&home, PolicyChange::Unfollow { org }, json),
        Command::Block { org, reason } => policy::change(
            &home,
            PolicyChange::Block {
                org,
                reason: reason.unwrap_or_default(),
            },
            json,
        ),
        Command::Unblock { org } => policy::change(&home, PolicyChange::Unblock { org }, json),
        Command::Policy { mode } => match mode {
            None => policy::show(&home, json),
            Some(PolicyMode::Open) => policy::change(&home, PolicyChange::Open, json),
            Some(PolicyMode::Follow) => policy::change(&home, PolicyChange::FollowOnly, json),
        },
        Command::Search { query, limit } => entries::search(&home, &query, limit, json),
        Command::Reindex => entries::reindex(&home, json),
        Command::Open { print_only } => network::open(&home, print_only, json),
        Command::Demo => crate::demo::run(),
        Command::Rename { org, name } => {
            people::rename(&home, org.as_deref(), name.as_deref(), json)
        }
        Command::Node(args) => node::run(&home, args),
        Command::Status => network::status(&home, json),
        Command::Peers => network::peers(&home, json),
        Command::Peer {
            action: PeerAction::Add { address },
        } => network::add_peer(&home, address, json),
        Command::Peer {
            action: PeerAction::Forget { peer },
        } => network::forget_peer(&home, &peer, json),
        Command::Backup {
            file,
            passphrase_file,
        } => people::backup(&home, &file, passphrase_file.as_deref(), json),
        Command::Restore {
            file,
            passphrase_file,
            confirm,
        } => people::restore(
            &home,
            file.as_deref(),
            passphrase_file.as_deref(),
            confirm,
            json,
        ),
        Command::Invite {
            expires,
            single_use,
        } => network::invite(&home, expires, single_use, json),
        Command::Join { ticket } => network::join(&home, ticket, json),
        Command::Sync { peer, space } => network::sync(&home, peer, space, json),
        Command::Spaces => network::spaces(&home, json),
        Command::Space { action } => network::space(&home, &action, json),
    }
}

pub(crate) fn print_or_json<T: Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce(),
) -> Result<()> {
    if json {
        print_json(value)
    } else {
        text();
        Ok(())
    }
}

pub(crate) fn print_json<T: Serialize>(value: &T) -> Result<()> {
    say!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// Reads text from `reader` (standard input, a file), refusing more than an entry's body can
/// hold before reading it all: a wrong file costs a bounded buffer, not memory.
pub(super) fn read_text_bounded(reader: impl std::io::Read, what: &str) -> anyhow::Result<String> {
    use anyhow::Context as _;
    use std::io::Read as _;
    let limit = cairn_core::entry::MAX_BODY_LEN;
    let mut bytes = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("could not read {what}"))?;
    if bytes.len() > limit {
        anyhow::bail!(
            "{what} is over {} KiB, more than an entry can hold; shorten it or split it into several entries",
            limit / 1_024
        );
    }
    String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("{what} is not UTF-8 text"))
}
