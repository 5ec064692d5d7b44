//! The web page for members: server-rendered pages (askama templates in `templates/`), no
//! JavaScript, every change a plain form post. It is served on two surfaces with the same
//! pages: the API's loopback address, for the node's own member, and (with `--web`) the
//! organisation's network over HTTPS, for member accounts.
//!
//! Safety rules, all enforced here:
//! - on loopback, a browser logs in only through a one-time link from `cairn open` (POST
//!   /api/login, which needs the API token); on the network, with a member account's name and
//!   passphrase, set through a one-time invitation link (`cairn member invite`);
//! - the session cookie is HttpOnly and SameSite=Strict; on loopback its name carries the port
//!   (nodes on one machine keep separate sessions), on the network it is `__Host-` and Secure;
//! - every page needs a session (the Atom feed also accepts its own read-only key), and a
//!   member account's session is checked against the account on every request, so revoking
//!   the member or changing their role applies at once;
//! - admin pages and forms (members, follows and blocks, policy, spaces, syncing now) need
//!   the admin role;
//! - every state change needs the session's CSRF token and, when the browser sends one, an
//!   Origin naming this surface;
//! - the Host check of `crate::http` applies to every request (DNS rebinding);
//! - every response carries a Content-Security-Policy that allows no scripts at all.
//!
//! - `session`: login codes and sessions, bounded in number and lifetime;
//! - `accounts`: member accounts, passphrases, invitations and the login limits;
//! - `page`: what every page shares (chrome, errors, forms and their CSRF check);
//! - `login`, `timeline`, `entry`, `compose`, `search`, `orgs`, `peers`, `members`,
//!   `settings`: one page each (or a few), with its template's data;
//! - `view`: Markdown, times and the entry cards the templates show;
//! - `feed`: the Atom feed.

pub(crate) mod accounts;
pub(crate) mod feed;
pub(crate) use feed::feed_key;
pub(crate) mod compose;
mod entry;
mod login;
pub(crate) mod members;
mod orgs;
mod page;
mod peers;
mod search;
pub(crate) mod session;
mod settings;
mod timeline;
mod view;

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::daemon::Shared;
use crate::service::PublishAs;
use accounts::{Accounts, Role};
use session::{Sessions, Who};

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the web handlers share.
#[derive(Debug, Clone)]
pub(crate) struct Web {
    pub shared: Arc<Shared>,
    pub sessions: Arc<Sessions>,
    pub accounts: Arc<Accounts>,
    /// The Origins accepted on form posts: this surface's scheme and each allowed Host.
    pub origins: Arc<[String]>,
    /// The read-only key of the Atom feed.
    pub feed_key: Arc<str>,
    pub surface: Surface,
    /// The page on the organisation's network, if the node serves it there (either surface
    /// needs it: admins invite members from both).
    pub network: Option<Arc<NetworkPage>>,
}

/// Where the page is served, which decides how members log in.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Surface {
    /// The API's loopback address: the node's own member, through `cairn open` links.
    Loopback { port: u16 },
    /// The organisation's network, over HTTPS (the node's own, or a reverse proxy's):
    /// member accounts, with their passphrases.
    Network,
}

/// The page as members reach it on the organisation's network.
#[derive(Debug, Clone)]
pub(crate) struct NetworkPage {
    /// `https://HOST:PORT`, as invitations name it.
    pub url: String,
    /// SHA-256 of the certificate the node serves, when it serves its own.
    pub fingerprint: Option<String>,
}

impl Surface {
    pub fn cookie_name(&self) -> String {
        match self {
            Self::Loopback { port } => format!("cairn_session_{port}"),
            // Secure, for this host only, on every path: browsers enforce all three.
            Self::Network => "__Host-cairn_session".into(),
        }
    }

    /// The attributes of the session cookie.
    pub fn cookie_attributes(&self) -> &'static str {
        match self {
            Self::Loopback { .. } => "HttpOnly; SameSite=Strict; Path=/",
            Self::Network => "HttpOnly; SameSite=Strict; Path=/; Secure",
        }
    }
}

/// The address a request came from, as the network surface's server saw it (or as the
/// reverse proxy in front of it said).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClientAddress(pub IpAddr);

/// The signed-in session a handler runs for.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub csrf: String,
    pub who: Who,
    /// The member's name, as readers see it.
    pub name: String,
    pub role: Role,
    /// Whether they may publish on behalf of the organisation.
    pub on_behalf: bool,
}

impl Session {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whose name what they write goes out under: theirs, or the organisation's when they
    /// chose it (`as=organisation`) and may.
    pub fn publish_as(&self, choice: Option<&str>) -> Result<PublishAs, crate::Error> {
        if choice == Some("organisation") {
            if !self.on_behalf {
                return Err(crate::Error::Forbidden(
                    "you may not publish on behalf of the organisation; ask an admin".into(),
                ));
            }
            return Ok(PublishAs::Organisation);
        }
        Ok(match &self.who {
            Who::Node => PublishAs::Me,
            Who::Member(handle) => PublishAs::Member(handle.clone()),
        })
    }
}

