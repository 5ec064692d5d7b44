//! `GET /settings` (admins): which organisations' entries this node takes (open or followed
//! only), the blocked organisations, and the joined spaces; `POST /settings/policy` and
//! `/settings/spaces` change them, as `cairn policy` and `cairn space` do.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use cairn_api::{PolicyChange, PolicyView};
use cairn_core::display::{Lines, printable};

use super::page::{Chrome, Outcome, PageResult, posted_form, render_as};
use super::{Session, Web};
use crate::Error;

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    open: bool,
    blocked: Vec<Blocked>,
    spaces: Vec<String>,
    outcome: Outcome,
}

struct Blocked {
    org: String,
    name: String,
    reason: String,
}

pub async fn settings(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
) -> PageResult {
    settings_page(&web, &session, Outcome::default()).await
}

async fn settings_page(web: &Web, session: &Session, outcome: Outcome) -> PageResult {
    let policy: PolicyView = web.shared.read(|service| service.policy()).await?;
    render_as(
        outcome.status(),
        &SettingsPage {
            chrome: Chrome::new(web, session, "Settings", "/settings"),
            open: policy.mode == "open",
            blocked: policy
                .blocked
                .iter()
                .map(|org| Blocked {
                    org: org.org.clone(),
                    name: printable(&org.name, Lines::One),
                    reason: printable(&org.reason, Lines::One),
                })
                .collect(),
            spaces: web.shared.spaces(),
            outcome,
        },
    )
}

pub async fn policy(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> PageResult {
    let form = posted_form(&session, &body)?;
    let org = form.get("org").unwrap_or_default().trim().to_string();
    let (change, done) = match form.get("action") {
        Some("open") => (
            PolicyChange::Open,
            "Entries from every organisation that is not blocked are now taken.".to_string(),
        ),
        Some("follow") => (
            PolicyChange::FollowOnly,
            "Only entries from followed organisations are now taken.".to_string(),
        ),
        Some("block") => (
            PolicyChange::Block {
                org: org.clone(),
                reason: form.get("reason").unwrap_or_default().to_string(),
            },
            format!("Blocked {org}: its entries here were removed and will be refused."),
        ),
        Some("unblock") => (
            PolicyChange::Unblock { org: org.clone() },
            format!("Unblocked {org}."),
        ),
        _ => return Err(Error::BadRequest("choose one of the buttons on the page".into()).into()),
    };
    let changed = web
        .shared
        .read(move |service| service.change_policy(&change))
        .await
        .map(|_| done);
    settings_page(&web, &session, Outcome::of(changed)).await
}

pub async fn spaces(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> PageResult {
    let form = posted_form(&session, &body)?;
    let space = form.get("space").unwrap_or_default().trim().to_string();
    let changed = match form.get("action") {
        Some("join") => web
            .shared
            .join_space(&space)
            .await
            .map(|space| format!("Joined {space}.")),
        Some("leave") => web
            .shared
            .leave_space(&space)
            .await
            .map(|space| format!("Left {space}.")),
        _ => Err(Error::BadRequest("choose Join or Leave on the page".into())),
    };
    settings_page(&web, &session, Outcome::of(changed)).await
}
