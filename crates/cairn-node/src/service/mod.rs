//! The service: every operation members and admins run on a home, written once. It owns the
//! store, the keystore, the node's own identity, the joined spaces and the search index, and
//! has one synchronous method per operation (publish, reply, respond, amend, retract, profile,
//! members, revoke, list, show, search, reindex, policy), returning typed results and typed
//! errors.
//!
//! Two callers use it. The daemon runs each method on a blocking thread and then gossips
//! what it wrote (`crate::daemon::Shared::write`); the CLI, when no node runs, calls it directly
//! and what it wrote waits in the outbox until the node next starts. Every entry written here
//! goes into the outbox with the same store write path, and the daemon takes it out once a
//! peer received it, so an entry written just before a crash still goes out.
//!
//! Invariant: nothing above this module signs, stores or reads entries for members; the HTTP
//! API, the web page and the CLI only translate their inputs and outputs.

pub mod address_book;
mod key_log;
pub mod keystore;
pub mod names;
mod notes;
mod policy;
pub(crate) mod search;
pub mod state;

use std::sync::{Arc, Mutex, RwLock};

use cairn_api::{ListQuery, MAX_PAGE, PolicyChange, PolicyView};
use cairn_core::binding::Binding;
use cairn_core::body::StoryEdit;
use cairn_core::invitation::{Invitation, InvitationClaims};
use cairn_core::{
    Credential, Draft, Entry, EntryId, Kind, MemberId, OrgId, Profile, Ref, RefKind, Reply,
    Response, Retraction, Revocation, SecretKey, Space, Story, Timestamp,
};
use cairn_search::SearchIndex;
use cairn_store::{Cursor, Filter, Store};

pub use key_log::{KEY_EVENT_SPACE, KeyLogStatus, Rotated};
pub use names::{KnownOrg, OrgLabel, Standing};
pub use notes::Notes;

use crate::{Error, Files};
use keystore::{Keystore, MemberKey, Signer};
use state::State;

/// Entries a listing returns when the caller does not say.
pub const DEFAULT_PAGE: usize = 20;
/// Replies, responses and links read under one entry.
pub const MAX_RELATED: usize = 1_000;
/// Own entries waiting to be indexed before the service indexes them itself, without waiting
/// for a search: bounds the list while the indexer is held back by a large sync.
const MAX_UNINDEXED: usize = 256;
/// Single-use invitations accepted and not yet expired that the state file keeps, at most.
const MAX_OPEN_SINGLE_USE: usize = 10_000;

/// Whose name an entry goes out under.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PublishAs {
    /// The node's own member.
    #[default]
    Me,
    /// A member added with `cairn member add`, by name.
    Member(String),
    /// The organisation itself: readers see the organisation, and the author is withheld.
    Organisation,
}

impl PublishAs {
    /// From a request's `as_member` and `on_behalf`.
    pub fn from_request(as_member: Option<String>, on_behalf: bool) -> Result<Self, Error> {
        match (as_member, on_behalf) {
            (Some(_), true) => Err(Error::BadRequest(
                "choose either a member to publish as or the organisation, not both".into(),
            )),
            (Some(name), false) => Ok(Self::Member(name)),
            (None, true) => Ok(Self::Organisation),
            (None, false) => Ok(Self::Me),
        }
    }
}

/// A new learning, failure or question entry.
#[derive(Debug, Clone)]
pub struct NewStory {
    pub kind: Kind,
    pub story: Story,
    /// Space names; empty means the joined spaces.
    pub spaces: Vec<String>,
    /// Typed links (builds-on, contradicts, tried-too) to held entries, by id or unique prefix.
    pub links: Vec<(RefKind, String)>,
}

impl NewStory {
    /// The draft this story is signed as, its links aside (the service looks them up): the
    /// kind checked, the spaces named (`joined` gives them when none are), the text tidied.
    pub fn draft(
        &self,
        joined: impl FnOnce() -> Result<Vec<Space>, Error>,
        created: Timestamp,
    ) -> Result<Draft, Error> {
        if !self.kind.has_story() {
            return Err(Error::BadRequest(format!(
                "kind {} cannot be published as a story; use learning, failure or question",
                self.kind
            )));
        }
        let spaces = if self.spaces.is_empty() {
            joined()?
        } else {
            self.spaces
                .iter()
                .map(|name| Space::new(name))
                .collect::<Result<Vec<_>, _>>()?
        };
        let story = self.story.clone().tidied();
        Ok(Draft::story(self.kind, &story, spaces, created)?)
    }
}