pub(crate) fn router(web: Web) -> Router {
    let admin = Router::new()
        .route("/orgs/follow", post(orgs::follow))
        .route("/sync", post(peers::sync))
        .route("/members", get(members::members))
        .route("/members/add", post(members::add))
        .route("/members/invite", post(members::invite))
        .route("/members/revoke", post(members::revoke))
        .route("/settings", get(settings::settings))
        .route("/settings/policy", post(settings::policy))
        .route("/settings/spaces", post(settings::spaces))
        .layer(middleware::from_fn(require_admin));
    let pages = Router::new()
        .route("/", get(timeline::timeline))
        .route("/entries/{id}", get(entry::entry))
        .route("/entries/{id}/reply", post(entry::reply))
        .route("/entries/{id}/respond", post(entry::respond))
        .route("/compose", get(compose::compose).post(compose::publish))
        .route("/search", get(search::search))
        .route("/orgs", get(orgs::orgs))
        .route("/peers", get(peers::peers))
        .route("/logout", post(login::logout))
        .merge(admin)
        .layer(middleware::from_fn_with_state(web.clone(), require_session));
    Router::new()
        .merge(pages)
        .route("/login", get(login::login).post(login::log_in))
        .route("/welcome", get(login::welcome).post(login::accept))
        .route("/feed.atom", get(feed::feed))
        .route("/static/style.css", get(stylesheet))
        .layer(middleware::from_fn(security_headers))
        .with_state(web)
}

/// Refuses admin pages to members (403).
async fn require_admin(request: Request, next: Next) -> Response {
    let admin = request
        .extensions()
        .get::<Session>()
        .is_some_and(Session::is_admin);
    if !admin {
        return message(
            StatusCode::FORBIDDEN,
            "Only admins can do this",
            "This page is for your organisation's admins. Ask one of them if something here needs changing.",
        );
    }
    next.run(request).await
}

/// Lets a request through only with a live session (and, for posts, a same-origin Origin
/// when the browser sends one); the handler finds the session in the request's extensions.
async fn require_session(State(web): State<Web>, mut request: Request, next: Next) -> Response {
    // Browsers say where a request comes from. Only this page itself, or the person (a typed
    // or clicked link), may use it: not another site, and not another port on this machine
    // (which counts as the same site, and would get the cookie).
    if let Some(site) = request.headers().get("sec-fetch-site")
        && site != "same-origin"
        && site != "none"
    {
        return message(
            StatusCode::FORBIDDEN,
            "Refused",
            "This request came from another site or another program on this computer, so it was refused. Open the page with `cairn open`.",
        );
    }
    if let Some(refusal) = foreign_post(&web, &request) {
        return refusal;
    }
    let cookie = session_cookie(request.headers(), &web.surface.cookie_name());
    match cookie.and_then(|id| signed_in(&web, &id)) {
        Some(session) => {
            request.extensions_mut().insert(session);
            next.run(request).await
        }
        None => match web.surface {
            Surface::Network => Redirect::to("/login").into_response(),
            Surface::Loopback { .. } => message(
                StatusCode::UNAUTHORIZED,
                "Please log in",
                "To use this page, run `cairn open` on the computer where the node runs and \
                 follow the link it prints.",
            ),
        },
    }
}

/// A form post whose browser says it came from another origin: refused (403).
pub(crate) fn foreign_post(web: &Web, request: &Request) -> Option<Response> {
    let origin = request.headers().get(header::ORIGIN)?;
    let ours = web
        .origins
        .iter()
        .any(|allowed| origin.as_bytes() == allowed.as_bytes());
    (request.method() == axum::http::Method::POST && !ours).then(|| {
        message(
            StatusCode::FORBIDDEN,
            "Refused",
            "This form was sent from another site, so it was refused.",
        )
    })
}

/// The live session with this id, with what its member may do now. A member account's
/// session ends if the account is gone (revoked) or it is on the wrong surface.
pub(super) fn signed_in(web: &Web, id: &str) -> Option<Session> {
    let (csrf, who) = web.sessions.session(id)?;
    match (&who, web.surface) {
        (Who::Node, Surface::Loopback { .. }) => {
            let name = web.shared.credential().claims().member_name.clone();
            Some(Session {
                csrf,
                who,
                name,
                role: Role::Admin,
                on_behalf: true,
            })
        }
        (Who::Member(handle), Surface::Network) => match web.accounts.standing(handle) {
            Some(standing) => Some(Session {
                csrf,
                who,
                name: standing.name,
                role: standing.role,
                on_behalf: standing.on_behalf,
            }),
            None => {
                web.sessions.end_member(handle);
                None
            }
        },
        _ => None,
    }
}

/// The value of the named cookie, if the request carries it.
pub(crate) fn session_cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("../../../templates/style.css"),
    )
}

/// A small page with a title and one message, for errors and refusals.
pub(crate) fn message(status: StatusCode, title: &str, text: &str) -> Response {
    let page = page::MessagePage {
        title,
        message: text,
        back: status.is_client_error() && status != StatusCode::UNAUTHORIZED,
    };
    match askama::Template::render(&page) {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => (status, format!("{title}: {text} ({err})")).into_response(),
    }
}
