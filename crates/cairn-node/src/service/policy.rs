//! Changing and showing this node's policy on organisations (block, follow, follow only), for
//! the service. The rules themselves live in the store, which refuses what the policy
//! excludes.

use std::fmt::Write as _;

use cairn_api::{OrgView, PolicyChange, PolicyView};
use cairn_core::OrgId;
use cairn_core::display::{Lines, name_key, printable};
use cairn_store::{Policy, Store};

use crate::Error;
use crate::service::names::{self, OrgLabel, SHORT_ID_DIGITS};

/// The fewest hex digits of an organisation id that name it, when they are unique here: as
/// many as are shown beside names, too many to find a key that matches them by trying.
pub const MIN_ID_PREFIX: usize = SHORT_ID_DIGITS;

/// The name of an organisation as its newest entry held here gives it, from the store's
/// index of organisations; for a blocked one (its entries are gone), the name kept with the
/// block; empty if neither is known.
fn org_name(store: &Store, policy: &Policy, org: &OrgId) -> Result<String, Error> {
    Ok(match store.org_name(org)? {
        Some((name, _)) => name,
        None => policy
            .blocked
            .get(org)
            .map(|blocked| blocked.name.clone())
            .unwrap_or_default(),
    })
}

/// Applies a change; `own_org` is always followed when following only.
pub fn apply(store: &Store, own_org: OrgId, change: &PolicyChange) -> Result<PolicyView, Error> {
    let mut removed = 0;
    match change {
        PolicyChange::Block { org, reason } => {
            let org = resolve_org(store, own_org, org)?;
            if org == own_org {
                return Err(Error::BadRequest(
                    "a node cannot block its own organisation".into(),
                ));
            }
            let name = org_name(store, &store.policy(), &org)?;
            removed = store.block_org(&org, &name, reason.trim())?;
        }
        PolicyChange::Unblock { org } => store.unblock_org(&resolve_org(store, own_org, org)?)?,
        PolicyChange::Follow { org, petname } => {
            let org = resolve_org(store, own_org, org)?;
            let petname = match petname {
                Some(petname) => Some(names::checked_petname(store, &org, petname)?),
                None => None,
            };
            store.follow_org(&org, petname.as_deref())?;
        }
        PolicyChange::Unfollow { org } => store.unfollow_org(&resolve_org(store, own_org, org)?)?,
        PolicyChange::Open => store.set_follow_only(false)?,
        PolicyChange::FollowOnly => {
            store.follow_org(&own_org, None)?;
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
    let mut followed = Vec::with_capacity(policy.followed.len());
    for org in &policy.followed {
        followed.push(OrgView {
            org: org.to_string(),
            name: org_name(store, &policy, org)?,
            reason: String::new(),
            petname: policy.petnames.get(org).cloned(),
        });
    }
    let mut blocked = Vec::with_capacity(policy.blocked.len());
    for (org, block) in &policy.blocked {
        blocked.push(OrgView {
            org: org.to_string(),
            name: org_name(store, &policy, org)?,
            reason: block.reason.clone(),
            petname: None,
        });
    }
    Ok(PolicyView {
        mode: if policy.follow_only { "follow" } else { "open" }.into(),
        followed,
        blocked,
        max_entries_per_org: policy.max_entries_per_org,
        removed: 0,
    })
}

/// An organisation by its 64-digit id, a unique prefix of one (at least
/// [`MIN_ID_PREFIX`] digits) among the organisations held here, this node's petname for it,
/// or a name that exactly one organisation here goes by. Names are compared by how they
/// look, so a lookalike makes a name ambiguous rather than resolving to the wrong one.
pub fn resolve_org(store: &Store, own_org: OrgId, text: &str) -> Result<OrgId, Error> {
    let text = text.trim();
    if let Ok(org) = text.parse::<OrgId>() {
        return Ok(org);
    }
    let policy = store.policy();
    let key = name_key(text);
    // A petname is this node's own, and no two look alike: it names one organisation,
    // whatever others call themselves.
    if let Some((org, _)) = policy
        .petnames
        .iter()
        .find(|(_, petname)| name_key(petname) == key)
    {
        return Ok(*org);
    }
    // An id prefix and a name are both looked up: a name that happens to be hex digits
    // never hides an organisation that goes by it.
    let is_hex = text.len() >= MIN_ID_PREFIX && text.chars().all(|c| c.is_ascii_hexdigit());
    let mut matches = if is_hex {
        store.orgs_starting(&text.to_ascii_lowercase())?
    } else {
        Vec::new()
    };
    for org in store.orgs_named(text)? {
        if !matches.contains(&org) {
            matches.push(org);
        }
    }
    // Blocked organisations' entries are gone; their names were kept with the block.
    for (org, blocked) in &policy.blocked {
        if name_key(&blocked.name) == key && !matches.contains(org) {
            matches.push(*org);
        }
    }
    match matches.as_slice() {
        [org] => Ok(*org),
        [] => Err(Error::BadRequest(format!(
            "no organisation called {:?} has entries here; use its id (see `cairn list --json` or `cairn orgs`)",
            printable(text, Lines::One)
        ))),
        _ => {
            let labels = names::labels(store, own_org, matches.iter().copied())?;
            let mut listed = String::new();
            for org in &matches {
                let name = org_name(store, &policy, org)?;
                let how = if policy.blocked.contains_key(org) {
                    "blocked".to_string()
                } else {
                    labels.get(org).map(OrgLabel::describe).unwrap_or_default()
                };
                let _ = write!(
                    listed,
                    "\n  {}  {} ({how})",
                    org.short(SHORT_ID_DIGITS),
                    printable(&name, Lines::One)
                );
            }
            Err(Error::BadRequest(format!(
                "{} organisations go by names that look like {:?}:{listed}\nuse the id (its first {SHORT_ID_DIGITS} digits are enough) of the one you mean, or give it a petname with `cairn follow ID --petname NAME`",
                matches.len(),
                printable(text, Lines::One)
            )))
        }
    }
}
