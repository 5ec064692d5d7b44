//! How this node knows an organisation, told wherever one is named: its own, one it follows
//! (perhaps under a petname this node gave it), or a stranger; and whether its self-chosen
//! name looks like another's. Names cost nothing to choose, so a name is never shown without
//! this: a stranger calling itself "Riverside Trust" reads as "Riverside Trust (stranger
//! 3f2a9c1d0b4e, name shared)" beside the followed "Riverside Trust (followed 9a8b7c6d5e4f,
//! name shared)".

use std::collections::HashMap;

use cairn_core::display::name_key;
use cairn_core::{Entry, OrgId};
use cairn_store::{Policy, Store};

use crate::Error;

/// The most characters a petname holds.
pub const MAX_PETNAME_CHARS: usize = 64;

/// Hex digits of an organisation id shown beside its name: 48 bits, far too many to find a
/// key that matches them by trying.
pub const SHORT_ID_DIGITS: usize = 12;

/// How this node knows an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    /// The node's own organisation.
    Own,
    /// One this node follows.
    Followed,
    /// Any other: its name is only what it says of itself.
    Stranger,
}

impl Standing {
    /// `own`, `followed` or `stranger`, as the API and `--json` carry it.
    pub fn as_str(self) -> &'static str {
        match self {
            Standing::Own => "own",
            Standing::Followed => "followed",
            Standing::Stranger => "stranger",
        }
    }

    /// The inverse of [`Standing::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "own" => Some(Standing::Own),
            "followed" => Some(Standing::Followed),
            "stranger" => Some(Standing::Stranger),
            _ => None,
        }
    }
}

/// What readers are told beside an organisation's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrgLabel {
    pub org: OrgId,
    pub standing: Standing,
    /// The name this node gave the organisation, shown instead of its own.
    pub petname: Option<String>,
    /// Its current name here: the one its newest entry gives. Shown on all its entries, so
    /// an old entry under another organisation's name cannot pass for that organisation.
    pub name: Option<String>,
    /// The name shown looks like another organisation's (or a petname's).
    pub name_shared: bool,
}

/// How this node knows each of `orgs`.
pub fn labels(
    store: &Store,
    own_org: OrgId,
    orgs: impl IntoIterator<Item = OrgId>,
) -> Result<HashMap<OrgId, OrgLabel>, Error> {
    claimed_labels(store, own_org, orgs.into_iter().map(|org| (org, None)))
}

/// How this node knows each of `orgs`, each with the name it claims where it was met (in a
/// node binding, say), which is shown if it has no entries here.
pub fn claimed_labels<'a>(
    store: &Store,
    own_org: OrgId,
    orgs: impl IntoIterator<Item = (OrgId, Option<&'a str>)>,
) -> Result<HashMap<OrgId, OrgLabel>, Error> {
    let policy = store.policy();
    let mut labels = HashMap::new();
    for (org, claimed) in orgs {
        if let std::collections::hash_map::Entry::Vacant(slot) = labels.entry(org) {
            slot.insert(OrgLabel::new(store, &policy, own_org, org, claimed)?);
        }
    }
    Ok(labels)
}

impl OrgLabel {
    /// How this node, with `policy`, knows `org`, which claims the name `claimed` where it
    /// was met (used only if it has no entries here).
    pub fn new(
        store: &Store,
        policy: &Policy,
        own_org: OrgId,
        org: OrgId,
        claimed: Option<&str>,
    ) -> Result<Self, Error> {
        let standing = if org == own_org {
            Standing::Own
        } else if policy.followed.contains(&org) {
            Standing::Followed
        } else {
            Standing::Stranger
        };
        let petname = policy.petnames.get(&org).cloned();
        let (name, shared) = match store.org_name(&org)? {
            Some((name, shared)) => (Some(name), shared),
            None => match claimed {
                Some(claimed) => (None, store.name_shared(&org, claimed)?),
                None => (None, false),
            },
        };
        Ok(Self {
            org,
            standing,
            // Shown under its petname, its own name's likeness to others does not matter.
            name_shared: petname.is_none() && shared,
            petname,
            name,
        })
    }

    /// The name to show: the petname, else its current name here, else `claimed` (the name
    /// where it was met: an entry's credential, a binding).
    pub fn shown<'a>(&'a self, claimed: &'a str) -> &'a str {
        self.petname
            .as_deref()
            .or(self.name.as_deref())
            .unwrap_or(claimed)
    }

