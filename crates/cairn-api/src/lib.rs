//! The JSON shapes of the node's local HTTP API: requests, answers and errors, shared by the
//! node that serves them and the CLI that sends them. Nothing here does I/O or holds logic;
//! turning these shapes into typed values (hex frames into entries, ids into keys) happens
//! at the HTTP edge, in `cairn_node::wire`.
//!
//! Compatibility: fields are only ever added (with `#[serde(default)]`), never renamed or
//! removed, so a CLI and a node one version apart still understand each other.

use std::collections::BTreeMap;

use cairn_core::body::StoryEdit;
use cairn_core::{Profile, Story};
use serde::{Deserialize, Serialize};

/// The most entries one page of `GET /api/entries` or `GET /api/search` holds; a listing
/// with more says where to continue (`next`).
pub const MAX_PAGE: usize = 1_000;

/// `GET /api/status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusView {
    pub peer_id: String,
    pub listen_addrs: Vec<String>,
    pub org: String,
    pub org_name: String,
    pub member: String,
    pub member_name: String,
    pub spaces: Vec<String>,
    pub connected_peers: Vec<PeerView>,
    pub known_peers: Vec<String>,
    /// How other nodes can reach this one.
    #[serde(default)]
    pub reachability: ReachabilityView,
    pub blocked_peers: Vec<String>,
    pub entries: usize,
    /// Whether search sees every stored entry (false while it catches up, for example while a
    /// large sync runs). Entries published through this node are always found.
    #[serde(default)]
    pub search_up_to_date: bool,
    pub api: String,
    /// The page on the organisation's network, when the node serves it there (`--web`).
    #[serde(default)]
    pub web: Option<WebPageView>,
    /// Authors against whom this node holds fork proofs.
    #[serde(default)]
    pub forked_authors: Vec<ForkedAuthorView>,
    /// The organisation's key event log, as this home keeps it.
    #[serde(default)]
    pub key_log: Option<KeyLogView>,
    /// Why the node takes no entries from other organisations for now (its disk ceiling), if
    /// it does not.
    #[serde(default)]
    pub intake_stopped: Option<String>,
    /// Addresses banned for sending misbehaving peer after peer.
    #[serde(default)]
    pub blocked_addresses: usize,
    /// Inbound connections the connection limits turned away since the node started.
    #[serde(default)]
    pub refused_connections: u64,
}

/// The organisation's key event log (`cairn org keys`, and in the status).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyLogView {
    /// How many events the log holds: 0 for an organisation that has not adopted one.
    pub events: usize,
    /// Whether the organisation's id is its first key (created before key logs).
    pub id_is_first_key: bool,
    /// The key that signs for the organisation now.
    pub current_key: String,
    /// Whether the committed next key is still on this computer (it belongs offline).
    pub next_key_here: bool,
    /// Whether this node has seen two different histories of the log.
    pub duplicity: bool,
}

/// An author who signed two different entries with the same sequence number.
#[derive(Debug, Serialize, Deserialize)]
pub struct ForkedAuthorView {
    pub author: String,
    pub author_name: String,
    pub org_name: String,
    /// The sequence numbers at which the author forked.
    pub seqs: Vec<u64>,
}

/// How other nodes can reach a node.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ReachabilityView {
    /// `direct`, `relayed`, `unreachable` or `checking`.
    pub state: String,
    /// In plain words, as `cairn status` and the page say it.
    pub summary: String,
    /// The addresses others can reach it at (direct or through relays).
    pub addresses: Vec<String>,
    /// The relays holding a place for it.
    pub relays: Vec<RelayView>,
    /// Whether it offers a relay to others.
    pub relay_offered: bool,
}