/// Some entries, with what readers must be told beside them.
#[derive(Debug, Default)]
pub struct Listing {
    pub entries: Vec<Entry>,
    pub notes: Notes,
    /// Where the next page starts, when the listing was cut at its page size.
    pub next: Option<String>,
}

/// One entry and everything that refers to it (replies, responses, revisions, links), oldest
/// first.
#[derive(Debug)]
pub struct Shown {
    pub entry: Entry,
    pub related: Vec<Entry>,
    pub notes: Notes,
}

/// A member of the home's keystore and, once revoked, the last of their entries that stays
/// valid.
#[derive(Debug, Clone)]
pub struct Member {
    pub key: MemberKey,
    pub revoked_after: Option<u64>,
}

/// What the service needs to run on a home.
#[derive(Debug)]
pub struct Config {
    pub store: Arc<Store>,
    /// The node's own member: what entries are signed with unless told otherwise.
    pub member_key: SecretKey,
    pub credential: Credential,
    pub files: Files,
    /// The spaces to join while the home has no state file yet.
    pub default_spaces: Vec<String>,
}

/// The operations on one home; see the module docs.
#[derive(Debug)]
pub struct Service {
    store: Arc<Store>,
    keystore: Keystore,
    me: Signer,
    /// Joined spaces and known peers, mirrored to the state file on every change.
    state: RwLock<State>,
    files: Files,
    /// The search index: handed over by the daemon, whose indexer keeps it current, or opened
    /// on first use when no node runs, and then caught up before each search.
    index: Mutex<Option<Arc<SearchIndex>>>,
    /// Whether an indexer keeps the index current (the daemon's), so a search only has to add
    /// this service's own recent writes.
    live_index: bool,
    /// Held while the index is written (by a search taking in own writes, by the daemon's
    /// indexer, by a reindex): one writer at a time, and no entry indexed twice.
    index_writing: Mutex<()>,
    /// Entries written here that the index may not hold yet: a search takes them in first, so
    /// it finds every entry the node acknowledged.
    unindexed: Mutex<Vec<EntryId>>,
    /// Publishing reads the chain head, signs the next entry and stores it: one at a time, so
    /// two publishes can never take the same seq (which would be a fork of our own making).
    publish_lock: Mutex<()>,
    /// Policy changes one at a time, so two petnames cannot both pass the check that no two
    /// look alike.
    policy_lock: Mutex<()>,
}

