//! The local HTTP API, for the CLI. It listens on loopback only unless told otherwise, and
//! every request must carry the token the node wrote into its home (`Authorization: Bearer
//! TOKEN`) and a Host header naming the API's own address (a defence against DNS rebinding).
//! Handlers are thin: the request's JSON shape (from `cairn-api`) to a service call, its typed
//! result back to JSON through `crate::wire`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cairn_api::{
    AddressRequest, AmendRequest, ErrorView, ForkedAuthorView, FramesView, ListQuery, LoginView,
    MemberRequest, MemberView, PeerAddedView, PeerView, PolicyChange, PolicyView, ProfileQuery,
    ProfileRequest, ProfileView, Progress, PublishRequest, PublishedView, ReindexView,
    ReplyRequest, RespondRequest, RetractRequest, RevokeRequest, SearchQuery, Signing, SpacesView,
    StatusView, SyncRequest, SyncView, TicketText,
};
use cairn_core::body::StoryEdit;
use cairn_core::{Kind, RefKind, Reply, ResponseType};

use crate::Error;
use crate::node::Shared;
use crate::service::{NewStory, PublishAs};
use crate::ticket::Ticket;
use crate::web::session::constant_time_eq;
use crate::wire;

/// The largest request body accepted (a story is at most 64 KiB, plus JSON escaping).
const MAX_BODY: usize = 256 * 1024;

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

fn failure(status: StatusCode, error: String) -> Response {
    (status, Json(ErrorView { error })).into_response()
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = match &self {
            Error::BadRequest(_) | Error::Ticket(_) | Error::Entry(_) => StatusCode::BAD_REQUEST,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
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

/// Whose name a request publishes under.
fn signer(signing: Signing) -> Result<PublishAs, Error> {
    PublishAs::from_request(signing.as_member, signing.on_behalf)
}

async fn status(State(api): State<Api>) -> Result<Json<StatusView>, Error> {
    let net = api.shared.client.status().await?;
    let (entries, forks) = api
        .shared
        .read(|service| Ok((service.count()?, service.forks()?)))
        .await?;
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

async fn list(
    State(api): State<Api>,
    Query(query): Query<ListQuery>,
) -> Result<Json<FramesView>, Error> {
    let listing = api.shared.read(move |service| service.list(&query)).await?;
    Ok(Json(wire::listing_view(&listing)))
}

/// The entry first, then the entries that refer to it (replies, responses, links), oldest
/// first.
async fn show(State(api): State<Api>, Path(id): Path<String>) -> Result<Json<FramesView>, Error> {
    let shown = api.shared.read(move |service| service.show(&id)).await?;
    Ok(Json(wire::shown_view(&shown)))
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
        links.push((kind, link.target));
    }
    let new = NewStory {
        kind: Kind(request.kind),
        story: request.story,
        spaces: request.spaces,
        links,
    };
    let publish_as = signer(request.signing)?;
    published(
        api.shared
            .write(move |service| service.publish(new, &publish_as))
            .await?,
    )
}

async fn reply(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(request): Json<ReplyRequest>,
) -> Result<Json<PublishedView>, Error> {
    let publish_as = signer(request.signing)?;
    let reply = Reply { text: request.text };
    published(
        api.shared
            .write(move |service| service.reply(&id, reply, &publish_as))
            .await?,
    )
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
    let response = cairn_core::Response {
        kind,
        note: request.note,
    };
    let publish_as = signer(request.signing)?;
    published(
        api.shared
            .write(move |service| service.respond(&id, response, &publish_as))
            .await?,
    )
}

async fn retract(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(request): Json<RetractRequest>,
) -> Result<Json<PublishedView>, Error> {
    let publish_as = signer(request.signing)?;
    published(
        api.shared
            .write(move |service| service.retract(&id, request.reason, &publish_as))
            .await?,
    )
}

async fn amend(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(request): Json<AmendRequest>,
) -> Result<Json<PublishedView>, Error> {
    let publish_as = signer(request.signing)?;
    // A client one version older sends the whole revised story.
    let edit = match request.story {
        Some(story) => StoryEdit::replacing(story),
        None => request.edit,
    };
    published(
        api.shared
            .write(move |service| service.amend(&id, &edit, &publish_as))
            .await?,
    )
}

async fn set_profile(
    State(api): State<Api>,
    Json(request): Json<ProfileRequest>,
) -> Result<Json<PublishedView>, Error> {
    let publish_as = signer(request.signing)?;
    published(
        api.shared
            .write(move |service| service.set_profile(&request.profile, &publish_as))
            .await?,
    )
}

async fn profile(
    State(api): State<Api>,
    Query(query): Query<ProfileQuery>,
) -> Result<Json<Option<ProfileView>>, Error> {
    let found = api
        .shared
        .read(move |service| service.profile(Some(&query.author)))
        .await?;
    Ok(Json(found.map(|(entry, profile)| {
        wire::profile_view(&entry, profile)
    })))
}

async fn policy(State(api): State<Api>) -> Result<Json<PolicyView>, Error> {
    Ok(Json(api.shared.read(|service| service.policy()).await?))
}

async fn change_policy(
    State(api): State<Api>,
    Json(change): Json<PolicyChange>,
) -> Result<Json<PolicyView>, Error> {
    Ok(Json(
        api.shared
            .read(move |service| service.change_policy(&change))
            .await?,
    ))
}

async fn members(State(api): State<Api>) -> Result<Json<Vec<MemberView>>, Error> {
    let members = api.shared.read(|service| service.members()).await?;
    Ok(Json(members.iter().map(wire::member_view).collect()))
}

async fn add_member(
    State(api): State<Api>,
    Json(request): Json<MemberRequest>,
) -> Result<Json<MemberView>, Error> {
    let key = api
        .shared
        .read(move |service| service.add_member(&request.name))
        .await?;
    Ok(Json(wire::member_view(&crate::service::Member {
        key,
        revoked_after: None,
    })))
}

async fn revoke_member(
    State(api): State<Api>,
    Json(request): Json<RevokeRequest>,
) -> Result<Json<PublishedView>, Error> {
    published(
        api.shared
            .write(move |service| service.revoke(&request.name, request.reason))
            .await?,
    )
}

fn published((entry, shared): (cairn_core::Entry, bool)) -> Result<Json<PublishedView>, Error> {
    Ok(Json(wire::published_view(&entry, shared)))
}

/// Entries matching a full-text query, best first.
async fn search(
    State(api): State<Api>,
    Query(query): Query<SearchQuery>,
) -> Result<Json<FramesView>, Error> {
    let limit = query.limit.unwrap_or(crate::service::DEFAULT_PAGE);
    let listing = api
        .shared
        .read(move |service| service.search(&query.q, limit))
        .await?;
    Ok(Json(wire::listing_view(&listing)))
}

/// Rebuilds the search index from the store.
async fn reindex(State(api): State<Api>) -> Result<Json<ReindexView>, Error> {
    let entries = api.shared.read(|service| service.reindex()).await?;
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

async fn sync_progress(State(api): State<Api>) -> Json<Progress> {
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
