//! The page handlers and their templates. Reads and writes are service calls on the blocking
//! pool, the same ones the API and the CLI make, so the web page and the CLI cannot differ in
//! what they publish or show.

use std::time::SystemTime;

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use cairn_api::ListQuery;
use cairn_core::{Entry, EntryId, Kind, RefKind, Reply, ResponseType, Story};
use serde::Deserialize;

use super::view::{Card, ago, iso, markdown};
use super::{Session, Web, message};
use crate::Error;
use crate::service::{NewStory, PublishAs};
use crate::thread::Thread;

/// Entries on one timeline or search page.
const PAGE_SIZE: usize = 50;
/// Organisations in the directory and the filter.
const MAX_ORGS: usize = 500;

/// The parts every page shares: who is signed in, the navigation, the CSRF token.
#[derive(Debug)]
pub struct Chrome {
    pub title: String,
    pub org_name: String,
    pub member_name: String,
    pub csrf: String,
    pub feed_key: String,
    pub nav: Vec<NavItem>,
}

#[derive(Debug)]
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

impl Chrome {
    fn new(web: &Web, session: &Session, title: &str, current: &str) -> Self {
        let claims = web.shared.credential().claims();
        let nav = [
            ("/", "Timeline"),
            ("/compose", "Write"),
            ("/search", "Search"),
            ("/orgs", "Organisations"),
            ("/peers", "Peers"),
        ]
        .into_iter()
        .map(|(href, label)| NavItem {
            href,
            label,
            current: href == current,
        })
        .collect();
        Self {
            title: title.to_string(),
            org_name: claims.org_name.clone(),
            member_name: claims.member_name.clone(),
            csrf: session.csrf.clone(),
            feed_key: web.feed_key.to_string(),
            nav,
        }
    }
}

#[derive(Debug)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub back: bool,
}

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

#[derive(Template)]
#[template(path = "compose.html")]
struct ComposePage {
    chrome: Chrome,
    error: String,
    kinds: Vec<Choice>,
    spaces: Vec<Choice>,
    prompts: Vec<Prompt>,
    form: ComposeForm,
}

struct Prompt {
    name: &'static str,
    label: &'static str,
    hint: &'static str,
    value: String,
}

#[derive(Debug, Default)]
struct ComposeForm {
    kind: String,
    title: String,
    summary: String,
    text: String,
    tags: String,
    sections: [String; 5],
    spaces: Vec<String>,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    chrome: Chrome,
    query: String,
    cards: Vec<Card>,
}

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

#[derive(Template)]
#[template(path = "peers.html")]
struct PeersPage {
    chrome: Chrome,
    headline: String,
    latest: String,
    peers: Vec<PeerLine>,
    entries: usize,
    spaces: String,
}

struct PeerLine {
    short_id: String,
    sync: String,
}

/// An error shown as a page: bad input is the reader's to fix (400), a missing entry 404,
/// anything else the node's (500).
pub struct PageError(Error);

impl From<Error> for PageError {
    fn from(err: Error) -> Self {
        Self(err)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title) = match &self.0 {
            Error::BadRequest(_) | Error::Entry(_) => {
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

type PageResult = Result<Response, PageError>;

fn render(page: &impl Template) -> PageResult {
    let html = page
        .render()
        .map_err(|err| Error::Task(format!("a page template failed: {err}")))?;
    Ok(Html(html).into_response())
}

/// `GET /login?code=…`: spends a one-time code from `cairn open` and starts a session.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    code: String,
}

pub async fn login(State(web): State<Web>, Query(query): Query<LoginQuery>) -> PageResult {
    let Some(session_id) = web.sessions.redeem(&query.code)? else {
        return Ok(message(
            StatusCode::UNAUTHORIZED,
            "This login link no longer works",
            "Each link works once, for 10 minutes. Run `cairn open` again for a new one.",
        ));
    };
    let cookie = format!(
        "{}={session_id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        web.sessions.cookie_name(),
        super::session::SESSION_LIFETIME.as_secs()
    );
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|err| Error::Task(err.to_string()))?,
    );
    Ok(response)
}

