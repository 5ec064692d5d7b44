//! `GET /`: the newest stories, filtered by kind, space, organisation or tag.

use std::time::SystemTime;

use askama::Template;
use axum::extract::{Extension, Query, State};
use cairn_api::ListQuery;
use cairn_core::Kind;
use cairn_core::display::{Lines, printable};
use serde::Deserialize;

use super::view::Card;
use super::{Session, Web};

use super::page::{Choice, Chrome, MAX_ORGS, PAGE_SIZE, PageResult, kind_label, render};

#[derive(Template)]
#[template(path = "timeline.html")]
struct TimelinePage {
    chrome: Chrome,
    heading: String,
    kinds: Vec<Choice>,
    spaces: Vec<Choice>,
    orgs: Vec<Choice>,
    tag: String,
    cards: Vec<Card>,
}

#[derive(Debug, Default, Deserialize)]
pub struct TimelineQuery {
    kind: Option<String>,
    space: Option<String>,
    org: Option<String>,
    tag: Option<String>,
}

pub async fn timeline(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    Query(query): Query<TimelineQuery>,
) -> PageResult {
    let given = |value: &Option<String>| value.clone().filter(|v| !v.trim().is_empty());
    let list = ListQuery {
        kind: given(&query.kind),
        space: given(&query.space),
        tag: given(&query.tag),
        org: given(&query.org),
        author: None,
        limit: Some(PAGE_SIZE),
        cursor: None,
    };
    let page = list.clone();
    let (listing, orgs) = web
        .shared
        .read(move |service| {
            let mut listing = service.list(&page)?;
            // The timeline shows stories only, even when a kind is chosen.
            listing
                .entries
                .retain(|entry| entry.header().kind.has_story());
            Ok((listing, service.directory(MAX_ORGS)?))
        })
        .await?;
    let now = SystemTime::now();
    let choose = |value: &str, label: String, current: &Option<String>| Choice {
        value: value.to_string(),
        selected: current.as_deref() == Some(value),
        label,
    };
    let kinds = [Kind::LEARNING, Kind::FAILURE, Kind::QUESTION]
        .iter()
        .map(|kind| {
            let short = kind_label(*kind)
                .split(':')
                .next()
                .unwrap_or_default()
                .to_string();
            choose(&kind.to_string(), short, &list.kind)
        })
        .collect();
    let spaces = web
        .shared
        .spaces()
        .iter()
        .map(|space| choose(space, space.clone(), &list.space))
        .collect();
    let org_choices = orgs
        .iter()
        .map(|known| {
            let name = known.display_with(|name| printable(name, Lines::One));
            choose(&known.org().to_string(), name, &list.org)
        })
        .collect();
    let heading = if list.kind.is_some()
        || list.space.is_some()
        || list.org.is_some()
        || list.tag.is_some()
    {
        "Matching entries"
    } else {
        "What organisations are learning"
    };
    render(&TimelinePage {
        chrome: Chrome::new(&web, &session, "Timeline", "/"),
        heading: heading.into(),
        kinds,
        spaces,
        orgs: org_choices,
        tag: list.tag.unwrap_or_default(),
        cards: listing
            .entries
            .iter()
            .map(|entry| Card::noted(entry, now, &listing.notes))
            .collect(),
    })
}