    /// The words shown after the name, as in "Riverside Trust (followed)": `your
    /// organisation`, `followed`, `your name, followed` or `stranger 3f2a9c1d0b4e`; with the
    /// short id and `name shared` when another organisation's name looks the same.
    pub fn describe(&self) -> String {
        let short = self.org.short(SHORT_ID_DIGITS);
        let mut words = match (self.standing, &self.petname) {
            (Standing::Stranger, _) => format!("stranger {short}"),
            (_, Some(_)) => format!("your name, {}", self.standing_words()),
            (_, None) if self.name_shared => format!("{} {short}", self.standing_words()),
            (_, None) => self.standing_words().to_string(),
        };
        if self.name_shared {
            words.push_str(", name shared");
        }
        words
    }

    fn standing_words(&self) -> &'static str {
        match self.standing {
            Standing::Own => "your organisation",
            Standing::Followed => "followed",
            Standing::Stranger => "stranger",
        }
    }
}

/// An organisation with entries here: its newest entry and how this node knows it.
#[derive(Debug, Clone)]
pub struct KnownOrg {
    pub newest: Entry,
    pub label: OrgLabel,
}

impl KnownOrg {
    pub fn org(&self) -> OrgId {
        self.label.org
    }

    /// The name it gives itself in its newest entry.
    pub fn own_name(&self) -> &str {
        &self.newest.credential().claims().org_name
    }

    /// The name to show: this node's petname for it, or its own.
    pub fn name(&self) -> &str {
        self.label.shown(self.own_name())
    }

    /// "Riverside Trust (followed)", with the name passed through `safe` first.
    pub fn display_with(&self, safe: impl Fn(&str) -> String) -> String {
        format!("{} ({})", safe(self.name()), self.label.describe())
    }
}

/// Up to `limit` organisations with entries here, followed first, then by their newest
/// entry, with how this node knows each.
pub fn directory(store: &Store, own_org: OrgId, limit: usize) -> Result<Vec<KnownOrg>, Error> {
    let held = store.orgs(limit)?;
    let mut labels = labels(store, own_org, held.iter().map(|(org, _)| *org))?;
    Ok(held
        .into_iter()
        .filter_map(|(org, newest)| {
            let label = labels.remove(&org)?;
            Some(KnownOrg { newest, label })
        })
        .collect())
}

/// A petname as given, tidied, or why it cannot be one: one line of printable text, at most
/// [`MAX_PETNAME_CHARS`], that no other organisation's petname here looks like. Empty means
/// "remove the petname".
pub fn checked_petname(store: &Store, org: &OrgId, petname: &str) -> Result<String, Error> {
    let petname = petname.split_whitespace().collect::<Vec<_>>().join(" ");
    if petname.is_empty() {
        return Ok(petname);
    }
    if petname.chars().count() > MAX_PETNAME_CHARS {
        return Err(Error::BadRequest(format!(
            "a petname holds at most {MAX_PETNAME_CHARS} characters; choose a shorter one"
        )));
    }
    if !cairn_core::display::is_printable(&petname) || petname.chars().any(char::is_control) {
        return Err(Error::BadRequest(
            "a petname cannot hold control characters or unbalanced direction controls; type it as plain text".into(),
        ));
    }
    if petname.len() >= 8 && petname.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::BadRequest(
            "a petname of hex digits could be read as an organisation's id; choose a name with other characters too".into(),
        ));
    }
    let key = name_key(&petname);
    if let Some((other, _)) = store
        .policy()
        .petnames
        .iter()
        .find(|(other, given)| *other != org && name_key(given) == key)
    {
        return Err(Error::BadRequest(format!(
            "the organisation {} already has a petname that looks like {petname:?}; choose another, or change that one first",
            other.short(SHORT_ID_DIGITS)
        )));
    }
    Ok(petname)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(standing: Standing, petname: Option<&str>, name_shared: bool) -> String {
        OrgLabel {
            org: OrgId([0xab; 32]),
            standing,
            petname: petname.map(str::to_string),
            name: None,
            name_shared,
        }
        .describe()
    }

    #[test]
    fn every_label_says_how_the_organisation_is_known() {
        assert_eq!(label(Standing::Own, None, false), "your organisation");
        assert_eq!(label(Standing::Followed, None, false), "followed");
        assert_eq!(
            label(Standing::Followed, Some("Delta"), false),
            "your name, followed"
        );
        assert_eq!(
            label(Standing::Stranger, None, false),
            "stranger abababababab"
        );
        assert_eq!(
            label(Standing::Followed, None, true),
            "followed abababababab, name shared"
        );
        assert_eq!(
            label(Standing::Stranger, None, true),
            "stranger abababababab, name shared"
        );
        for standing in [Standing::Own, Standing::Followed, Standing::Stranger] {
            assert_eq!(Standing::parse(standing.as_str()), Some(standing));
        }
    }
}