impl Service {
    /// The service of a home. `index` is the daemon's search index, kept current by its
    /// indexer; without one, the index is opened when first needed.
    pub fn new(config: Config, index: Option<Arc<SearchIndex>>) -> Result<Self, Error> {
        let state = State::load(&config.files.state)?.unwrap_or_else(|| State {
            spaces: config.default_spaces.iter().cloned().collect(),
            ..State::default()
        });
        let service = Self {
            keystore: Keystore::new(config.files.keys.clone()),
            me: Signer {
                key: config.member_key,
                credential: config.credential,
            },
            store: config.store,
            state: RwLock::new(state),
            files: config.files,
            live_index: index.is_some(),
            index: Mutex::new(index),
            index_writing: Mutex::new(()),
            unindexed: Mutex::new(Vec::new()),
            publish_lock: Mutex::new(()),
            policy_lock: Mutex::new(()),
        };
        service.store.set_own_org(service.own_org());
        service.import_key_log()?;
        Ok(service)
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// The node's own member's credential.
    pub fn credential(&self) -> &Credential {
        &self.me.credential
    }

    pub fn own_org(&self) -> OrgId {
        self.me.credential.claims().org
    }

    /// How many entries the store holds.
    pub fn count(&self) -> Result<usize, Error> {
        Ok(self.store.count()?)
    }

    // ---- Writing ----

    /// Signs and stores a story entry with its typed links.
    pub fn publish(&self, new: NewStory, publish_as: &PublishAs) -> Result<Entry, Error> {
        let mut draft = new.draft(|| self.joined_spaces(), Timestamp::now())?;
        let mut refs = Vec::with_capacity(new.links.len());
        for (kind, target) in &new.links {
            if !kind.is_story_link() {
                return Err(Error::BadRequest(format!(
                    "a story may link with builds-on, contradicts or tried-too, not {kind:?}"
                )));
            }
            refs.push(Ref {
                kind: *kind,
                target: self.held(target)?.id(),
            });
        }
        draft.refs = refs;
        self.write(draft, publish_as)
    }

    /// Replies to a held entry, in that entry's spaces.
    pub fn reply(
        &self,
        target: &str,
        reply: Reply,
        publish_as: &PublishAs,
    ) -> Result<Entry, Error> {
        let target = self.held(target)?;
        let draft = Draft::reply(
            target.id(),
            &reply,
            target.header().spaces.clone(),
            Timestamp::now(),
        )?;
        self.write(draft, publish_as)
    }

    /// Responds to a held entry, in that entry's spaces.
    pub fn respond(
        &self,
        target: &str,
        response: Response,
        publish_as: &PublishAs,
    ) -> Result<Entry, Error> {
        let target = self.held(target)?;
        let response = Response {
            note: response.note.trim().to_string(),
            ..response
        };
        let draft = Draft::response(
            target.id(),
            &response,
            target.header().spaces.clone(),
            Timestamp::now(),
        )?;
        self.write(draft, publish_as)
    }

    /// Withdraws one of the signer's own entries: after the retraction, every node that holds
    /// the entry drops its body and keeps its signed header.
    pub fn retract(
        &self,
        target: &str,
        reason: String,
        publish_as: &PublishAs,
    ) -> Result<Entry, Error> {
        let held = self.held(target)?;
        if matches!(held.header().kind, Kind::RETRACT | Kind::REVOKE) {
            return Err(Error::BadRequest(format!(
                "entry {} is a {}; retractions and revocations cannot be retracted",
                held.id(),
                held.header().kind
            )));
        }
        let signer = self.signer(publish_as)?;
        only_author(&held, &signer, "retract")?;
        let draft = Draft::retraction(
            held.id(),
            &Retraction { reason },
            held.header().spaces.clone(),
            Timestamp::now(),
        )?;
        self.write(draft, publish_as)
    }

    /// Publishes a new revision of one of the signer's own stories: the current version with
    /// `edit`'s fields put in. The revision names the original entry (also when `target` is an
    /// earlier revision), so every revision of a story hangs off the same entry.
    pub fn amend(
        &self,
        target: &str,
        edit: &StoryEdit,
        publish_as: &PublishAs,
    ) -> Result<Entry, Error> {
        let mut held = self.held(target)?;
        if let Some(original) = held.original() {
            held = self.get(&original)?.ok_or_else(|| {
                Error::BadRequest(format!(
                    "entry {} revises {original}, which is not held here; sync first",
                    held.id()
                ))
            })?;
        }
        if !held.header().kind.has_story() {
            return Err(Error::BadRequest(format!(
                "entry {} is a {}, not a learning, failure or question entry; only those can be amended",
                held.id(),
                held.header().kind
            )));
        }
        if held.body().is_none() {
            return Err(Error::BadRequest(format!(
                "entry {} was retracted by its author; it cannot be amended",
                held.id()
            )));
        }
        let signer = self.signer(publish_as)?;
        only_author(&held, &signer, "amend")?;
        let notes = Notes::read(&self.store, self.own_org(), [&held])?;
        let current = notes.story(&held).ok_or_else(|| {
            Error::BadRequest(format!(
                "the story of entry {} cannot be read; it cannot be amended",
                held.id()
            ))
        })?;
        let story = edit.apply(current)?.tidied();
        let draft = Draft::amendment(
            held.id(),
            &story,
            held.header().spaces.clone(),
            Timestamp::now(),
        )?;
        self.write(draft, publish_as)
    }

    /// Publishes a profile of the organisation (`PublishAs::Organisation`) or of a member, in
    /// every joined space. The newest profile of an author is the one shown.
    pub fn set_profile(&self, profile: &Profile, publish_as: &PublishAs) -> Result<Entry, Error> {
        let profile = Profile {
            about: profile.about.trim().to_string(),
            website: profile.website.trim().to_string(),
            contact: profile.contact.trim().to_string(),
        };
        let draft = Draft::profile(&profile, self.joined_spaces()?, Timestamp::now())?;
        self.write(draft, publish_as)
    }

    /// Adds a member key, with its credential signed by the organisation, to the keystore.
    pub fn add_member(&self, name: &str) -> Result<MemberKey, Error> {
        let signer =
            self.keystore
                .add_member(name, self.own_org(), &self.credential().claims().org_name)?;
        let claims = signer.credential.claims();
        Ok(MemberKey {
            handle: name.trim().to_string(),
            member: claims.member,
            name: claims.member_name.clone(),
        })
    }

    /// Publishes the organisation's revocation of a member, in every joined space: their
    /// entries so far stay valid, every later one is refused by every node that holds it.
    pub fn revoke(&self, name: &str, reason: String) -> Result<Entry, Error> {
        let member = self.keystore.member(name)?.key.member_id();
        // Only the gap-free start of the chain: a stolen key could claim a huge seq.
        let last_valid_seq = self.store.contiguous_head(&member)?;
        let revocation = Revocation {
            member,
            last_valid_seq,
            reason,
        };
        let draft = Draft::revocation(&revocation, self.joined_spaces()?, Timestamp::now())?;
        self.write(draft, &PublishAs::Organisation)
    }

    /// A binding of the node at `peer_id` to this organisation, signed with the
    /// organisation's key; `None` (the node is then anonymous to its peers) if the key is not
    /// in this home.
    pub fn node_binding(&self, peer_id: &[u8]) -> Result<Option<Binding>, Error> {
        let org_name = &self.credential().claims().org_name;
        let signer = match self.keystore.organisation(self.own_org(), org_name) {
            Ok(signer) => signer,
            Err(err) => {
                tracing::warn!("peers will not see which organisation runs this node: {err}");
                return Ok(None);
            }
        };
        Ok(Some(Binding::issue(
            self.own_org(),
            &signer.key,
            org_name,
            peer_id,
            Timestamp::now(),
        )?))
    }

    /// A signed invitation to the node at `peer_id`, listening at `addresses`, to the spaces
    /// it joined, valid for `lifetime`; `single_use` if only one node may accept it.
    pub fn invitation(
        &self,
        peer_id: &[u8],
        addresses: Vec<String>,
        lifetime: std::time::Duration,
        single_use: bool,
    ) -> Result<Invitation, Error> {
        let claims = self.credential().claims();
        let signer = self.keystore.organisation(claims.org, &claims.org_name)?;
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce)
            .map_err(|err| Error::Task(format!("the system random generator failed: {err}")))?;
        let issued = Timestamp::now();
        let lifetime_ms = u64::try_from(lifetime.as_millis()).unwrap_or(u64::MAX);
        Ok(Invitation::issue(
            &signer.key,
            InvitationClaims {
                org: claims.org,
                org_key: signer.key.public(),
                org_name: claims.org_name.clone(),
                peer_id: cairn_core::codec::Bytes(peer_id.to_vec()),
                addresses,
                // An invitation names at most eight spaces, like an entry.
                spaces: self
                    .spaces()
                    .into_iter()
                    .take(cairn_core::entry::MAX_SPACES)
                    .collect(),
                issued,
                expires: Timestamp(issued.0.saturating_add(lifetime_ms)),
                single_use,
                nonce,
            },
        )?)
    }

