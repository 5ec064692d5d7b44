//! How entries and identities look on the terminal: the stable `--json` shapes and the text
//! views. Nothing else serialises for output.

use std::fmt::Write as _;

use cairn_api::{KnownOrgView, OrgLabelView};
use cairn_core::display::{self, Lines};
use cairn_core::{Entry, Kind, Reply, Response, Story, Timestamp};
use cairn_node::service::names::SHORT_ID_DIGITS;
use cairn_node::service::{Notes, OrgLabel};
use cairn_node::thread::Thread;
use cairn_node::wire;
use serde::Serialize;

/// The `--json` shape of an entry. Fields are only ever added, never renamed or removed.
#[derive(Debug, Serialize)]
pub struct EntryView {
    pub id: String,
    pub kind: String,
    pub title: String,
    pub summary: String,
    pub body: String,
    pub sections: Sections,
    pub tags: Vec<String>,
    pub spaces: Vec<String>,
    pub language: String,
    pub links: Vec<String>,
    pub author: String,
    pub author_name: String,
    pub org: String,
    pub org_name: String,
    pub seq: u64,
    pub prev: Option<String>,
    pub created: String,
    /// References to other entries: replies, responses and typed links.
    pub refs: Vec<RefView>,
    /// For a response: its type and note.
    pub response: Option<ResponseView>,
    /// Whether this node holds a fork proof against the author: they signed two different
    /// entries with the same sequence number, so their history cannot be trusted in full.
    pub author_forked: bool,
    /// If the author retracted the entry: their reason. Its text is gone from every node.
    pub retracted: Option<String>,
    /// Published on behalf of the organisation: `author_name` is the organisation's, and the
    /// person who wrote it is withheld.
    pub on_behalf: bool,
    /// The organisation has since revoked the author (this entry stays valid).
    pub former_member: bool,
    /// How this node knows the organisation: `standing` (`own`, `followed` or `stranger`), its
    /// `petname` here if it has one (shown instead of `org_name`), and whether its name
    /// looks like another organisation's (`name_shared`). Missing only from an older node.
    pub provenance: Option<OrgLabelView>,
    /// On the last entry of a listing cut at its limit: pass it to `cairn list --after` for
    /// the entries that follow.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct RefView {
    pub kind: String,
    pub target: String,
}

#[derive(Debug, Serialize)]
pub struct ResponseView {
    #[serde(rename = "type")]
    pub kind: String,
    pub note: String,
}

/// `cairn show --json`: the entry, and the entries that refer to it, oldest first.
#[derive(Debug, Serialize)]
pub struct ShowView {
    #[serde(flatten)]
    pub entry: EntryView,
    pub related: Vec<EntryView>,
}

#[derive(Debug, Default, Serialize)]
pub struct Sections {
    pub context: String,
    pub tried: String,
    pub happened: String,
    pub learned: String,
    pub next: String,
}

impl EntryView {
    pub fn new(entry: &Entry) -> Self {
        let header = entry.header();
        let claims = entry.credential().claims();
        // Stored entries were validated, so a story kind's body decodes; an unknown kind has none.
        let story = entry.story().and_then(Result::ok).unwrap_or_default();
        Self {
            id: entry.id().to_string(),
            kind: header.kind.to_string(),
            sections: Sections {
                context: story.context.clone(),
                tried: story.tried.clone(),
                happened: story.happened.clone(),
                learned: story.learned.clone(),
                next: story.next.clone(),
            },
            title: story.title,
            summary: story.summary,
            body: if header.kind == Kind::REPLY {
                entry
                    .body()
                    .and_then(|body| Reply::decode(body).ok())
                    .map(|reply| reply.text)
                    .unwrap_or_default()
            } else {
                story.text
            },
            tags: story.tags,
            spaces: header.spaces.iter().map(ToString::to_string).collect(),
            language: story.language,
            links: story.links,
            author: header.author.to_string(),
            author_name: claims.member_name.clone(),
            org: claims.org.to_string(),
            org_name: claims.org_name.clone(),
            seq: header.seq,
            prev: header.prev.map(|prev| prev.to_string()),
            created: rfc3339(header.created),
            refs: header
                .refs
                .iter()
                .map(|r| RefView {
                    kind: r
                        .kind
                        .name()
                        .map_or_else(|| format!("ref-{}", r.kind.0), Into::into),
                    target: r.target.to_string(),
                })
                .collect(),
            response: (header.kind == Kind::RESPONSE)
                .then(|| entry.body().map(Response::decode))
                .flatten()
                .and_then(Result::ok)
                .map(|response| ResponseView {
                    kind: response.kind.to_string(),
                    note: response.note,
                }),
            author_forked: false,
            retracted: None,
            on_behalf: entry.on_behalf_of_org(),
            former_member: false,
            provenance: None,
            cursor: None,
        }
    }

