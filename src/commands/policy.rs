//! This node's policy on organisations: `follow`, `block`, `policy`.

use anyhow::Result;
use cairn_api::{PolicyChange, PolicyView};

use super::print_json;
use crate::backend;
use crate::home::Home;
use crate::output::say;
use crate::render;

/// Applies a policy change.
pub(super) fn change(home: &Home, change: PolicyChange, json: bool) -> Result<()> {
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

pub(super) fn show(home: &Home, json: bool) -> Result<()> {
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
            format!("{} ({})", render::field(&org.name), &org.org[..12])
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
            format!(": {}", render::field(&org.reason))
        };
        say!("  blocked   {}{reason}", name(org));
    }
    say!(
        "  at most {} entries kept per organisation",
        view.max_entries_per_org
    );
}