    /// Accepts an invitation a peer presents to this node (at `own_peer_id`), or says why
    /// not: it must be this organisation's, name this node, not have expired, and if it is
    /// single-use, not have been accepted before.
    pub fn accept_invitation(&self, bytes: &[u8], own_peer_id: &[u8]) -> Result<(), Error> {
        let refused = |why: &str| Err(Error::BadRequest(why.to_string()));
        let Ok(invitation) = Invitation::from_bytes(bytes) else {
            return refused("it is not a genuine invitation");
        };
        let claims = invitation.claims();
        let now = Timestamp::now();
        if claims.org != self.own_org() {
            return refused("it was not issued by this organisation");
        }
        if MemberId(claims.org_key) != self.store.org_key(&claims.org) {
            return refused(
                "it was signed with a key this organisation has since rotated away from; ask for a new one",
            );
        }
        if claims.peer_id.0 != own_peer_id {
            return refused("it names another of the organisation's nodes");
        }
        if invitation.expired(now) {
            return refused("it has expired; ask for a new one");
        }
        if !claims.single_use {
            return Ok(());
        }
        let nonce = hex::encode(claims.nonce);
        let mut outcome = Ok(());
        self.update_state(|state| {
            state.used_invitations.retain(|_, expires| *expires > now.0);
            outcome = if state.used_invitations.contains_key(&nonce) {
                refused("it was for one node only, and has been used; ask for a new one")
            } else if state.used_invitations.len() >= MAX_OPEN_SINGLE_USE {
                refused("this node holds too many single-use invitations already; try again once some have expired")
            } else {
                state.used_invitations.insert(nonce, claims.expires.0);
                Ok(())
            };
        })?;
        outcome
    }