    /// The view of `entry` with what readers must be told: a fork by the author, a
    /// retraction, a revoked author.
    pub fn noted(entry: &Entry, notes: &Notes) -> Self {
        let mut view = Self::new(entry);
        view.author_forked = notes.forked(entry);
        view.retracted = notes.retracted(entry).map(str::to_string);
        view.former_member = notes.former(entry);
        view.provenance = notes.label(entry).map(wire::label_view);
        view
    }
}

/// One line of the directory: `3f2a9c1d0b4e  Riverside Trust (followed) · latest 2026-12-07
/// 10:02`, with the name it gives itself when a petname is shown instead.
pub fn known_org(org: &KnownOrgView, label: &OrgLabel) -> String {
    let short = org.org.get(..SHORT_ID_DIGITS).unwrap_or(&org.org);
    let mut line = format!(
        "{short}  {} ({})",
        field(label.shown(&org.name)),
        label.describe()
    );
    if label.petname.is_some() {
        let _ = write!(line, " · calls itself {}", field(&org.name));
    }
    let latest = org
        .latest
        .get(..16)
        .unwrap_or(&org.latest)
        .replace('T', " ");
    let _ = write!(line, " · latest {latest}");
    line
}

/// The organisation behind a connected peer, from its binding: "Riverside Trust
/// (followed)", or "anonymous" for a peer whose binding was missing or did not check (and
/// a warning when its clock is far off).
pub fn peer_org(peer: &cairn_api::PeerView) -> anyhow::Result<String> {
    let mut shown = match (&peer.org, &peer.org_name, &peer.provenance) {
        (Some(org), Some(name), Some(label)) => {
            let label = wire::label_from(org, label)?;
            format!("{} ({})", field(label.shown(name)), label.describe())
        }
        (Some(org), Some(name), None) => {
            format!("{} ({})", field(name), org.get(..12).unwrap_or(org))
        }
        _ => "anonymous node".to_string(),
    };
    if let Some(skew) = peer
        .clock_skew_ms
        .filter(|skew| skew.unsigned_abs() > cairn_node::hello::CLOCK_WARNING_MS)
    {
        let _ = write!(
            shown,
            " [its clock is {} min {}]",
            skew.unsigned_abs() / 60_000,
            if skew > 0 { "ahead" } else { "behind" }
        );
    }
    Ok(shown)
}

/// The warning shown beside entries of an author who forked their chain.
pub const FORK_WARNING: &str = "warning: this author signed two different entries with the same number (a fork); \
     their history is disputed";

pub fn rfc3339(time: Timestamp) -> String {
    humantime::format_rfc3339_millis(time.to_system_time()).to_string()
}

/// `2026-11-26 10:02`, for lists.
fn short_time(time: Timestamp) -> String {
    let full = humantime::format_rfc3339_seconds(time.to_system_time()).to_string();
    full.get(..16)
        .map(|text| text.replace('T', " "))
        .unwrap_or(full)
}

/// Two lines per entry: id, time, kind and title; then who, where and tags (and a third with
/// the fork warning, if the author forked).
/// A one-line field that came from the network, safe for a terminal: its controls shown, not
/// obeyed, and isolated so that right-to-left text cannot reorder what is around it.
pub fn field(text: &str) -> String {
    display::isolated(text, Lines::One)
}

/// A block of text that came from the network (a body, a reply), as safe lines for a terminal,
/// each isolated on its own.
fn block(text: &str) -> Vec<String> {
    display::printable(text.trim_end(), Lines::Keep)
        .lines()
        .map(|line| display::isolated(line, Lines::One))
        .collect()
}

/// "Ana Silva of Riverside Trust" with each name made safe.
fn byline(entry: &Entry, notes: &Notes) -> String {
    notes.byline_with(entry, field)
}

pub fn list_item(entry: &Entry, notes: &Notes) -> String {
    let header = entry.header();
    let story = notes.story(entry).unwrap_or_default();
    let mut second = byline(entry, notes);
    let spaces: Vec<_> = header.spaces.iter().map(ToString::to_string).collect();
    let _ = write!(second, " · {}", spaces.join(", "));
    if !story.tags.is_empty() {
        let tags: Vec<_> = story.tags.iter().map(|tag| format!("#{tag}")).collect();
        let _ = write!(second, " · {}", field(&tags.join(" ")));
    }
    let title = match notes.retracted(entry) {
        Some(reason) => format!("(retracted by the author: {})", field(reason)),
        None => field(&story.title),
    };
    let mut item = format!(
        "{}  {}  {:<8}  {}\n{:14}{}",
        entry.id().short(12),
        short_time(header.created),
        header.kind.to_string(),
        title,
        "",
        second
    );
    if notes.forked(entry) {
        let _ = write!(item, "\n{:14}{FORK_WARNING}", "");
    }
    item
}