/// A relay holding a place for a node.
#[derive(Debug, Serialize, Deserialize)]
pub struct RelayView {
    pub peer_id: String,
    /// The organisation that runs it, from its binding, if it checks.
    pub org_name: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PeerView {
    pub peer_id: String,
    pub address: String,
    pub spaces: Vec<String>,
    /// How the last catch-up sync with this peer went, if one ran.
    pub last_sync: Option<SyncRecord>,
    /// The organisation that runs the peer, from its binding (if it checks): its id...
    #[serde(default)]
    pub org: Option<String>,
    /// ...the name it gives itself...
    #[serde(default)]
    pub org_name: Option<String>,
    /// ...and how this node knows it.
    #[serde(default)]
    pub provenance: Option<OrgLabelView>,
    /// The peer's clock minus this node's, in ms, as its hello said when it connected.
    #[serde(default)]
    pub clock_skew_ms: Option<i64>,
    /// The software the peer says it runs ("cairn 0.1.0"), for operators.
    #[serde(default)]
    pub software: Option<String>,
}

/// How one catch-up sync with a peer went.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncRecord {
    pub peer_id: String,
    /// When it finished, RFC 3339.
    pub finished: String,
    pub ok: bool,
    /// "up to date", or what went wrong.
    pub message: String,
    pub fetched: u64,
    pub expected: u64,
    pub bytes: u64,
    pub round_trips: u32,
    /// Round trips spent reconciling (the rest fetched or streamed entries).
    pub reconcile_round_trips: u32,
    /// Whether a space was streamed rather than reconciled.
    pub streamed: bool,
    pub millis: u64,
}

/// `GET /api/sync/progress`: the syncs running now.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Progress {
    pub running: usize,
    pub fetched: u64,
    pub expected: u64,
}

/// `POST /api/sync`: with no peer, every connected peer; with no space, every joined space.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SyncRequest {
    pub peer: Option<String>,
    pub space: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SyncView {
    pub syncs: Vec<SyncRecord>,
}

/// Entries as hex frames, with what a reader must be told beside them.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FramesView {
    pub frames: Vec<String>,
    /// Authors (member ids) of these entries against whom this node holds a fork proof.
    #[serde(default)]
    pub forked_authors: Vec<String>,
    /// Entries among these that their author retracted: id → the reason given.
    #[serde(default)]
    pub retracted: BTreeMap<String, String>,
    /// Authors of these entries whose organisation has since revoked them.
    #[serde(default)]
    pub former_authors: Vec<String>,
    /// Stories among these that their author revised: id → the latest revision (hex frame).
    #[serde(default)]
    pub revisions: BTreeMap<String, String>,
    /// How this node knows each organisation of these entries: organisation id → label.
    #[serde(default)]
    pub orgs: BTreeMap<String, OrgLabelView>,
    /// For a listing cut at its page size: the cursor to pass as `cursor` for the next page.
    /// `None` when nothing more matches.
    #[serde(default)]
    pub next: Option<String>,
}

/// Query of `GET /api/entries`; names match without regard to case, ids exactly.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ListQuery {
    pub kind: Option<String>,
    pub space: Option<String>,
    pub tag: Option<String>,
    pub org: Option<String>,
    pub author: Option<String>,
    /// At most this many entries (and never more than [`MAX_PAGE`]); 20 if not given.
    pub limit: Option<usize>,
    /// Continue after the entry this cursor names (from a previous page's `next`).
    #[serde(default)]
    pub cursor: Option<String>,
}

/// `GET /api/search`.
#[derive(Debug, Serialize, Deserialize)]
pub struct SearchQuery {
    pub q: String,
    pub limit: Option<usize>,
}

/// `POST /api/reindex`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReindexView {
    pub entries: u64,
}

/// Whose name an entry goes out under, as requests give it: the node's own member by default,
/// a member of the home's keystore by name, or the organisation itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Signing {
    /// Publish as this member of the home's keystore instead of the node's own member.
    #[serde(default)]
    pub as_member: Option<String>,
    /// Publish as the organisation itself (the author is withheld from readers).
    #[serde(default)]
    pub on_behalf: bool,
}