    /// Applies a policy change (block, follow, follow-only ...).
    pub fn change_policy(&self, change: &PolicyChange) -> Result<PolicyView, Error> {
        let _one_at_a_time = lock(&self.policy_lock);
        policy::apply(&self.store, self.own_org(), change)
    }

    // ---- Reading ----

    /// A page of entries matching `query`, newest first; `next` says where the following page
    /// starts. Pages hold at most [`MAX_PAGE`] entries, whatever `query.limit` asks.
    pub fn list(&self, query: &ListQuery) -> Result<Listing, Error> {
        let mut filter = filter_from(query)?;
        // An organisation by name must be exactly one: two of the same name would otherwise
        // be listed as one.
        if let Some(name) = filter.org_name.take() {
            filter.org = Some(policy::resolve_org(&self.store, self.own_org(), &name)?);
        }
        if let Some(cursor) = query.cursor.as_deref().filter(|c| !c.trim().is_empty()) {
            let cursor: Cursor = cursor.trim().parse().map_err(|()| {
                Error::BadRequest(format!(
                    "{cursor:?} is not a listing cursor; pass on the `next` value of the previous page"
                ))
            })?;
            if matches!(cursor, Cursor::Seq(_)) != filter.author.is_some() {
                return Err(Error::BadRequest(
                    "this cursor belongs to a listing with other filters; list again from the start"
                        .into(),
                ));
            }
            filter.after = Some(cursor);
        }
        let limit = query.limit.unwrap_or(DEFAULT_PAGE).min(MAX_PAGE);
        let mut entries = Vec::with_capacity(limit.min(64));
        let mut found = self.store.newest(&filter);
        for entry in found.by_ref().take(limit) {
            entries.push(entry?);
        }
        // Cut at the page size: the next page starts after the last entry given, if there is
        // anything after it.
        let next = match entries.last() {
            Some(last) if found.next().is_some() => Some(filter.cursor_of(last).to_string()),
            _ => None,
        };
        let notes = Notes::read(&self.store, self.own_org(), &entries)?;
        Ok(Listing {
            entries,
            notes,
            next,
        })
    }

    /// The held entry an id or unique prefix names, with what refers to it.
    pub fn show(&self, prefix: &str) -> Result<Shown, Error> {
        let entry = self.held(prefix)?;
        let related: Vec<Entry> = self
            .store
            .referring(&entry.id(), MAX_RELATED)?
            .into_iter()
            .map(|(_, entry)| entry)
            .collect();
        let notes = Notes::read(
            &self.store,
            self.own_org(),
            std::iter::once(&entry).chain(&related),
        )?;
        Ok(Shown {
            entry,
            related,
            notes,
        })
    }

    /// An entry by its full id, if held.
    pub fn get(&self, id: &EntryId) -> Result<Option<Entry>, Error> {
        Ok(self.store.get(id)?)
    }

