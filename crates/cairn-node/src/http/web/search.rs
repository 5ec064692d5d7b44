//! `GET /search`: full-text search over the stories this node holds.

use std::time::SystemTime;

use askama::Template;
use axum::extract::{Extension, Query, State};
use serde::Deserialize;

use super::view::Card;
use super::{Session, Web};

use super::page::{Chrome, PAGE_SIZE, PageResult, render};

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    chrome: Chrome,
    query: String,
    cards: Vec<Card>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
}

pub async fn search(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    Query(query): Query<SearchQuery>,
) -> PageResult {
    let query = query.q.unwrap_or_default().trim().to_string();
    let listing = if query.is_empty() {
        crate::service::Listing::default()
    } else {
        let words = query.clone();
        web.shared
            .read(move |service| service.search(&words, PAGE_SIZE))
            .await?
    };
    let now = SystemTime::now();
    render(&SearchPage {
        chrome: Chrome::new(&web, &session, "Search", "/search"),
        cards: listing
            .entries
            .iter()
            .filter(|entry| entry.header().kind.has_story())
            .map(|entry| Card::noted(entry, now, &listing.notes))
            .collect(),
        query,
    })
}
