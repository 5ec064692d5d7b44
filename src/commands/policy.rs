//! This node's policy on organisations and what it knows of them: `follow` (with petnames),
//! `block`, `policy`, `orgs`.

use anyhow::{Result, bail};
use cairn_api::{PolicyChange, PolicyView};

use super::print_json;
use cairn_node::wire;

use crate::backend;
use crate::home::Home;
use crate::output::say;
use crate::render;

/// Applies a policy change.
pub(super) fn change(home: &Home, change: PolicyChange, json: bool) -> Result<()> {
    let view = backend::open(home)?.change_policy(&change)?;
    if let PolicyChange::Follow {
        petname: Some(petname),
        ..
    } = &change
        && !petname.trim().is_empty()
        && view.followed.iter().all(|org| org.petname.is_none())
    {
        bail!(
            "the node followed the organisation but did not keep the petname {petname:?}: it is older than this cairn; upgrade and restart the node, then run this again"
        );
    }
    if json {
        return print_json(&view);
    }
    match &change {
        PolicyChange::Block { .. } => say!(
            "Blocked. Removed {} of their entries; their entries will be refused from now on.",
            view.removed
        ),
        PolicyChange::Unblock { .. } => say!("Unblocked: their entries are accepted again."),
        PolicyChange::Follow { petname: None, .. } => say!("Following."),
        PolicyChange::Follow {
            petname: Some(petname),
            ..
        } if petname.trim().is_empty() => say!("Following, under the name it gives itself."),
        PolicyChange::Follow { .. } => say!("Following, under your petname."),
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

/// The directory: organisations with entries here, followed first.
pub(super) fn directory(home: &Home, limit: usize, json: bool) -> Result<()> {
    let orgs = backend::open(home)?.directory(limit)?;
    if json {
        return print_json(&orgs);
    }
    if orgs.is_empty() {
        say!("No organisation has entries here yet.");
    }
    for org in &orgs {
        let label = wire::label_from(&org.org, &org.label)?;
        say!("{}", render::known_org(org, &label));
    }
    Ok(())
}

fn print_policy(view: &PolicyView) {
    let name = |org: &cairn_api::OrgView| {
        let short = org.org.get(..12).unwrap_or(&org.org);
        match (&org.petname, org.name.is_empty()) {
            (Some(petname), _) => format!(
                "{} ({short}, your name; it calls itself {})",
                render::field(petname),
                render::field(&org.name)
            ),
            (None, true) => org.org.clone(),
            (None, false) => format!("{} ({short})", render::field(&org.name)),
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
