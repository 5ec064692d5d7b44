//! `GET /orgs`: the organisations this node holds entries from.

use std::time::SystemTime;

use askama::Template;
use axum::extract::{Extension, State};

use cairn_core::display::{Lines, printable};

use super::view::{ago, iso};
use super::{Session, Web};

use super::page::{Chrome, MAX_ORGS, PageResult, render};

#[derive(Template)]
#[template(path = "orgs.html")]
struct OrgsPage {
    chrome: Chrome,
    orgs: Vec<OrgView>,
}

struct OrgView {
    id: String,
    name: String,
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
            for (org, entry) in service.orgs(MAX_ORGS)? {
                let about = service
                    .profile(Some(&cairn_core::MemberId::from(org).to_string()))?
                    .map(|(_, profile)| profile.about)
                    .unwrap_or_default();
                orgs.push((org, entry, about));
            }
            Ok(orgs)
        })
        .await?;
    let now = SystemTime::now();
    let mut orgs: Vec<OrgView> = orgs
        .iter()
        .map(|(org, entry, about)| OrgView {
            id: org.to_string(),
            name: printable(&entry.credential().claims().org_name, Lines::One),
            about: printable(about, Lines::Keep),
            latest_iso: iso(entry.header().created),
            latest_human: ago(entry.header().created, now),
        })
        .collect();
    orgs.sort_by_key(|org| org.name.to_lowercase());
    render(&OrgsPage {
        chrome: Chrome::new(&web, &session, "Organisations", "/orgs"),
        orgs,
    })
}
