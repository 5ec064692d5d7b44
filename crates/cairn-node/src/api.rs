//! The local HTTP API, for the CLI and (later) the web page. It listens on loopback only unless
//! told otherwise, and every request must carry the token the node wrote into its home
//! (`Authorization: Bearer TOKEN`) and a Host header naming the API's own address (a defence
//! against DNS rebinding). Entries travel as hex frames, so clients decode and verify them with
//! `cairn-core` rather than trusting a second rendering.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cairn_core::{
    Entry, EntryId, Kind, MemberId, OrgId, Ref, RefKind, Reply, ResponseType, Retraction, Space,
    Story,
};
use cairn_store::Filter;
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::node::{PublishAs, Shared, blocking, resolve};
use crate::ticket::Ticket;

/// The most entries one list request returns.
pub const MAX_LIST: usize = 1_000;
/// The largest request body accepted (a story is at most 64 KiB, plus JSON escaping).
const MAX_BODY: usize = 256 * 1024;

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
    pub blocked_peers: Vec<String>,
    pub entries: usize,
    /// Whether search sees every stored entry (false while it catches up, for example while a
    /// large sync runs).
    #[serde(default)]
    pub search_up_to_date: bool,
    pub api: String,
    /// Authors against whom this node holds fork proofs.
    #[serde(default)]
    pub forked_authors: Vec<ForkedAuthorView>,
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

#[derive(Debug, Serialize, Deserialize)]
pub struct PeerView {
    pub peer_id: String,
    pub address: String,
    pub spaces: Vec<String>,
    /// How the last catch-up sync with this peer went, if one ran.
    pub last_sync: Option<crate::SyncRecord>,
}

/// `POST /api/sync`: with no peer, every connected peer; with no space, every joined space.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct SyncRequest {
    pub peer: Option<String>,
    pub space: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SyncView {
    pub syncs: Vec<crate::SyncRecord>,
}

/// Entries as hex frames.
#[derive(Debug, Serialize, Deserialize)]
pub struct FramesView {
    pub frames: Vec<String>,
    /// Authors (member ids) of these entries against whom this node holds a fork proof.
    #[serde(default)]
    pub forked_authors: Vec<String>,
    /// Entries among these that their author retracted: id → the reason given.
    #[serde(default)]
    pub retracted: std::collections::BTreeMap<String, String>,
    /// Authors of these entries whose organisation has since revoked them.
    #[serde(default)]
    pub former_authors: Vec<String>,
    /// Stories among these that their author revised: id → the latest revision (hex frame).
    #[serde(default)]
    pub revisions: std::collections::BTreeMap<String, String>,
}

impl FramesView {
    /// Hex frames of `entries`, flagging authors who forked their chain and entries their
    /// authors retracted. Reads the store: call it on a blocking thread.
    pub fn of<'a>(
        store: &cairn_store::Store,
        entries: impl IntoIterator<Item = &'a Entry> + Clone,
    ) -> Result<Self, Error> {
        let notes = EntryNotes::read(store, entries.clone())?;
        let mut view = FramesView {
            frames: Vec::new(),
            forked_authors: Vec::new(),
            retracted: std::collections::BTreeMap::new(),
            former_authors: Vec::new(),
            revisions: std::collections::BTreeMap::new(),
        };
        for entry in entries {
            if let Some(revision) = notes.revisions.get(&entry.id()) {
                view.revisions
                    .insert(entry.id().to_string(), hex::encode(revision.encode()));
            }
            view.frames.push(hex::encode(entry.encode()));
            let name = entry.header().author.to_string();
            if notes.forked(entry) && !view.forked_authors.contains(&name) {
                view.forked_authors.push(name.clone());
            }
            if notes.former(entry) && !view.former_authors.contains(&name) {
                view.former_authors.push(name);
            }
            if let Some(reason) = notes.retracted.get(&entry.id()) {
                view.retracted
                    .insert(entry.id().to_string(), reason.clone());
            }
        }
        Ok(view)
    }
}

/// What a reader must be told beside some entries: authors with fork proofs against them,
/// entries their authors retracted (with the reason), and authors revoked since.
#[derive(Debug, Default)]
pub struct EntryNotes {
    pub forked_authors: std::collections::HashSet<MemberId>,
    pub retracted: std::collections::HashMap<EntryId, String>,
    /// Authors whose organisation revoked them since (their earlier entries stay valid).
    pub former_authors: std::collections::HashSet<MemberId>,
    /// The latest revision of stories their author amended.
    pub revisions: std::collections::HashMap<EntryId, Entry>,
}

