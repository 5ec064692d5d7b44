//! What every page shares: the chrome (who is signed in, the navigation, the CSRF token),
//! choices in forms, rendering a template, errors shown as pages, and reading a posted form
//! with its CSRF check.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use cairn_core::Kind;

use super::{Session, Web, message};
use crate::Error;

/// Entries on one timeline or search page.
pub(super) const PAGE_SIZE: usize = 50;
/// Organisations in the directory and the filter.
pub(super) const MAX_ORGS: usize = 500;

/// The parts every page shares: who is signed in and what they may do, the navigation, the
/// CSRF token.
#[derive(Debug)]
pub(crate) struct Chrome {
    pub title: String,
    pub org_name: String,
    pub member_name: String,
    pub csrf: String,
    pub feed_key: String,
    pub nav: Vec<NavItem>,
    /// Whether the person may use the admin pages and forms.
    pub admin: bool,
    /// Whether they may publish on behalf of the organisation.
    pub on_behalf: bool,
}

#[derive(Debug)]
pub(crate) struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

impl Chrome {
    pub(super) fn new(web: &Web, session: &Session, title: &str, current: &str) -> Self {
        let claims = web.shared.credential().claims();
        let everyone = [
            ("/", "Timeline"),
            ("/compose", "Write"),
            ("/search", "Search"),
            ("/orgs", "Organisations"),
            ("/peers", "Peers"),
        ];
        let admins = [("/members", "Members"), ("/settings", "Settings")];
        let nav = everyone
            .into_iter()
            .chain(admins.into_iter().filter(|_| session.is_admin()))
            .map(|(href, label)| NavItem {
                href,
                label,
                current: href == current,
            })
            .collect();
        Self {
            title: title.to_string(),
            org_name: claims.org_name.clone(),
            member_name: session.name.clone(),
            csrf: session.csrf.clone(),
            admin: session.is_admin(),
            on_behalf: session.on_behalf,
            feed_key: match &session.who {
                super::session::Who::Node => web.feed_key.to_string(),
                super::session::Who::Member(handle) => {
                    super::feed::member_feed_key(&web.feed_key, handle)
                }
            },
            nav,
        }
    }
}

#[derive(Debug)]
pub(crate) struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "message.html")]
pub(crate) struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub back: bool,
}

/// An error shown as a page: bad input is the reader's to fix (400), a missing entry 404,
/// anything else the node's (500).
pub(crate) struct PageError(pub(super) Error);

impl From<Error> for PageError {
    fn from(err: Error) -> Self {
        Self(err)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title) = match &self.0 {
            Error::BadRequest(_)
            | Error::Entry(_)
            | Error::Search(cairn_search::Error::QueryTooLong(_)) => {
                (StatusCode::BAD_REQUEST, "That did not work")
            }
            Error::Forbidden(_) => (StatusCode::FORBIDDEN, "Refused"),
            Error::Store(cairn_store::Error::NotFound(_)) => {
                (StatusCode::NOT_FOUND, "No such entry")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong"),
        };
        message(status, title, &self.0.to_string())
    }
}

pub(super) type PageResult = Result<Response, PageError>;

pub(super) fn render(page: &impl Template) -> PageResult {
    render_as(StatusCode::OK, page)
}

/// A page answered with `status` (a form shown again with what went wrong, say).
pub(super) fn render_as(status: StatusCode, page: &impl Template) -> PageResult {
    let html = page
        .render()
        .map_err(|err| Error::Task(format!("a page template failed: {err}")))?;
    Ok((status, Html(html)).into_response())
}

/// A form posted by a signed-in member, once its CSRF token proved it came from this page.
pub(super) fn posted_form(session: &Session, body: &[u8]) -> Result<Form, PageError> {
    let form = Form::parse(body);
    if session.csrf_matches(form.get("csrf")) {
        Ok(form)
    } else {
        Err(PageError(Error::Forbidden(
            "this form has expired or did not come from this page; go back, reload it and try again".into(),
        )))
    }
}

/// What a form on an admin page came to, shown at the top of the page it returns to.
#[derive(Debug, Default)]
pub(super) struct Outcome {
    pub done: String,
    pub error: String,
}

impl Outcome {
    pub(super) fn of(result: Result<String, Error>) -> Self {
        match result {
            Ok(done) => Self {
                done,
                error: String::new(),
            },
            Err(err) => Self {
                done: String::new(),
                error: err.to_string(),
            },
        }
    }

    /// 422 when it failed, so the page says so to programs too.
    pub(super) fn status(&self) -> StatusCode {
        if self.error.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::UNPROCESSABLE_ENTITY
        }
    }
}

/// A URL-encoded form body as name–value pairs, in order (a name may repeat).
pub(super) struct Form(Vec<(String, String)>);

impl Form {
    pub(super) fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub(super) fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect()
    }
}

pub(super) fn kind_label(kind: Kind) -> String {
    match kind {
        Kind::LEARNING => "Learning: something that worked or that we understand better".into(),
        Kind::FAILURE => "Failure: something that did not work, and what it taught us".into(),
        Kind::QUESTION => "Question: something we want to ask others".into(),
        other => other.to_string(),
    }
}