/// `POST /api/publish`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PublishRequest {
    pub kind: u16,
    pub story: Story,
    /// Empty: the spaces the node joined.
    pub spaces: Vec<String>,
    /// Typed links to entries this node holds.
    #[serde(default)]
    pub links: Vec<LinkRequest>,
    #[serde(flatten)]
    pub signing: Signing,
}

/// A typed link from a new story: `kind` is builds-on, contradicts or tried-too; `target` an
/// entry id or a unique prefix of one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LinkRequest {
    pub kind: String,
    pub target: String,
}

/// `POST /api/entries/{id}/reply`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ReplyRequest {
    pub text: String,
    #[serde(flatten)]
    pub signing: Signing,
}

/// `POST /api/entries/{id}/respond`: `kind` is a response type name such as `me-too`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RespondRequest {
    pub kind: String,
    #[serde(default)]
    pub note: String,
    #[serde(flatten)]
    pub signing: Signing,
}

/// `POST /api/entries/{id}/retract`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RetractRequest {
    pub reason: String,
    #[serde(flatten)]
    pub signing: Signing,
}

/// `POST /api/entries/{id}/amend`: the fields to change; the rest stay as they are.
#[derive(Debug, Serialize, Deserialize)]
pub struct AmendRequest {
    #[serde(default)]
    pub edit: StoryEdit,
    /// The whole revised story, as clients before `edit` sent it; when given, it is the
    /// revision and `edit` is ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub story: Option<Story>,
    #[serde(flatten)]
    pub signing: Signing,
}

/// `POST /api/profile`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProfileRequest {
    pub profile: Profile,
    #[serde(flatten)]
    pub signing: Signing,
}

/// `GET /api/profile?author=ID`: the newest profile of an organisation (its id) or member.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProfileQuery {
    pub author: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ProfileView {
    pub author: String,
    pub name: String,
    pub about: String,
    pub website: String,
    pub contact: String,
    /// When it was published (RFC 3339).
    pub updated: String,
}

/// `POST /api/members`.
#[derive(Debug, Serialize, Deserialize)]
pub struct MemberRequest {
    pub name: String,
}

/// `POST /api/members/revoke`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RevokeRequest {
    pub name: String,
    #[serde(default)]
    pub reason: String,
}

/// `POST /api/members/invite`: an invitation for a member to log in to the page on the
/// organisation's network.
#[derive(Debug, Serialize, Deserialize)]
pub struct InviteMemberRequest {
    pub name: String,
    /// Give them the admin role (members, follows, blocks, policy, spaces).
    #[serde(default)]
    pub admin: bool,
    /// Let them publish on behalf of the organisation too.
    #[serde(default)]
    pub on_behalf: bool,
}

/// A new invitation: the one-time link to pass on, and how to check the page is the node's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInviteView {
    pub name: String,
    /// `member` or `admin`.
    pub role: String,
    pub url: String,
    /// SHA-256 of the page's certificate (`AB:CD:…`), when the node serves its own.
    pub fingerprint: Option<String>,
    /// When the link stops working (RFC 3339).
    pub expires: String,
}

/// The web page as members reach it on the organisation's network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebPageView {
    /// `https://HOST:PORT`.
    pub url: String,
    /// SHA-256 of the certificate the node serves (`AB:CD:…`), when it serves its own.
    pub fingerprint: Option<String>,
}

/// A member of this home's keystore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub name: String,
    pub member: String,
    /// Set once the organisation revoked them: their last valid entry number.
    pub revoked_after: Option<u64>,
}

/// The answer to every request that publishes an entry.
#[derive(Debug, Serialize, Deserialize)]
pub struct PublishedView {
    pub id: String,
    pub frame: String,
    /// Whether a peer received it now (if not, it waits in the outbox).
    pub shared: bool,
}

