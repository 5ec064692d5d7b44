//! `GET /orgs`: the organisations this node holds entries from, followed ones first, each
//! with how this node knows it; `POST /orgs/follow`: follow or unfollow one, and give it a
//! petname.

use std::time::SystemTime;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use axum::response::{IntoResponse, Redirect};

use cairn_api::PolicyChange;
use cairn_core::display::{Lines, printable};

use super::page::{Chrome, MAX_ORGS, PageResult, posted_form, render};
use super::view::{ago, iso};
use super::{Session, Web};
use crate::Error;
use crate::service::Standing;

#[derive(Template)]
#[template(path = "orgs.html")]
struct OrgsPage {
    chrome: Chrome,
    orgs: Vec<OrgView>,
}

struct OrgView {
    id: String,
    /// Its petname here, or its own name.
    name: String,
    /// The name it gives itself, when a petname is shown instead.
    own_name: String,
    /// How this node knows it, and its standing alone as a CSS class.
    label: String,
    standing: &'static str,
    petname: String,
    /// From the organisation's own profile, if it published one.
    about: String,
    latest_iso: String,
    latest_human: String,
}

pub async fn orgs(State(web): State<Web>, Extension(session): Extension<Session>) -> PageResult {
    let orgs = web
        .shared
        .read(move |service| {
            let mut orgs = Vec::new();
            for known in service.directory(MAX_ORGS)? {
                let about = service
                    .profile(Some(&service.store().org_key(&known.org()).to_string()))?
                    .map(|(_, profile)| profile.about)
                    .unwrap_or_default();
                orgs.push((known, about));
            }
            Ok(orgs)
        })
        .await?;
    let now = SystemTime::now();
    // In the directory's order: followed organisations first, then by their newest entry.
    let orgs: Vec<OrgView> = orgs
        .iter()
        .map(|(known, about)| OrgView {
            id: known.org().to_string(),
            name: printable(known.name(), Lines::One),
            own_name: if known.label.petname.is_some() {
                printable(known.own_name(), Lines::One)
            } else {
                String::new()
            },
            label: known.label.describe(),
            standing: known.label.standing.as_str(),
            petname: known.label.petname.clone().unwrap_or_default(),
            about: printable(about, Lines::Keep),
            latest_iso: iso(known.newest.header().created),
            latest_human: ago(known.newest.header().created, now),
        })
        .collect();
    render(&OrgsPage {
        chrome: Chrome::new(&web, &session, "Organisations", "/orgs"),
        orgs,
    })
}

/// Follows (with the petname given, an empty one removing it) or unfollows an organisation.
pub async fn follow(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> PageResult {
    let form = posted_form(&session, &body)?;
    let org = form.get("org").unwrap_or_default().to_string();
    let change = match form.get("action") {
        Some("follow") => PolicyChange::Follow {
            org,
            petname: Some(form.get("petname").unwrap_or_default().to_string()),
        },
        Some("unfollow") => PolicyChange::Unfollow { org },
        _ => {
            return Err(
                Error::BadRequest("choose Follow, Save or Unfollow on the page".into()).into(),
            );
        }
    };
    web.shared
        .read(move |service| service.change_policy(&change))
        .await?;
    Ok(Redirect::to("/orgs").into_response())
}

impl OrgView {
    fn followed(&self) -> bool {
        self.standing == Standing::Followed.as_str()
    }

    fn own(&self) -> bool {
        self.standing == Standing::Own.as_str()
    }
}