/// The full text view of one entry.
pub fn entry_text(entry: &Entry, notes: &Notes) -> String {
    let header = entry.header();
    let claims = entry.credential().claims();
    let story = notes.story(entry).unwrap_or_else(|| Story {
        title: format!("({} entry)", header.kind),
        ..Story::default()
    });
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}: {}",
        header.kind.to_string().to_uppercase(),
        field(&story.title)
    );
    let _ = writeln!(out);
    let _ = writeln!(out, "  by       {}", byline(entry, notes));
    let _ = writeln!(out, "  created  {}", rfc3339(header.created));
    let _ = writeln!(
        out,
        "  spaces   {}",
        header
            .spaces
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !story.tags.is_empty() {
        let _ = writeln!(
            out,
            "  tags     {}",
            field(
                &story
                    .tags
                    .iter()
                    .map(|t| format!("#{t}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        );
    }
    if !story.language.is_empty() {
        let _ = writeln!(out, "  language {}", field(&story.language));
    }
    let _ = writeln!(out, "  id       {}", entry.id());
    let _ = writeln!(out, "  author   {} (seq {})", header.author, header.seq);
    let _ = writeln!(out, "  org      {}", claims.org);
    if notes.forked(entry) {
        let _ = writeln!(out, "\n  {FORK_WARNING}");
    }
    if let Some(revision) = notes.revision(entry) {
        let _ = writeln!(
            out,
            "\n  Revised by the author {} (revision {}); this is the latest version.",
            rfc3339(revision.header().created),
            revision.id().short(12)
        );
    }
    if let Some(reason) = notes.retracted(entry) {
        let _ = writeln!(
            out,
            "\n  Retracted by the author: {}\n  (its text is no longer kept or shared)",
            field(reason)
        );
    }
    let mut section = |heading: &str, text: &str| {
        if !text.trim().is_empty() {
            let _ = writeln!(out);
            if !heading.is_empty() {
                let _ = writeln!(out, "{heading}\n");
            }
            for line in block(text) {
                let _ = writeln!(out, "  {line}");
            }
        }
    };
    section("Summary", &story.summary);
    section("", &story.text);
    for (heading, text) in story.sections() {
        section(heading, text);
    }
    if !story.links.is_empty() {
        section("Links", &story.links.join("\n"));
    }
    out
}

/// Replies, responses grouped by type (no counts: support, not applause), and the stories
/// that link here, as text under an entry.
pub fn thread_text(thread: &Thread, notes: &Notes) -> String {
    let mut out = String::new();
    let who = |entry: &Entry| byline(entry, notes);
    if !thread.responses.is_empty() {
        let _ = writeln!(out, "\nResponses\n");
        for group in &thread.responses {
            let label = group
                .kind
                .label()
                .map_or_else(|| group.kind.to_string(), Into::into);
            let _ = writeln!(out, "  {label}");
            for (entry, response) in &group.responses {
                let note = if response.note.is_empty() {
                    String::new()
                } else {
                    format!(": {}", field(&response.note))
                };
                let _ = writeln!(out, "    {}{note}", who(entry));
            }
        }
    }
    if !thread.replies.is_empty() {
        let _ = writeln!(out, "\nReplies\n");
        for item in &thread.replies {
            let _ = writeln!(
                out,
                "  {} · {} · {}",
                who(&item.entry),
                short_time(item.entry.header().created),
                item.entry.id().short(12)
            );
            for line in block(&item.reply.text) {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    if !thread.linked_from.is_empty() {
        let _ = writeln!(out, "\nLinked from\n");
        for (how, entry) in &thread.linked_from {
            let title = entry.story().and_then(Result::ok).unwrap_or_default().title;
            let _ = writeln!(
                out,
                "  {} {}: {} ({})",
                entry.id().short(12),
                how.name().unwrap_or("links to"),
                field(&title),
                who(entry)
            );
        }
    }
    out
}

/// `[#########...........]  120 of 500 entries`, for `cairn sync`.
pub fn progress_bar(done: u64, expected: u64) -> String {
    const WIDTH: u64 = 30;
    let filled = (done.min(expected) * WIDTH)
        .checked_div(expected)
        .unwrap_or(0) as usize;
    format!(
        "[{}{}] {done} of {expected} entries",
        "#".repeat(filled),
        ".".repeat(WIDTH as usize - filled)
    )
}