    /// Up to `limit` organisations with entries here, followed first, then by their newest
    /// entry, each with how this node knows it.
    pub fn directory(&self, limit: usize) -> Result<Vec<KnownOrg>, Error> {
        names::directory(&self.store, self.own_org(), limit)
    }

    /// The newest profile of an organisation (by its id) or member (by theirs); with no id,
    /// this home's organisation.
    pub fn profile(&self, author: Option<&str>) -> Result<Option<(Entry, Profile)>, Error> {
        let author: MemberId = match author.map(str::trim) {
            None | Some("") => self.store.org_key(&self.own_org()),
            Some(text) => text
                .parse()
                .map_err(|_| Error::BadRequest(format!("{text:?} is not a 64-digit id")))?,
        };
        Ok(self.store.profile_of(&author)?)
    }

    /// The members in this home's keystore.
    pub fn members(&self) -> Result<Vec<Member>, Error> {
        let org = self.own_org();
        self.keystore
            .members()?
            .into_iter()
            .map(|key| {
                Ok(Member {
                    revoked_after: self.store.revoked_after(&org, &key.member)?,
                    key,
                })
            })
            .collect()
    }

    /// The fork proofs held: two entries signed by one author at one seq.
    pub fn forks(&self) -> Result<Vec<cairn_store::Fork>, Error> {
        Ok(self.store.forks(None)?)
    }

    /// The policy as set.
    pub fn policy(&self) -> Result<PolicyView, Error> {
        policy::view(&self.store)
    }

    /// The entries that best match a full-text query, best first, with their notes. Sees
    /// every entry this service wrote (and, without a daemon, every stored entry).
    pub fn search(&self, query: &str, limit: usize) -> Result<Listing, Error> {
        let index = self.index()?;
        if self.live_index {
            self.index_own_writes(&index)?;
        } else {
            let _writing = lock(&self.index_writing);
            search::catch_up(&self.store, &index)?;
        }
        let entries = search::matching(&self.store, &index, query, limit.min(MAX_PAGE))?;
        let notes = Notes::read(&self.store, self.own_org(), &entries)?;
        Ok(Listing {
            entries,
            notes,
            next: None,
        })
    }

    /// Rebuilds the search index from the store; returns how many entries it holds.
    pub fn reindex(&self) -> Result<u64, Error> {
        let index = self.index()?;
        let _writing = lock(&self.index_writing);
        index.clear()?;
        index.commit()?;
        search::catch_up(&self.store, &index)?;
        lock(&self.unindexed).clear();
        Ok(index.len())
    }

    /// Runs `work` on the search index as its only writer (for the daemon's indexer).
    pub(crate) fn with_index<T>(
        &self,
        work: impl FnOnce(&Store, &SearchIndex) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let index = self.index()?;
        let _writing = lock(&self.index_writing);
        work(&self.store, &index)
    }

    // ---- Spaces and peers ----

    /// The spaces this home takes part in.
    pub fn spaces(&self) -> Vec<String> {
        read(&self.state).spaces.iter().cloned().collect()
    }

    /// The spaces the node syncs and gossips: the key-event space first (a sync takes spaces
    /// in order, and entries wait for their organisation's key log), then the joined ones.
    pub fn synced_spaces(&self) -> Vec<String> {
        let mut spaces = vec![KEY_EVENT_SPACE.to_string()];
        spaces.extend(
            self.spaces()
                .into_iter()
                .filter(|space| space != KEY_EVENT_SPACE),
        );
        spaces
    }

    /// Addresses of the peers this home remembers: added ones and those in the address book.
    pub fn known_peers(&self) -> Vec<String> {
        let state = read(&self.state);
        let mut known: std::collections::BTreeSet<String> = state.peers.clone();
        for entry in state.address_book.values() {
            known.extend(entry.addresses.iter().cloned());
        }
        known.into_iter().collect()
    }

    /// Adds a space to the joined ones (the daemon also subscribes to it).
    pub fn join_space(&self, name: &str) -> Result<String, Error> {
        let space = Space::new(name)?.to_string();
        self.update_state(|state| {
            state.spaces.insert(space.clone());
        })?;
        Ok(space)
    }

