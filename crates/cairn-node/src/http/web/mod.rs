//! The web page for members, served on the API's loopback address: server-rendered pages
//! (askama templates in `templates/`), no JavaScript, every change a plain form post.
//!
//! Safety rules, all enforced here:
//! - a browser logs in only through a one-time link from `cairn open` (POST /api/login, which
//!   needs the API token); the link sets an HttpOnly, SameSite=Strict session cookie whose name
//!   carries the port, so nodes on one machine keep separate sessions;
//! - every page needs that session (the Atom feed also accepts its own read-only key);
//! - every state change needs the session's CSRF token and, when the browser sends one, an
//!   Origin naming this node;
//! - the Host check of `crate::http` applies to every request (DNS rebinding);
//! - every response carries a Content-Security-Policy that allows no scripts at all.
//!
//! - `session`: login codes and sessions, bounded in number and lifetime;
//! - `page`: what every page shares (chrome, errors, forms and their CSRF check);
//! - `login`, `timeline`, `entry`, `compose`, `search`, `orgs`, `peers`: one page each, with
//!   its template's data;
//! - `view`: Markdown, times and the entry cards the templates show;
//! - `feed`: the Atom feed.

mod feed;
pub(crate) use feed::feed_key;
pub(crate) mod compose;
mod entry;
mod login;
mod orgs;
mod page;
mod peers;
mod search;
pub(crate) mod session;
mod timeline;
mod view;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::daemon::Shared;
use session::Sessions;

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// What the web handlers share.
#[derive(Debug, Clone)]
pub(crate) struct Web {
    pub shared: Arc<Shared>,
    pub sessions: Arc<Sessions>,
    /// `http://HOST` for each allowed Host: the Origins accepted on form posts.
    pub origins: Arc<[String]>,
    /// The read-only key of the Atom feed.
    pub feed_key: Arc<str>,
}

/// The signed-in session a handler runs for.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub csrf: String,
}

pub(crate) fn router(web: Web) -> Router {
    let pages = Router::new()
        .route("/", get(timeline::timeline))
        .route("/entries/{id}", get(entry::entry))
        .route("/entries/{id}/reply", post(entry::reply))
        .route("/entries/{id}/respond", post(entry::respond))
        .route("/compose", get(compose::compose).post(compose::publish))
        .route("/search", get(search::search))
        .route("/orgs", get(orgs::orgs))
        .route("/orgs/follow", post(orgs::follow))
        .route("/peers", get(peers::peers))
        .route("/sync", post(peers::sync))
        .route("/logout", post(login::logout))
        .layer(middleware::from_fn_with_state(web.clone(), require_session));
    Router::new()
        .merge(pages)
        .route("/login", get(login::login))
        .route("/feed.atom", get(feed::feed))
        .route("/static/style.css", get(stylesheet))
        .layer(middleware::from_fn(security_headers))
        .with_state(web)
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
    if request.method() == axum::http::Method::POST
        && let Some(origin) = request.headers().get(header::ORIGIN)
        && !web
            .origins
            .iter()
            .any(|allowed| origin.as_bytes() == allowed.as_bytes())
    {
        return message(
            StatusCode::FORBIDDEN,
            "Refused",
            "This form was sent from another site, so it was refused.",
        );
    }
    let cookie = session_cookie(request.headers(), web.sessions.cookie_name());
    match cookie.and_then(|id| web.sessions.session(&id)) {
        Some(session) => {
            request.extensions_mut().insert(session);
            next.run(request).await
        }
        None => message(
            StatusCode::UNAUTHORIZED,
            "Please log in",
            "To use this page, run `cairn open` on the computer where the node runs and follow \
             the link it prints.",
        ),
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
