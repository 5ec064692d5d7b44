//! `GET /entries/{id}`: one entry with its revisions, links, responses and replies; and the
//! reply and response forms posted from it.

use std::time::SystemTime;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Redirect};
use cairn_core::{Entry, RefKind, Reply, ResponseType};

use super::view::{Card, ago, iso, markdown};
use super::{Session, Web};
use crate::Error;
use crate::thread::Thread;
use cairn_core::display::{Lines, printable};

use super::page::{Choice, Chrome, PageResult, posted_form, render};

#[derive(Template)]
#[template(path = "entry.html")]
struct EntryPage {
    chrome: Chrome,
    card: Card,
    /// Every version of the story, oldest first, when there was more than one.
    history: Vec<String>,
    text_html: String,
    sections: Vec<SectionView>,
    web_links: Vec<String>,
    links_out: Vec<LinkView>,
    links_in: Vec<LinkView>,
    responses: Vec<ResponseGroupView>,
    replies: Vec<ReplyView>,
    response_types: Vec<Choice>,
}

struct SectionView {
    heading: &'static str,
    html: String,
}

struct LinkView {
    id: String,
    title: String,
    relation: &'static str,
}

struct ResponseGroupView {
    label: String,
    items: Vec<ResponseItemView>,
}

struct ResponseItemView {
    who: String,
    note: String,
}

struct ReplyView {
    who: String,
    created_iso: String,
    created_human: String,
    html: String,
}

pub async fn entry(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
) -> PageResult {
    let (shown, linked) = web
        .shared
        .read(move |service| {
            let shown = service.show(&id)?;
            let mut linked = Vec::new();
            for reference in &shown.entry.header().refs {
                if reference.kind.is_story_link() {
                    let target = service.get(&reference.target)?;
                    linked.push((reference.kind, reference.target, target));
                }
            }
            Ok((shown, linked))
        })
        .await?;
    let crate::service::Shown {
        entry,
        related,
        notes,
    } = shown;
    let thread = Thread::gather(&entry, related);
    let now = SystemTime::now();
    // The latest revision's text, if the author revised the story.
    let story = notes
        .current(&entry)
        .story()
        .and_then(Result::ok)
        .unwrap_or_default();
    let history: Vec<String> = std::iter::once(&entry)
        .chain(&thread.revisions)
        .map(|version| {
            format!(
                "{} ({})",
                ago(version.header().created, now),
                version.id().short(12)
            )
        })
        .collect();
    let who = |entry: &Entry| notes.byline_with(entry, |name| printable(name, Lines::One));
    let title_of = |entry: &Entry| Card::new(entry, now).title;
    let card = Card::noted(&entry, now, &notes);
    let page = EntryPage {
        chrome: Chrome::new(&web, &session, &card.title, ""),
        text_html: if story.text.trim().is_empty() {
            String::new()
        } else {
            markdown(&story.text)
        },
        sections: story
            .sections()
            .into_iter()
            .filter(|(_, text)| !text.trim().is_empty())
            .map(|(heading, text)| SectionView {
                heading,
                html: markdown(text),
            })
            .collect(),
        web_links: story
            .links
            .iter()
            .map(|link| printable(link, Lines::One))
            .collect(),
        links_out: linked
            .iter()
            .map(|(how, id, target)| LinkView {
                id: id.to_string(),
                title: target.as_ref().map_or_else(
                    || format!("entry {} (not held here)", id.short(12)),
                    title_of,
                ),
                relation: relation(*how, true),
            })
            .collect(),
        links_in: thread
            .linked_from
            .iter()
            .map(|(how, from)| LinkView {
                id: from.id().to_string(),
                title: title_of(from),
                relation: relation(*how, false),
            })
            .collect(),
        responses: thread
            .responses
            .iter()
            .map(|group| ResponseGroupView {
                label: group
                    .kind
                    .label()
                    .map_or_else(|| group.kind.to_string(), Into::into),
                items: group
                    .responses
                    .iter()
                    .map(|(entry, response)| ResponseItemView {
                        who: who(entry),
                        note: printable(&response.note, Lines::One),
                    })
                    .collect(),
            })
            .collect(),
        replies: thread
            .replies
            .iter()
            .map(|item| ReplyView {
                who: who(&item.entry),
                created_iso: iso(item.entry.header().created),
                created_human: ago(item.entry.header().created, now),
                html: markdown(&item.reply.text),
            })
            .collect(),
        response_types: ResponseType::ALL
            .iter()
            .map(|(_, name, label)| Choice {
                value: (*name).into(),
                label: (*label).into(),
                selected: false,
            })
            .collect(),
        card,
        history: if thread.revisions.is_empty() {
            Vec::new()
        } else {
            history
        },
    };
    render(&page)
}

/// How a typed link reads, from the linking entry (`outgoing`) or from the linked one.
fn relation(how: RefKind, outgoing: bool) -> &'static str {
    match (how, outgoing) {
        (RefKind::BUILDS_ON, _) => "builds on",
        (RefKind::CONTRADICTS, true) => "contradicts",
        (RefKind::CONTRADICTS, false) => "disagrees with",
        (RefKind::TRIED_TOO, _) => "tried the same as",
        _ => "links to",
    }
}

pub async fn reply(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    let form = posted_form(&session, &body)?;
    let text = form.get("text").unwrap_or_default().to_string();
    let publish_as = session.publish_as(form.get("as"))?;
    let (reply, _) = web
        .shared
        .write(move |service| service.reply(&id, Reply { text }, &publish_as))
        .await?;
    let target = reply
        .target(RefKind::REPLY_TO)
        .unwrap_or_else(|| reply.id());
    Ok(Redirect::to(&format!("/entries/{target}#replies-heading")).into_response())
}

pub async fn respond(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    Path(id): Path<String>,
    body: Bytes,
) -> PageResult {
    let form = posted_form(&session, &body)?;
    let name = form.get("type").unwrap_or_default();
    let kind = ResponseType::from_name(name)
        .ok_or_else(|| Error::BadRequest(format!("{name:?} is not a response type")))?;
    let response = cairn_core::Response {
        kind,
        note: form.get("note").unwrap_or_default().to_string(),
    };
    let publish_as = session.publish_as(form.get("as"))?;
    let (responded, _) = web
        .shared
        .write(move |service| service.respond(&id, response, &publish_as))
        .await?;
    let target = responded
        .target(RefKind::RESPONDS_TO)
        .unwrap_or_else(|| responded.id());
    Ok(Redirect::to(&format!("/entries/{target}#responses-heading")).into_response())
}
