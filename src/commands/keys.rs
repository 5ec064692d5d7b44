//! `cairn org`: the organisation's key event log. Adopting a log and rotating run on the
//! home's own store with no node running (they replace the key files the node signs with).

use anyhow::{Context, Result};
use cairn_api::KeyLogView;

use super::{print_json, say};
use crate::backend;
use crate::cli::OrgAction;
use crate::client::NodeClient;
use crate::home::Home;

pub(super) fn org(home: &Home, action: OrgAction, json: bool) -> Result<()> {
    match action {
        OrgAction::Keys => {
            let view = match NodeClient::find(home)? {
                Some(client) => client
                    .get::<cairn_api::StatusView>("/api/status", &[])?
                    .key_log
                    .context("the running node is too old to report its key log; restart it")?,
                None => key_log_view(home)?,
            };
            if json {
                return print_json(&view);
            }
            describe(&view);
            Ok(())
        }
        OrgAction::Adopt => {
            let service = backend::local(home, "adopting a key log replaces key files")?;
            service.adopt_key_log()?;
            let view = cairn_node::wire::key_log_view(&service.key_log_status()?);
            if json {
                return print_json(&view);
            }
            say!("Adopted a key log; the organisation keeps its id.");
            next_key_advice(home);
            Ok(())
        }
        OrgAction::Rotate { next_key } => {
            let key = cairn_node::service::keystore::read_key(&next_key).with_context(|| {
                format!("could not read the next key from {}", next_key.display())
            })?;
            let service = backend::local(
                home,
                "a rotation replaces the key files the node signs with",
            )?;
            let rotated = service.rotate_key(&key)?;
            let view = cairn_node::wire::key_log_view(&service.key_log_status()?);
            if json {
                return print_json(&view);
            }
            say!(
                "Rotated to key {} (key event {}). Entries written so far stay valid ({} authors' cut-offs); anything newer signed with the old key is refused by every node that receives the rotation.",
                rotated.key.short(12),
                rotated.seq,
                rotated.cutoffs
            );
            say!("Start the node (`cairn node`) to publish the rotation.");
            next_key_advice(home);
            Ok(())
        }
    }
}

fn key_log_view(home: &Home) -> Result<KeyLogView> {
    let service = backend::local(home, "")?;
    Ok(cairn_node::wire::key_log_view(&service.key_log_status()?))
}

fn describe(view: &KeyLogView) {
    if view.events == 0 {
        say!(
            "This organisation has no key log: if its key is lost or stolen, nothing can replace it."
        );
        say!("Start one with `cairn org adopt` (with the node stopped); the id stays the same.");
        return;
    }
    say!(
        "Key log: {} event{}, current key {}",
        view.events,
        if view.events == 1 { "" } else { "s" },
        view.current_key
    );
    if view.id_is_first_key {
        say!("  the organisation's id is its first key (it adopted the log)");
    }
    if view.next_key_here {
        say!("  the next key is still on this computer (keys/org.next.key): move it offline");
    } else {
        say!("  the next key is not on this computer: keep it safe offline");
    }
    if view.duplicity {
        say!(
            "  WARNING: two different key histories of this organisation were seen; its next key may have leaked"
        );
    }
}

/// What to do with the next-key file just written.
pub(super) fn next_key_advice(home: &Home) {
    let path = home.root().join("keys").join("org.next.key");
    say!(
        "A new next key is in {}: print it or copy it to offline storage, then delete it from this computer. It is the only key that can rotate your organisation's key (`cairn org rotate --next-key FILE`).",
        path.display()
    );
}