    pub fn leave_space(&self, name: &str) -> Result<String, Error> {
        let space = Space::new(name)?.to_string();
        self.update_state(|state| {
            state.spaces.remove(&space);
        })?;
        Ok(space)
    }

    /// Remembers a peer's address for reconnection.
    pub fn remember_peer(&self, address: String) -> Result<(), Error> {
        self.update_state(|state| {
            state.peers.insert(address);
        })
    }

    /// Writes the state file if it does not exist yet (the daemon does at start).
    /// Whether publishing waits for a sync after a restore.
    pub fn publishing_held(&self) -> bool {
        read(&self.state).hold_until_synced
    }

    /// Lets publishing go ahead after a restore, once a complete catch-up sync of
    /// `spaces_synced` spaces with a peer bound to an organisation (`peer_bound`) has brought
    /// back at least the entries the backup knew of in each of this home's chains. Returns
    /// whether publishing is allowed now.
    pub fn release_publishing(
        &self,
        spaces_synced: usize,
        peer_bound: bool,
    ) -> Result<bool, Error> {
        let (held, heads) = {
            let state = read(&self.state);
            (state.hold_until_synced, state.restore_heads.clone())
        };
        if !held {
            return Ok(true);
        }
        if spaces_synced == 0 || !peer_bound {
            return Ok(false);
        }
        for (member, seq) in &heads {
            let Ok(member) = member.parse::<MemberId>() else {
                continue;
            };
            let held_seq = self.store.chain_head(&member)?.map_or(0, |(seq, _)| seq);
            if held_seq < *seq {
                tracing::info!(
                    "publishing still waits: the backup knew entry {seq} of {member}, and only {held_seq} is back"
                );
                return Ok(false);
            }
        }
        tracing::info!("publishing is allowed again: this home's own entries are caught up");
        self.update_state(|state| {
            state.hold_until_synced = false;
            state.restore_heads.clear();
        })?;
        // If no peer held the entry carrying the newest key event, it goes out again.
        self.publish_key_log()?;
        Ok(true)
    }

    pub fn save_state(&self) -> Result<(), Error> {
        self.update_state(|_| {})
    }

    // ---- Internals ----

    /// Signs a draft as the signer's next entry, stores it (flushed) and puts it in the
    /// outbox.
    fn write(&self, draft: Draft, publish_as: &PublishAs) -> Result<Entry, Error> {
        if read(&self.state).hold_until_synced {
            return Err(Error::BadRequest(
                "this home was restored from a backup, and its organisation's own entries have not been synced back yet: an entry now could fork its chain. Start the node with a peer (`cairn node --peer ADDRESS`) and publish once it has caught up, or, if no other node ever held this organisation's entries, stop the node and run `cairn restore --confirm`".into(),
            ));
        }
        let Signer { key, credential } = self.signer(publish_as)?;
        let entry = {
            let _one_at_a_time = lock(&self.publish_lock);
            let (seq, prev) = match self.store.chain_head(&key.member_id())? {
                Some((seq, id)) => (seq + 1, Some(id)),
                None => (1, None),
            };
            let entry = Entry::sign(&key, &credential, seq, prev, draft)?;
            self.store.insert_own(&entry.encode(), Timestamp::now())?;
            entry
        };
        if self.live_index {
            let full = {
                let mut unindexed = lock(&self.unindexed);
                unindexed.push(entry.id());
                unindexed.len() >= MAX_UNINDEXED
            };
            // The entry is stored: a failure here must not report the publish as failed.
            if full && let Err(err) = self.index().and_then(|index| self.index_own_writes(&index)) {
                tracing::warn!("could not index the entries written here: {err}");
            }
        }
        Ok(entry)
    }