impl EntryNotes {
    /// Reads the notes for `entries` from the store (on a blocking thread).
    pub fn read<'a>(
        store: &cairn_store::Store,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> Result<Self, Error> {
        let mut notes = EntryNotes {
            forked_authors: store.forked_authors()?,
            retracted: std::collections::HashMap::new(),
            former_authors: std::collections::HashSet::new(),
            revisions: std::collections::HashMap::new(),
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

    pub fn forked(&self, entry: &Entry) -> bool {
        self.forked_authors.contains(&entry.header().author)
    }

    /// The entry whose story to show for `entry`: its latest revision, or itself.
    pub fn current<'a>(&'a self, entry: &'a Entry) -> &'a Entry {
        self.revisions.get(&entry.id()).unwrap_or(entry)
    }

    pub fn former(&self, entry: &Entry) -> bool {
        self.former_authors.contains(&entry.header().author)
    }
}

/// `POST /api/entries/{id}/retract`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RetractRequest {
    pub reason: String,
    /// Publish as this member of the home's keystore instead of the node's own member.
    #[serde(default)]
    pub as_member: Option<String>,
    /// Publish as the organisation itself (the author is withheld from readers).
    #[serde(default)]
    pub on_behalf: bool,
}

/// `POST /api/entries/{id}/amend`: the whole new revision of the story.
#[derive(Debug, Serialize, Deserialize)]
pub struct AmendRequest {
    pub story: Story,
    #[serde(default)]
    pub as_member: Option<String>,
    #[serde(default)]
    pub on_behalf: bool,
}

/// `POST /api/profile`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProfileRequest {
    pub profile: cairn_core::Profile,
    #[serde(default)]
    pub as_member: Option<String>,
    #[serde(default)]
    pub on_behalf: bool,
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

/// A member of this home's keystore.
#[derive(Debug, Serialize, Deserialize)]
pub struct MemberView {
    pub name: String,
    pub member: String,
    /// Set once the organisation revoked them: their last valid entry number.
    pub revoked_after: Option<u64>,
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
    /// Publish as this member of the home's keystore instead of the node's own member.
    #[serde(default)]
    pub as_member: Option<String>,
    /// Publish as the organisation itself (the author is withheld from readers).
    #[serde(default)]
    pub on_behalf: bool,
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
    /// Publish as this member of the home's keystore instead of the node's own member.
    #[serde(default)]
    pub as_member: Option<String>,
    /// Publish as the organisation itself (the author is withheld from readers).
    #[serde(default)]
    pub on_behalf: bool,
}

/// `POST /api/entries/{id}/respond`: `kind` is a response type name such as `me-too`.
#[derive(Debug, Serialize, Deserialize)]
pub struct RespondRequest {
    pub kind: String,
    #[serde(default)]
    pub note: String,
    /// Publish as this member of the home's keystore instead of the node's own member.
    #[serde(default)]
    pub as_member: Option<String>,
    /// Publish as the organisation itself (the author is withheld from readers).
    #[serde(default)]
    pub on_behalf: bool,
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

#[derive(Debug, Serialize, Deserialize)]
pub struct PublishedView {
    pub id: String,
    pub frame: String,
    /// Whether a peer received it now (if not, it waits in the outbox).
    pub shared: bool,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AddressRequest {
    pub address: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PeerAddedView {
    pub peer_id: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TicketText {
    pub ticket: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SpacesView {
    pub spaces: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ErrorView {
    pub error: String,
}

/// Query of `GET /api/entries`; names match without regard to case, ids exactly.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ListQuery {
    pub kind: Option<String>,
    pub space: Option<String>,
    pub tag: Option<String>,
    pub org: Option<String>,
    pub author: Option<String>,
    pub limit: Option<usize>,
}

/// `POST /api/login`: a one-time link that logs a browser in to the web page.
#[derive(Debug, Serialize, Deserialize)]
pub struct LoginView {
    pub url: String,
}

#[derive(Debug, Clone)]
struct Api {
    shared: Arc<Shared>,
    token: Arc<str>,
    allowed_hosts: Arc<[String]>,
    sessions: Arc<crate::web::session::Sessions>,
}

pub(crate) fn router(shared: Arc<Shared>, token: String, address: SocketAddr) -> Router {
    let port = address.port();
    let allowed_hosts: Arc<[String]> = [
        address.to_string(),
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ]
    .into();
    let sessions = Arc::new(crate::web::session::Sessions::new(port));
    let web = crate::web::Web {
        shared: shared.clone(),
        sessions: sessions.clone(),
        origins: allowed_hosts
            .iter()
            .map(|host| format!("http://{host}"))
            .collect(),
        feed_key: crate::web::feed_key(&token).into(),
    };
    let api = Api {
        shared,
        token: token.into(),
        allowed_hosts: allowed_hosts.clone(),
        sessions,
    };
    let api_routes = Router::new()
        .route("/api/status", get(status))
        .route("/api/entries", get(list))
        .route("/api/entries/{id}", get(show))
        .route("/api/entries/{id}/reply", post(reply))
        .route("/api/entries/{id}/respond", post(respond))
        .route("/api/entries/{id}/retract", post(retract))
        .route("/api/entries/{id}/amend", post(amend))
        .route("/api/search", get(search))
        .route("/api/reindex", post(reindex))
        .route("/api/publish", post(publish))
        .route("/api/peers", post(add_peer))
        .route("/api/invite", get(invite))
        .route("/api/join", post(join))
        .route("/api/spaces", get(spaces))
        .route("/api/spaces/{name}", post(join_space).delete(leave_space))
        .route("/api/sync", post(sync_now))
        .route("/api/sync/progress", get(sync_progress))
        .route("/api/login", post(login_link))
        .route("/api/members", get(members).post(add_member))
        .route("/api/members/revoke", post(revoke_member))
        .route("/api/policy", get(policy).post(change_policy))
        .route("/api/profile", get(profile).post(set_profile))
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn_with_state(api.clone(), require_token))
        .with_state(api);
    api_routes
        .merge(crate::web::router(web))
        .layer(middleware::from_fn_with_state(
            allowed_hosts,
            require_own_host,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

/// Refuses requests whose Host header names anything but this node's API address (403): a
/// page on another site that resolves its own name to 127.0.0.1 cannot reach the node.
async fn require_own_host(
    State(allowed_hosts): State<Arc<[String]>>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("");
    if !allowed_hosts.iter().any(|allowed| allowed == host) {
        return failure(
            StatusCode::FORBIDDEN,
            format!("Host {host:?} is not this node's API address"),
        );
    }
    next.run(request).await
}

/// Refuses API requests without the token (401).
async fn require_token(
    State(api): State<Api>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), api.token.as_bytes()) {
        return failure(
            StatusCode::UNAUTHORIZED,
            "missing or wrong API token; use the cairn CLI, which reads the token from the node's home".into(),
        );
    }
    next.run(request).await
}

/// A one-time login link for the web page, on the address the CLI reached the API at.
async fn login_link(State(api): State<Api>, headers: HeaderMap) -> Result<Json<LoginView>, Error> {
    let code = api.sessions.new_login_code()?;
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .filter(|host| api.allowed_hosts.iter().any(|allowed| allowed == host))
        .or_else(|| api.allowed_hosts.first().map(String::as_str))
        .unwrap_or_default()
        .to_string();
    Ok(Json(LoginView {
        url: format!("http://{host}/login?code={code}"),
    }))
}

use crate::web::session::constant_time_eq;

fn failure(status: StatusCode, error: String) -> Response {
    (status, Json(ErrorView { error })).into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match &self {
            Error::BadRequest(_) | Error::Ticket(_) | Error::Entry(_) => StatusCode::BAD_REQUEST,
            Error::Store(
                cairn_store::Error::NotFound(_) | cairn_store::Error::Ambiguous { .. },
            ) => StatusCode::NOT_FOUND,
            Error::Store(cairn_store::Error::Rejected(_)) => StatusCode::BAD_REQUEST,
            Error::Net(cairn_net::Error::Dial { .. }) => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        failure(status, self.to_string())
    }
}

async fn status(State(api): State<Api>) -> Result<Json<StatusView>, Error> {
    let net = api.shared.client.status().await?;
    let store = api.shared.store.clone();
    let (entries, forks) = blocking(move || Ok((store.count()?, store.forks(None)?))).await?;
    let mut forked_authors: Vec<ForkedAuthorView> = Vec::new();
    for fork in forks {
        let author = fork.author.to_string();
        match forked_authors.iter_mut().find(|view| view.author == author) {
            Some(view) => view.seqs.push(fork.seq),
            None => {
                let claims = fork.other.credential().claims();
                forked_authors.push(ForkedAuthorView {
                    author,
                    author_name: claims.member_name.clone(),
                    org_name: claims.org_name.clone(),
                    seqs: vec![fork.seq],
                });
            }
        }
    }
    let claims = api.shared.credential().claims();
    Ok(Json(StatusView {
        peer_id: net.peer_id.to_string(),
        listen_addrs: net.listen_addrs.iter().map(ToString::to_string).collect(),
        org: claims.org.to_string(),
        org_name: claims.org_name.clone(),
        member: claims.member.to_string(),
        member_name: claims.member_name.clone(),
        spaces: api.shared.spaces(),
        connected_peers: net
            .connected
            .into_iter()
            .map(|peer| PeerView {
                last_sync: api.shared.last_sync(&peer.peer_id),
                peer_id: peer.peer_id.to_string(),
                address: peer.address.to_string(),
                spaces: peer.spaces,
            })
            .collect(),
        known_peers: api.shared.known_peers(),
        blocked_peers: net.blocked.iter().map(ToString::to_string).collect(),
        entries,
        search_up_to_date: api
            .shared
            .search_current
            .load(std::sync::atomic::Ordering::Relaxed),
        api: api.allowed_hosts.first().cloned().unwrap_or_default(),
        forked_authors,
    }))
}

/// Builds a store filter from a list query; used by the API and the CLI alike.
pub fn filter_from(query: &ListQuery) -> Result<Filter, Error> {
    let kind = match &query.kind {
        None => None,
        Some(name) => Some(Kind::from_name(name.trim()).ok_or_else(|| {
            Error::BadRequest(format!(
                "{name:?} is not a kind; use learning, failure, question, reply, response, amend, retract, profile, membership or revoke"
            ))
        })?),
    };
    let tag = query
        .tag
        .as_deref()
        .map(cairn_core::body::normalize_tag)
        .transpose()?;
    let space = query
        .space
        .as_deref()
        .map(Space::new)
        .transpose()?
        .map(|space| space.to_string());
    let org = query
        .org
        .as_deref()
        .and_then(|org| org.parse::<OrgId>().ok());
    let author = query
        .author
        .as_deref()
        .and_then(|author| author.parse::<MemberId>().ok());
    Ok(Filter {
        kind,
        space,
        tag,
        org,
        author,
        org_name: query.org.clone().filter(|_| org.is_none()),
        author_name: query.author.clone().filter(|_| author.is_none()),
        stories_only: kind.is_none(),
    })
}

async fn list(
    State(api): State<Api>,
    Query(query): Query<ListQuery>,
) -> Result<Json<FramesView>, Error> {
    let filter = filter_from(&query)?;
    let limit = query.limit.unwrap_or(20).min(MAX_LIST);
    let store = api.shared.store.clone();
    let view = blocking(move || {
        let entries = store
            .newest(&filter)
            .take(limit)
            .collect::<Result<Vec<_>, _>>()?;
        FramesView::of(&store, &entries)
    })
    .await?;
    Ok(Json(view))
}

/// The entry first, then the entries that refer to it (replies, responses, links), oldest
/// first.
async fn show(State(api): State<Api>, Path(id): Path<String>) -> Result<Json<FramesView>, Error> {
    let entry = resolve(&api.shared.store, id.clone()).await?;
    let entry = entry.ok_or(Error::Store(cairn_store::Error::NotFound(id)))?;
    let store = api.shared.store.clone();
    let target = entry.id();
    let view = blocking(move || {
        let related = store.referring(&target, MAX_LIST)?;
        let entries = std::iter::once(&entry).chain(related.iter().map(|(_, entry)| entry));
        FramesView::of(&store, entries)
    })
    .await?;
    Ok(Json(view))
}

async fn publish(
    State(api): State<Api>,
    Json(request): Json<PublishRequest>,
) -> Result<Json<PublishedView>, Error> {
    let mut links = Vec::with_capacity(request.links.len());
    for link in request.links {
        let kind = RefKind::from_name(&link.kind)
            .filter(|kind| kind.is_story_link())
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "{:?} is not a link type; use builds-on, contradicts or tried-too",
                    link.kind
                ))
            })?;
        links.push(Ref {
            kind,
            target: resolve_id(&api, link.target).await?,
        });
    }
    let (entry, shared) = api
        .shared
        .publish(
            Kind(request.kind),
            request.story,
            request.spaces,
            links,
            &PublishAs::from_request(request.as_member, request.on_behalf)?,
        )
        .await?;
    Ok(published(&entry, shared))
}

async fn reply(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(request): Json<ReplyRequest>,
) -> Result<Json<PublishedView>, Error> {
    let target = resolve_id(&api, id).await?;
    let (entry, shared) = api
        .shared
        .reply(
            target,
            Reply { text: request.text },
            &PublishAs::from_request(request.as_member, request.on_behalf)?,
        )
        .await?;
    Ok(published(&entry, shared))
}

async fn respond(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(request): Json<RespondRequest>,
) -> Result<Json<PublishedView>, Error> {
    let kind = ResponseType::from_name(request.kind.trim()).ok_or_else(|| {
        Error::BadRequest(format!(
            "{:?} is not a response type; use thank-you, me-too, this-helped-us, challenge or offer-to-talk",
            request.kind
        ))
    })?;
    let target = resolve_id(&api, id).await?;
    let response = cairn_core::Response {
        kind,
        note: request.note.clone(),
    };
    let publish_as = PublishAs::from_request(request.as_member, request.on_behalf)?;
    let (entry, shared) = api.shared.respond(target, response, &publish_as).await?;
    Ok(published(&entry, shared))
}

async fn retract(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(request): Json<RetractRequest>,
) -> Result<Json<PublishedView>, Error> {
    let target = resolve_id(&api, id).await?;
    let publish_as = PublishAs::from_request(request.as_member, request.on_behalf)?;
    let (entry, shared) = api
        .shared
        .retract(target, request.reason, &publish_as)
        .await?;
    Ok(published(&entry, shared))
}

async fn set_profile(
    State(api): State<Api>,
    Json(request): Json<ProfileRequest>,
) -> Result<Json<PublishedView>, Error> {
    let publish_as = PublishAs::from_request(request.as_member, request.on_behalf)?;
    let (entry, shared) = api.shared.set_profile(request.profile, &publish_as).await?;
    Ok(published(&entry, shared))
}

async fn profile(
    State(api): State<Api>,
    Query(query): Query<ProfileQuery>,
) -> Result<Json<Option<ProfileView>>, Error> {
    let author: MemberId = query
        .author
        .trim()
        .parse()
        .map_err(|_| Error::BadRequest(format!("{:?} is not a 64-digit id", query.author)))?;
    let store = api.shared.store.clone();
    Ok(Json(blocking(move || profile_view(&store, &author)).await?))
}

/// The newest profile of an author, as shown to readers.
pub fn profile_view(
    store: &cairn_store::Store,
    author: &MemberId,
) -> Result<Option<ProfileView>, Error> {
    Ok(store.profile_of(author)?.map(|(entry, profile)| {
        let claims = entry.credential().claims();
        ProfileView {
            author: author.to_string(),
            name: if entry.header().author == MemberId::from(claims.org) {
                claims.org_name.clone()
            } else {
                claims.member_name.clone()
            },
            about: profile.about,
            website: profile.website,
            contact: profile.contact,
            updated: humantime::format_rfc3339_seconds(entry.header().created.to_system_time())
                .to_string(),
        }
    }))
}

async fn policy(State(api): State<Api>) -> Result<Json<crate::policy::PolicyView>, Error> {
    let store = api.shared.store.clone();
    Ok(Json(blocking(move || crate::policy::view(&store)).await?))
}

async fn change_policy(
    State(api): State<Api>,
    Json(change): Json<crate::policy::PolicyChange>,
) -> Result<Json<crate::policy::PolicyView>, Error> {
    let store = api.shared.store.clone();
    let own_org = api.shared.credential().claims().org;
    Ok(Json(
        blocking(move || crate::policy::apply(&store, own_org, &change)).await?,
    ))
}

async fn members(State(api): State<Api>) -> Result<Json<Vec<MemberView>>, Error> {
    let members = api.shared.members().await?;
    Ok(Json(
        members
            .into_iter()
            .map(|(member, revoked_after)| MemberView {
                name: member.name,
                member: member.member.to_string(),
                revoked_after,
            })
            .collect(),
    ))
}

async fn add_member(
    State(api): State<Api>,
    Json(request): Json<MemberRequest>,
) -> Result<Json<MemberView>, Error> {
    let member = api.shared.add_member(&request.name)?;
    Ok(Json(MemberView {
        name: member.name,
        member: member.member.to_string(),
        revoked_after: None,
    }))
}

async fn revoke_member(
    State(api): State<Api>,
    Json(request): Json<RevokeRequest>,
) -> Result<Json<PublishedView>, Error> {
    let (entry, shared) = api.shared.revoke(&request.name, request.reason).await?;
    Ok(published(&entry, shared))
}

async fn amend(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(request): Json<AmendRequest>,
) -> Result<Json<PublishedView>, Error> {
    let target = resolve_id(&api, id).await?;
    let publish_as = PublishAs::from_request(request.as_member, request.on_behalf)?;
    let (entry, shared) = api.shared.amend(target, request.story, &publish_as).await?;
    Ok(published(&entry, shared))
}

fn published(entry: &Entry, shared: bool) -> Json<PublishedView> {
    Json(PublishedView {
        id: entry.id().to_string(),
        frame: hex::encode(entry.encode()),
        shared,
    })
}

/// The full id of the one held entry that an id or unique prefix names.
async fn resolve_id(api: &Api, prefix: String) -> Result<EntryId, Error> {
    let entry = resolve(&api.shared.store, prefix.clone()).await?;
    Ok(entry
        .ok_or(Error::Store(cairn_store::Error::NotFound(prefix)))?
        .id())
}

/// Entries matching a full-text query, best first.
async fn search(
    State(api): State<Api>,
    Query(query): Query<SearchQuery>,
) -> Result<Json<FramesView>, Error> {
    let limit = query.limit.unwrap_or(20).min(MAX_LIST);
    let entries = crate::search::find(&api.shared, query.q, limit).await?;
    let store = api.shared.store.clone();
    Ok(Json(
        blocking(move || FramesView::of(&store, &entries)).await?,
    ))
}

/// Rebuilds the search index from the store.
async fn reindex(State(api): State<Api>) -> Result<Json<ReindexView>, Error> {
    let (store, index) = (api.shared.store.clone(), api.shared.search.clone());
    let entries = blocking(move || -> Result<u64, Error> {
        index.clear()?;
        index.commit()?;
        crate::search::catch_up(&store, &index)?;
        Ok(index.len())
    })
    .await?;
    Ok(Json(ReindexView { entries }))
}

async fn add_peer(
    State(api): State<Api>,
    Json(request): Json<AddressRequest>,
) -> Result<Json<PeerAddedView>, Error> {
    let peer = api.shared.add_peer(&request.address).await?;
    Ok(Json(PeerAddedView {
        peer_id: peer.to_string(),
    }))
}

async fn invite(State(api): State<Api>) -> Result<Json<TicketText>, Error> {
    Ok(Json(TicketText {
        ticket: api.shared.invite().await?.encode(),
    }))
}

async fn join(
    State(api): State<Api>,
    Json(request): Json<TicketText>,
) -> Result<Json<PeerAddedView>, Error> {
    let ticket = Ticket::decode(&request.ticket)?;
    let peer = api.shared.join(&ticket).await?;
    Ok(Json(PeerAddedView {
        peer_id: peer.to_string(),
    }))
}

async fn sync_now(
    State(api): State<Api>,
    Json(request): Json<SyncRequest>,
) -> Result<Json<SyncView>, Error> {
    let syncs = api
        .shared
        .sync_now(request.peer.as_deref(), request.space.as_deref())
        .await?;
    Ok(Json(SyncView { syncs }))
}

async fn sync_progress(State(api): State<Api>) -> Json<crate::Progress> {
    Json(api.shared.sync_progress())
}

/// Gossip and connection counters in the OpenMetrics text format, for Prometheus.
async fn metrics(State(api): State<Api>) -> Result<Response, Error> {
    let text = api.shared.client.metrics().await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn spaces(State(api): State<Api>) -> Json<SpacesView> {
    Json(SpacesView {
        spaces: api.shared.spaces(),
    })
}

async fn join_space(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> Result<Json<SpacesView>, Error> {
    api.shared.join_space(&name).await?;
    Ok(Json(SpacesView {
        spaces: api.shared.spaces(),
    }))
}

async fn leave_space(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> Result<Json<SpacesView>, Error> {
    api.shared.leave_space(&name).await?;
    Ok(Json(SpacesView {
        spaces: api.shared.spaces(),
    }))
}