/// One change to the policy (`POST /api/policy`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum PolicyChange {
    /// Remove the organisation's entries and refuse them from now on.
    Block {
        org: String,
        #[serde(default)]
        reason: String,
    },
    Unblock {
        org: String,
    },
    /// Follow the organisation; `petname` gives it a name of this node's own, shown instead
    /// of its self-chosen one (`None` keeps the one it has, an empty one removes it).
    Follow {
        org: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        petname: Option<String>,
    },
    Unfollow {
        org: String,
    },
    /// Accept every organisation that is not blocked.
    Open,
    /// Accept only followed organisations (and this node's own).
    FollowOnly,
}

/// `GET /api/policy`: the policy as set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyView {
    /// `open` or `follow`.
    pub mode: String,
    pub followed: Vec<OrgView>,
    pub blocked: Vec<OrgView>,
    pub max_entries_per_org: u64,
    /// For a block: how many entries it removed.
    #[serde(default)]
    pub removed: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgView {
    pub org: String,
    /// The name in its newest entry held here, if any.
    pub name: String,
    #[serde(default)]
    pub reason: String,
    /// The name this node gave it, if it follows it under a petname.
    #[serde(default)]
    pub petname: Option<String>,
}

/// `GET /api/orgs`: organisations with entries here, the followed ones first, then by their
/// newest entry.
#[derive(Debug, Serialize, Deserialize)]
pub struct DirectoryView {
    pub orgs: Vec<KnownOrgView>,
}

/// An organisation in the directory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KnownOrgView {
    pub org: String,
    /// The name its newest entry gives.
    pub name: String,
    #[serde(flatten)]
    pub label: OrgLabelView,
    /// When its newest entry here was written, RFC 3339.
    pub latest: String,
}

/// The most organisations one answer of `GET /api/orgs` holds.
pub const MAX_DIRECTORY: usize = 10_000;

/// `GET /api/orgs?limit=N` (at most [`MAX_DIRECTORY`]; 100 if not given).
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct DirectoryQuery {
    pub limit: Option<usize>,
}

/// How this node knows an organisation named beside entries: `standing` is `own`, `followed`
/// or `stranger`; `petname` the name this node gave it (shown instead of its own);
/// `name_shared` whether its own name looks like another organisation's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgLabelView {
    pub standing: String,
    #[serde(default)]
    pub petname: Option<String>,
    /// Its current name here (its newest entry's), shown on all its entries.
    #[serde(default)]
    pub current_name: Option<String>,
    #[serde(default)]
    pub name_shared: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AddressRequest {
    pub address: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PeerAddedView {
    pub peer_id: String,
}

/// What `cairn peer forget` forgot: peer ids and addresses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ForgottenView {
    pub forgotten: Vec<String>,
}

/// `GET /api/invite?expires_secs=&single_use=`: how long the invitation lasts (7 days if not
/// given, at most a year) and whether only one node may accept it.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct InviteQuery {
    #[serde(default)]
    pub expires_secs: Option<u64>,
    #[serde(default)]
    pub single_use: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TicketText {
    pub ticket: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SpacesView {
    pub spaces: Vec<String>,
}

/// `POST /api/login`: a one-time link that logs a browser in to the web page.
#[derive(Debug, Serialize, Deserialize)]
pub struct LoginView {
    pub url: String,
}

/// Every failed request answers with this body and a 4xx or 5xx status.
#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorView {
    pub error: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flattened shape must not repeat a field name, or serde writes JSON it cannot read.
    #[test]
    fn the_directory_shape_reads_back_what_it_writes() {
        let view = KnownOrgView {
            org: "ab".repeat(32),
            name: "Riverside Trust".into(),
            label: OrgLabelView {
                standing: "followed".into(),
                petname: Some("Partners".into()),
                current_name: Some("Riverside Trust".into()),
                name_shared: true,
            },
            latest: "2026-12-07T10:00:00Z".into(),
        };
        let json = serde_json::to_string(&DirectoryView { orgs: vec![view] }).expect("json");
        let read: DirectoryView = serde_json::from_str(&json).expect("reads back");
        assert_eq!(read.orgs[0].label.petname.as_deref(), Some("Partners"));
        assert_eq!(read.orgs[0].name, "Riverside Trust");
    }
}