    /// Indexes and commits the entries this service wrote that may not be indexed yet (with
    /// the targets of retractions among them, indexed again without their text). It does not
    /// wait for the indexer: while the indexer holds the index (a long catch-up after a large
    /// sync), it indexes beside it. `SearchIndex::add` replaces a document, and results are
    /// deduplicated by entry, so the worst case is a second document for an entry until the
    /// next rebuild.
    fn index_own_writes(&self, index: &SearchIndex) -> Result<(), Error> {
        let ids = std::mem::take(&mut *lock(&self.unindexed));
        if ids.is_empty() {
            return Ok(());
        }
        let _writing = match self.index_writing.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        };
        let mut entries = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(entry) = self.store.get(&id)? {
                entries.push(entry);
            }
        }
        search::index_entries(&self.store, index, &entries)?;
        Ok(())
    }

    /// The search index, opened (and rebuilt if unreadable) on first use.
    fn index(&self) -> Result<Arc<SearchIndex>, Error> {
        let mut slot = lock(&self.index);
        if let Some(index) = slot.as_ref() {
            return Ok(index.clone());
        }
        let index = Arc::new(search::open(&self.files.search_index)?);
        *slot = Some(index.clone());
        Ok(index)
    }

    /// The held entry an id or unique prefix names.
    fn held(&self, prefix: &str) -> Result<Entry, Error> {
        let id = self.store.resolve(prefix.trim())?;
        // Removed between the two reads (by a block or a revocation).
        self.store
            .get(&id)?
            .ok_or_else(|| cairn_store::Error::NotFound(prefix.trim().to_string()).into())
    }

    /// The key and credential for `publish_as`.
    fn signer(&self, publish_as: &PublishAs) -> Result<Signer, Error> {
        match publish_as {
            PublishAs::Me => Ok(self.me.clone()),
            PublishAs::Member(name) => self.keystore.member(name),
            PublishAs::Organisation => self
                .keystore
                .organisation(self.own_org(), &self.credential().claims().org_name),
        }
    }

    /// The joined spaces, for entries that concern everyone this home talks to.
    fn joined_spaces(&self) -> Result<Vec<Space>, Error> {
        let spaces = self
            .spaces()
            .iter()
            .map(|name| Space::new(name))
            .collect::<Result<Vec<_>, _>>()?;
        if spaces.is_empty() {
            return Err(Error::BadRequest(
                "this node has left every space, so there is nowhere to publish; join one with `cairn space join NAME`".into(),
            ));
        }
        Ok(spaces)
    }

    fn update_state(&self, change: impl FnOnce(&mut State)) -> Result<(), Error> {
        self.update_state_if(|state| {
            change(state);
            true
        })
    }

    /// Changes the state and writes it, if `change` says it changed anything.
    fn update_state_if(&self, change: impl FnOnce(&mut State) -> bool) -> Result<(), Error> {
        let mut state = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if change(&mut state) {
            state.save(&self.files.state)?;
        }
        Ok(())
    }
}

/// Refuses to act on someone else's entry.
fn only_author(held: &Entry, signer: &Signer, action: &str) -> Result<(), Error> {
    if held.header().author == signer.key.member_id() {
        return Ok(());
    }
    Err(Error::Forbidden(format!(
        "entry {} was written by {} of {}; only its author can {action} it",
        held.id(),
        held.credential().claims().member_name,
        held.credential().claims().org_name
    )))
}

/// The store filter of a list query.
pub fn filter_from(query: &ListQuery) -> Result<Filter, Error> {
    let given = |value: &Option<String>| {
        value
            .as_deref()
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_string)
    };
    let kind = match given(&query.kind) {
        None => None,
        Some(name) => Some(Kind::from_name(&name).ok_or_else(|| {
            Error::BadRequest(format!(
                "{name:?} is not a kind; use learning, failure, question, reply, response, amend, retract, profile, membership or revoke"
            ))
        })?),
    };
    let tag = given(&query.tag)
        .as_deref()
        .map(cairn_core::body::normalize_tag)
        .transpose()?;
    let space = given(&query.space)
        .as_deref()
        .map(Space::new)
        .transpose()?
        .map(|space| space.to_string());
    let org_text = given(&query.org);
    let author_text = given(&query.author);
    let org = org_text
        .as_deref()
        .and_then(|org| org.parse::<OrgId>().ok());
    let author = author_text
        .as_deref()
        .and_then(|author| author.parse::<MemberId>().ok());
    Ok(Filter {
        kind,
        space,
        tag,
        org,
        author,
        org_name: org_text.filter(|_| org.is_none()),
        author_name: author_text.filter(|_| author.is_none()),
        stories_only: kind.is_none(),
        after: None,
    })
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
