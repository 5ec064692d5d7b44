//! The node's HTTP servers: the routers, the checks every request passes (a Host naming this
//! node, against DNS rebinding; the API token on `/api/`), how errors answer, and what they
//! serve:
//! - on loopback, `api` (the JSON API for the CLI, thin handlers over the service) and the web
//!   page for the node's own member;
//! - with `--web`, the web page alone on the organisation's network, for member accounts
//!   (`network`: the HTTPS server and its limits; `certificate`: its certificate);
//! - `web`: the page itself, with its logins, accounts, sessions and CSRF checks.

mod api;
mod certificate;
pub(crate) mod network;
pub(crate) mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cairn_api::{ErrorView, LoginView};

use crate::Error;
use crate::daemon::Shared;
use web::session::constant_time_eq;

/// The largest request body accepted (a story is at most 64 KiB, plus JSON escaping).
const MAX_BODY: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct Api {
    shared: Arc<Shared>,
    token: Arc<str>,
    allowed_hosts: Arc<[String]>,
    pages: Pages,
}

/// What both surfaces of the web page share, and the API uses to manage it.
#[derive(Debug, Clone)]
pub(crate) struct Pages {
    pub sessions: Arc<web::session::Sessions>,
    pub accounts: Arc<web::accounts::Accounts>,
    /// The page on the organisation's network, if the node serves it there.
    pub network: Option<Arc<web::NetworkPage>>,
    /// The Atom feed's read-only key.
    pub feed_key: Arc<str>,
}

/// The API and the page for the node's own member, on loopback.
pub(crate) fn router(
    shared: Arc<Shared>,
    token: String,
    address: SocketAddr,
    pages: Pages,
) -> Router {
    let port = address.port();
    let allowed_hosts: Arc<[String]> = [
        address.to_string(),
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ]
    .into();
    let web = web::Web {
        shared: shared.clone(),
        sessions: pages.sessions.clone(),
        accounts: pages.accounts.clone(),
        origins: allowed_hosts
            .iter()
            .map(|host| format!("http://{host}"))
            .collect(),
        feed_key: pages.feed_key.clone(),
        surface: web::Surface::Loopback { port },
        network: pages.network.clone(),
    };
    let api = Api {
        shared,
        token: token.into(),
        allowed_hosts: allowed_hosts.clone(),
        pages,
    };
    let api_routes = Router::new()
        .route("/api/status", get(api::status))
        .route("/api/entries", get(api::list))
        .route("/api/entries/{id}", get(api::show))
        .route("/api/entries/{id}/reply", post(api::reply))
        .route("/api/entries/{id}/respond", post(api::respond))
        .route("/api/entries/{id}/retract", post(api::retract))
        .route("/api/entries/{id}/amend", post(api::amend))
        .route("/api/search", get(api::search))
        .route("/api/reindex", post(api::reindex))
        .route("/api/publish", post(api::publish))
        .route("/api/peers", post(api::add_peer))
        .route("/api/peers/forget", post(api::forget_peer))
        .route("/api/invite", get(api::invite))
        .route("/api/join", post(api::join))
        .route("/api/spaces", get(api::spaces))
        .route(
            "/api/spaces/{name}",
            post(api::join_space).delete(api::leave_space),
        )
        .route("/api/sync", post(api::sync_now))
        .route("/api/sync/progress", get(api::sync_progress))
        .route("/api/login", post(login_link))
        .route("/api/members", get(api::members).post(api::add_member))
        .route("/api/members/revoke", post(api::revoke_member))
        .route("/api/members/invite", post(api::invite_member))
        .route("/api/policy", get(api::policy).post(api::change_policy))
        .route("/api/orgs", get(api::directory))
        .route("/api/profile", get(api::profile).post(api::set_profile))
        .route("/metrics", get(api::metrics))
        .layer(middleware::from_fn_with_state(api.clone(), require_token))
        .with_state(api);
    api_routes
        .merge(web::router(web))
        .layer(middleware::from_fn_with_state(
            HostCheck {
                allowed: allowed_hosts,
                for_members: false,
            },
            require_own_host,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

/// The page alone, for member accounts on the organisation's network.
pub(crate) fn network_router(
    shared: Arc<Shared>,
    pages: &Pages,
    prepared: &network::Prepared,
) -> Router {
    let web = web::Web {
        shared,
        sessions: pages.sessions.clone(),
        accounts: pages.accounts.clone(),
        origins: prepared.origins.clone().into(),
        feed_key: pages.feed_key.clone(),
        surface: web::Surface::Network,
        network: pages.network.clone(),
    };
    web::router(web)
        .layer(middleware::from_fn_with_state(
            HostCheck {
                allowed: prepared.allowed_hosts.clone().into(),
                for_members: true,
            },
            require_own_host,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

/// The Host header values a server answers to, and who it answers when refused.
#[derive(Debug, Clone)]
struct HostCheck {
    allowed: Arc<[String]>,
    /// Members with a browser (the network page) rather than the CLI and the local page.
    for_members: bool,
}

/// Refuses requests whose Host header names anything but this node's address (403): a page
/// on another site that resolves its own name to this node's address cannot reach it.
async fn require_own_host(
    State(check): State<HostCheck>,
    headers: HeaderMap,
    request: Request,
    next: Next,
) -> Response {
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("");
    if check.allowed.iter().any(|allowed| allowed == host) {
        return next.run(request).await;
    }
    if check.for_members {
        web::message(
            StatusCode::FORBIDDEN,
            "Wrong address",
            "This node does not answer at the address in your browser's address bar. Open the address your admin gave you.",
        )
    } else {
        failure(
            StatusCode::FORBIDDEN,
            format!(
                "Host {host:?} is not an address of this node; use the address `cairn status` shows"
            ),
        )
    }
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
pub(crate) async fn login_link(
    State(api): State<Api>,
    headers: HeaderMap,
) -> Result<Json<LoginView>, Error> {
    let code = api.pages.sessions.new_login_code()?;
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
            Error::BadRequest(_)
            | Error::Ticket(_)
            | Error::Entry(_)
            | Error::Search(cairn_search::Error::QueryTooLong(_)) => StatusCode::BAD_REQUEST,
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
