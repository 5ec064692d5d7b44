//! What a reader must be told beside entries, read from the store: how this node knows each
//! entry's organisation, authors with fork proofs against them, entries their authors
//! retracted (with the reason), authors their organisation revoked since, and the latest
//! revision of amended stories. One typed model
//! for the CLI, the API and the web page; `crate::wire` turns it into hex and strings for the
//! HTTP edge and back.

use std::collections::{HashMap, HashSet};

use cairn_core::{Entry, EntryId, MemberId, OrgId, Retraction, Story};
use cairn_store::Store;

use crate::Error;
use crate::service::names::{self, OrgLabel};

#[derive(Debug, Default, Clone)]
pub struct Notes {
    /// How this node knows the entries' organisations. Missing for an answer from a node
    /// older than labels, whose names are then shown bare.
    pub orgs: HashMap<OrgId, OrgLabel>,
    pub forked_authors: HashSet<MemberId>,
    /// Entries their author retracted: id → the reason given.
    pub retracted: HashMap<EntryId, String>,
    /// Authors whose organisation revoked them since (their earlier entries stay valid).
    pub former_authors: HashSet<MemberId>,
    /// The latest revision of stories their author amended, by the original's id.
    pub revisions: HashMap<EntryId, Entry>,
}

impl Notes {
    /// Reads the notes for `entries` from the store of a node whose organisation is
    /// `own_org`.
    pub fn read<'a>(
        store: &Store,
        own_org: OrgId,
        entries: impl IntoIterator<Item = &'a Entry> + Clone,
    ) -> Result<Self, Error> {
        let mut notes = Notes {
            orgs: names::labels(
                store,
                own_org,
                entries
                    .clone()
                    .into_iter()
                    .map(|entry| entry.credential().claims().org),
            )?,
            forked_authors: store.forked_authors()?,
            ..Notes::default()
        };
        for entry in entries {
            // A retracted story shows nothing, not even its revisions.
            if entry.header().kind.has_story()
                && entry.body().is_some()
                && let Some(latest) = store.revisions(entry)?.pop()
            {
                notes.revisions.insert(entry.id(), latest);
            }
            let author = entry.header().author;
            if store
                .revoked_after(&entry.credential().claims().org, &author)?
                .is_some()
            {
                notes.former_authors.insert(author);
            }
            let reason = store
                .retraction_of(entry)?
                .and_then(|retraction| retraction.body().map(Retraction::decode))
                .and_then(Result::ok)
                .map(|retraction| retraction.reason);
            if let Some(reason) = reason {
                notes.retracted.insert(entry.id(), reason);
            }
        }
        Ok(notes)
    }

    /// Adds the notes of another page of the same listing.
    pub fn extend(&mut self, other: Notes) {
        self.orgs.extend(other.orgs);
        self.forked_authors.extend(other.forked_authors);
        self.retracted.extend(other.retracted);
        self.former_authors.extend(other.former_authors);
        self.revisions.extend(other.revisions);
    }

    /// Whether this node holds a fork proof against the entry's author.
    pub fn forked(&self, entry: &Entry) -> bool {
        self.forked_authors.contains(&entry.header().author)
    }

    /// Whether the entry's organisation revoked its author since.
    pub fn former(&self, entry: &Entry) -> bool {
        self.former_authors.contains(&entry.header().author)
    }

    /// The reason the author gave for retracting `entry`, if they did.
    pub fn retracted(&self, entry: &Entry) -> Option<&str> {
        self.retracted.get(&entry.id()).map(String::as_str)
    }

    /// The latest revision of `entry`, if its author revised it.
    pub fn revision(&self, entry: &Entry) -> Option<&Entry> {
        self.revisions.get(&entry.id())
    }

    /// The entry whose story to show for `entry`: its latest revision, or itself.
    pub fn current<'a>(&'a self, entry: &'a Entry) -> &'a Entry {
        self.revision(entry).unwrap_or(entry)
    }

    /// The story to show for `entry`: its latest revision's, or its own.
    pub fn story(&self, entry: &Entry) -> Option<Story> {
        self.current(entry).story().and_then(Result::ok)
    }

    /// How this node knows the entry's organisation, if it was told.
    pub fn label(&self, entry: &Entry) -> Option<&OrgLabel> {
        self.orgs.get(&entry.credential().claims().org)
    }

    /// The entry's organisation as readers see it: its petname or own name, then how this
    /// node knows it: "Riverside Trust (followed)".
    pub fn org_with(&self, entry: &Entry, name: impl Fn(&str) -> String) -> String {
        let org_name = &entry.credential().claims().org_name;
        match self.label(entry) {
            Some(label) => format!("{} ({})", name(label.shown(org_name)), label.describe()),
            None => name(org_name),
        }
    }

    /// "Ana Silva of Riverside Trust (followed)", "Ana Silva (former member) of ...", or for
    /// an entry published on behalf of the organisation "Riverside Trust (followed), author
    /// withheld".
    pub fn byline(&self, entry: &Entry) -> String {
        self.byline_with(entry, str::to_string)
    }

    /// [`Notes::byline`] with each name passed through `name` first (to make it safe for
    /// where it is shown).
    pub fn byline_with(&self, entry: &Entry, name: impl Fn(&str) -> String) -> String {
        let org = self.org_with(entry, &name);
        if entry.on_behalf_of_org() {
            return format!("{org}, author withheld");
        }
        let former = if self.former(entry) {
            " (former member)"
        } else {
            ""
        };
        format!(
            "{}{former} of {org}",
            name(&entry.credential().claims().member_name)
        )
    }
}
