//! Changing and showing this node's policy on organisations (block, follow, follow only), for
//! the service. The rules themselves live in the store, which refuses what the policy
//! excludes.

use cairn_api::{OrgView, PolicyChange, PolicyView};
use cairn_core::OrgId;
use cairn_store::Store;

use crate::Error;

/// Organisations looked at when resolving a name.
const MAX_ORGS: usize = 10_000;

/// The name of an organisation as in its newest entry held here (empty if none is held).
fn org_name(store: &Store, org: &OrgId) -> Result<String, Error> {
    let filter = cairn_store::Filter {
        org: Some(*org),
        ..cairn_store::Filter::default()
    };
    Ok(store
        .newest(&filter)
        .next()
        .transpose()?
        .map(|entry| entry.credential().claims().org_name.clone())
        .unwrap_or_default())
}

/// Applies a change; `own_org` is always followed when following only.
pub fn apply(store: &Store, own_org: OrgId, change: &PolicyChange) -> Result<PolicyView, Error> {
    let mut removed = 0;
    match change {
        PolicyChange::Block { org, reason } => {
            let org = resolve_org(store, org)?;
            if org == own_org {
                return Err(Error::BadRequest(
                    "a node cannot block its own organisation".into(),
                ));
            }
            let name = org_name(store, &org)?;
            removed = store.block_org(&org, &name, reason.trim())?;
        }
        PolicyChange::Unblock { org } => store.unblock_org(&resolve_org(store, org)?)?,
        PolicyChange::Follow { org } => store.follow_org(&resolve_org(store, org)?)?,
        PolicyChange::Unfollow { org } => store.unfollow_org(&resolve_org(store, org)?)?,
        PolicyChange::Open => store.set_follow_only(false)?,
        PolicyChange::FollowOnly => {
            store.follow_org(&own_org)?;
            store.set_follow_only(true)?;
        }
    }
    let mut view = view(store)?;
    view.removed = removed;
    Ok(view)
}

/// The policy as set, with the organisations' names where known.
pub fn view(store: &Store) -> Result<PolicyView, Error> {
    let policy = store.policy();
    let names = store.orgs(MAX_ORGS)?;
    let name_of = |org: &OrgId| {
        names
            .iter()
            .find(|(known, _)| known == org)
            .map(|(_, entry)| entry.credential().claims().org_name.clone())
            .or_else(|| policy.blocked.get(org).map(|blocked| blocked.name.clone()))
            .unwrap_or_default()
    };
    Ok(PolicyView {
        mode: if policy.follow_only { "follow" } else { "open" }.into(),
        followed: policy
            .followed
            .iter()
            .map(|org| OrgView {
                org: org.to_string(),
                name: name_of(org),
                reason: String::new(),
            })
            .collect(),
        blocked: policy
            .blocked
            .iter()
            .map(|(org, blocked)| OrgView {
                org: org.to_string(),
                name: name_of(org),
                reason: blocked.reason.clone(),
            })
            .collect(),
        max_entries_per_org: policy.max_entries_per_org,
        removed: 0,
    })
}

/// An organisation by its 64-digit id, or by a name (any letter case) that exactly one
/// organisation with entries here uses.
pub fn resolve_org(store: &Store, text: &str) -> Result<OrgId, Error> {
    let text = text.trim();
    if let Ok(org) = text.parse::<OrgId>() {
        return Ok(org);
    }
    let wanted = text.to_lowercase();
    // Every organisation, not a bounded directory: a name must never resolve to one
    // organisation only because another of the same name was left out.
    let mut matches: Vec<OrgId> = store
        .orgs(usize::MAX)?
        .into_iter()
        .filter(|(_, entry)| entry.credential().claims().org_name.to_lowercase() == wanted)
        .map(|(org, _)| org)
        .collect();
    // Blocked organisations' entries are gone; their names were kept with the block.
    for (org, blocked) in store.policy().blocked {
        if blocked.name.to_lowercase() == wanted && !matches.contains(&org) {
            matches.push(org);
        }
    }
    match matches.as_slice() {
        [org] => Ok(*org),
        [] => Err(Error::BadRequest(format!(
            "no organisation called {text:?} has entries here; use its 64-digit id (see `cairn list --json`)"
        ))),
        _ => Err(Error::BadRequest(format!(
            "{} organisations are called {text:?}: {}; use the 64-digit id of the one you mean",
            matches.len(),
            matches
                .iter()
                .map(|org| org.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