pub async fn logout(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> PageResult {
    let form = Form::parse(&body);
    check_csrf(&session, &form)?;
    web.sessions.end(&session.csrf);
    let mut response = message(
        StatusCode::OK,
        "Logged out",
        "Run `cairn open` when you want to come back.",
    );
    let cookie = format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        web.sessions.cookie_name()
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
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
            Ok((listing, service.orgs(MAX_ORGS)?))
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
        .map(|(org, entry)| {
            let name = entry.credential().claims().org_name.clone();
            choose(&org.to_string(), name, &list.org)
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

fn kind_label(kind: Kind) -> String {
    match kind {
        Kind::LEARNING => "Learning: something that worked or that we understand better".into(),
        Kind::FAILURE => "Failure: something that did not work, and what it taught us".into(),
        Kind::QUESTION => "Question: something we want to ask others".into(),
        other => other.to_string(),
    }
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
    let who = |entry: &Entry| notes.byline(entry);
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
        web_links: story.links.clone(),
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
                        note: response.note.clone(),
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
    let form = Form::parse(&body);
    check_csrf(&session, &form)?;
    let text = form.get("text").unwrap_or_default().to_string();
    let (reply, _) = web
        .shared
        .write(move |service| service.reply(&id, Reply { text }, &PublishAs::Me))
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
    let form = Form::parse(&body);
    check_csrf(&session, &form)?;
    let name = form.get("type").unwrap_or_default();
    let kind = ResponseType::from_name(name)
        .ok_or_else(|| Error::BadRequest(format!("{name:?} is not a response type")))?;
    let response = cairn_core::Response {
        kind,
        note: form.get("note").unwrap_or_default().to_string(),
    };
    let (responded, _) = web
        .shared
        .write(move |service| service.respond(&id, response, &PublishAs::Me))
        .await?;
    let target = responded
        .target(RefKind::RESPONDS_TO)
        .unwrap_or_else(|| responded.id());
    Ok(Redirect::to(&format!("/entries/{target}#responses-heading")).into_response())
}

pub async fn compose(State(web): State<Web>, Extension(session): Extension<Session>) -> PageResult {
    let form = ComposeForm {
        kind: "learning".into(),
        spaces: web.shared.spaces(),
        ..ComposeForm::default()
    };
    render(&compose_page(&web, &session, form, String::new()))
}

const PROMPTS: [(&str, &str, &str); 5] = [
    ("context", "Context", "Where and with whom did this happen?"),
    (
        "tried",
        "What we tried",
        "What did you do, and why did it seem a good idea?",
    ),
    (
        "happened",
        "What happened",
        "What actually happened? Include what went wrong.",
    ),
    (
        "learned",
        "What we learned",
        "What do you understand now that you did not before?",
    ),
    (
        "next",
        "What we would do differently",
        "What would you tell someone about to try this?",
    ),
];

fn compose_page(web: &Web, session: &Session, form: ComposeForm, error: String) -> ComposePage {
    let kinds = [Kind::LEARNING, Kind::FAILURE, Kind::QUESTION]
        .iter()
        .map(|kind| Choice {
            value: kind.to_string(),
            label: kind_label(*kind),
            selected: form.kind == kind.to_string(),
        })
        .collect();
    let spaces = web
        .shared
        .spaces()
        .into_iter()
        .map(|space| Choice {
            selected: form.spaces.contains(&space),
            label: space.clone(),
            value: space,
        })
        .collect();
    let prompts = PROMPTS
        .iter()
        .zip(&form.sections)
        .map(|((name, label, hint), value)| Prompt {
            name,
            label,
            hint,
            value: value.clone(),
        })
        .collect();
    ComposePage {
        chrome: Chrome::new(web, session, "Write an entry", "/compose"),
        error,
        kinds,
        spaces,
        prompts,
        form,
    }
}

pub async fn publish(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> PageResult {
    let form = Form::parse(&body);
    check_csrf(&session, &form)?;
    let field = |name: &str| form.get(name).unwrap_or_default().to_string();
    let composed = ComposeForm {
        kind: field("kind"),
        title: field("title"),
        summary: field("summary"),
        text: field("text"),
        tags: field("tags"),
        sections: PROMPTS.map(|(name, _, _)| field(name)),
        spaces: form.all("space"),
    };
    match publish_composed(&web, &composed).await {
        Ok(id) => Ok(Redirect::to(&format!("/entries/{id}")).into_response()),
        // Nothing the member wrote is lost: the form comes back filled in, with the reason.
        Err(err) => {
            let mut response = render(&compose_page(&web, &session, composed, err.to_string()))?;
            *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
    }
}

async fn publish_composed(web: &Web, form: &ComposeForm) -> Result<EntryId, Error> {
    let kind = Kind::from_name(&form.kind)
        .filter(|kind| kind.has_story())
        .ok_or_else(|| Error::BadRequest("Choose what kind of entry this is.".into()))?;
    if form.spaces.is_empty() {
        return Err(Error::BadRequest(
            "Choose at least one space to share the entry with.".into(),
        ));
    }
    let tags = cairn_core::body::normalize_tags(
        form.tags.split(',').filter(|tag| !tag.trim().is_empty()),
    )?;
    // The service tidies whitespace, as for every other way of publishing.
    let [context, tried, happened, learned, next] = form.sections.clone();
    let story = Story {
        title: form.title.clone(),
        summary: form.summary.clone(),
        text: form.text.clone(),
        context,
        tried,
        happened,
        learned,
        next,
        tags,
        ..Story::default()
    };
    let new = NewStory {
        kind,
        story,
        spaces: form.spaces.clone(),
        links: Vec::new(),
    };
    let (entry, _) = web
        .shared
        .write(move |service| service.publish(new, &PublishAs::Me))
        .await?;
    Ok(entry.id())
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
            name: entry.credential().claims().org_name.clone(),
            about: about.clone(),
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

pub async fn peers(State(web): State<Web>, Extension(session): Extension<Session>) -> PageResult {
    let net = web.shared.client.status().await.map_err(Error::from)?;
    let (entries, orgs) = web
        .shared
        .read(|service| Ok((service.count()?, service.orgs(MAX_ORGS)?)))
        .await?;
    let now = SystemTime::now();
    let own_org = web.shared.credential().claims().org;
    let mut synced = 0;
    let peers: Vec<PeerLine> = net
        .connected
        .iter()
        .map(|peer| {
            let sync = match web.shared.last_sync(&peer.peer_id) {
                Some(record) if record.ok => {
                    synced += 1;
                    format!("up to date (last caught up {})", record.finished)
                }
                Some(record) => format!("the last catch-up failed: {}", record.message),
                None => "connected; catching up has not finished yet".into(),
            };
            PeerLine {
                short_id: peer
                    .peer_id
                    .to_string()
                    .chars()
                    .rev()
                    .take(8)
                    .collect::<String>()
                    .chars()
                    .rev()
                    .collect(),
                sync,
            }
        })
        .collect();
    let headline = match (peers.len(), synced) {
        (0, _) => "Not connected to any other node right now. Entries you write wait here and go out when a peer connects.".to_string(),
        (1, 1) => "Connected to 1 other node and up to date with it.".to_string(),
        (count, done) if count == done => format!("Connected to {count} other nodes and up to date with all of them."),
        (count, done) => format!("Connected to {count} other nodes; up to date with {done} of them."),
    };
    let latest = orgs
        .iter()
        .filter(|(org, _)| *org != own_org)
        .max_by_key(|(_, entry)| entry.header().created)
        .map(|(_, entry)| {
            format!(
                "Last heard from {} {}.",
                entry.credential().claims().org_name,
                ago(entry.header().created, now)
            )
        })
        .unwrap_or_default();
    render(&PeersPage {
        chrome: Chrome::new(&web, &session, "Peers", "/peers"),
        headline,
        latest,
        peers,
        entries,
        spaces: web.shared.spaces().join(", "),
    })
}

pub async fn sync(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> PageResult {
    check_csrf(&session, &Form::parse(&body))?;
    web.shared.sync_now(None, None).await?;
    Ok(Redirect::to("/peers").into_response())
}

fn check_csrf(session: &Session, form: &Form) -> Result<(), PageError> {
    if session.csrf_matches(form.get("csrf")) {
        Ok(())
    } else {
        Err(PageError(Error::Forbidden(
            "this form has expired or did not come from this page; go back, reload it and try again".into(),
        )))
    }
}

/// A URL-encoded form body as name–value pairs, in order (a name may repeat).
struct Form(Vec<(String, String)>);

impl Form {
    fn parse(body: &[u8]) -> Self {
        Self(form_urlencoded::parse(body).into_owned().collect())
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect()
    }
}
