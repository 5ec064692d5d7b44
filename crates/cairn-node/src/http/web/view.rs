//! What the templates show: entry cards, Markdown made safe, and times for people.

use std::time::SystemTime;

use cairn_core::display::{Lines, printable};
use cairn_core::{Entry, Kind, Timestamp};

use crate::service::Notes;

/// An entry as a timeline card (and the head of the entry page). Strings are escaped by the
/// templates.
#[derive(Debug, Clone)]
pub struct Card {
    pub id: String,
    /// `learning`, `failure`, `question` or another kind's name: a CSS class.
    pub kind: String,
    pub kind_label: String,
    pub title: String,
    pub summary: String,
    pub author_name: String,
    pub org: String,
    /// The organisation's petname here, or its own name.
    pub org_name: String,
    /// How this node knows the organisation ("followed", "stranger 3f2a9c1d0b4e, name
    /// shared"), and its standing alone (`own`, `followed`, `stranger`) as a CSS class.
    pub org_label: String,
    pub org_standing: String,
    pub created_iso: String,
    pub created_human: String,
    pub spaces: Vec<String>,
    pub tags: Vec<String>,
    /// The author signed two different entries with the same number (a fork proof is held).
    pub forked: bool,
    /// The author retracted it, for this reason (empty if not retracted).
    pub retracted: String,
    /// Published on behalf of the organisation: the author is withheld.
    pub on_behalf: bool,
    /// The organisation has since revoked the author (the entry stays valid).
    pub former: bool,
    /// When the author last revised the story (empty if never).
    pub revised: String,
}

impl Card {
    /// The card of `entry` with what readers must be told about it.
    pub fn noted(entry: &Entry, now: SystemTime, notes: &Notes) -> Self {
        let mut card = Self::new(entry, now);
        if let Some(revision) = notes.revision(entry) {
            let current = Self::new(revision, now);
            card.title = current.title;
            card.summary = current.summary;
            card.tags = current.tags;
            card.revised = current.created_human;
        }
        if let Some(label) = notes.label(entry) {
            let own_name = &entry.credential().claims().org_name;
            card.org_name = printable(label.shown(own_name), Lines::One);
            card.org_label = label.describe();
            card.org_standing = label.standing.as_str().into();
        }
        card.forked = notes.forked(entry);
        card.former = notes.former(entry);
        if let Some(reason) = notes.retracted(entry) {
            card.retracted = printable(reason, Lines::One);
            card.title = "Retracted by its author".into();
            card.summary = String::new();
        }
        card
    }

    pub fn new(entry: &Entry, now: SystemTime) -> Self {
        let header = entry.header();
        let claims = entry.credential().claims();
        let story = entry.story().and_then(Result::ok).unwrap_or_default();
        let kind_label = match header.kind {
            Kind::LEARNING => "Learning".to_string(),
            Kind::FAILURE => "Failure".to_string(),
            Kind::QUESTION => "Question".to_string(),
            other => other.to_string(),
        };
        Self {
            id: entry.id().to_string(),
            kind: header.kind.to_string(),
            kind_label,
            // Text from the network with its controls shown, not obeyed; the templates isolate
            // each field (`<bdi>`) so right-to-left text cannot reorder the page around it.
            title: if story.title.is_empty() {
                format!("({} entry)", header.kind)
            } else {
                printable(&story.title, Lines::One)
            },
            summary: printable(&story.summary, Lines::Keep),
            author_name: printable(&claims.member_name, Lines::One),
            org: claims.org.to_string(),
            org_name: printable(&claims.org_name, Lines::One),
            org_label: String::new(),
            org_standing: String::new(),
            created_iso: iso(header.created),
            created_human: ago(header.created, now),
            spaces: header.spaces.iter().map(ToString::to_string).collect(),
            tags: story
                .tags
                .iter()
                .map(|tag| printable(tag, Lines::One))
                .collect(),
            forked: false,
            retracted: String::new(),
            on_behalf: entry.on_behalf_of_org(),
            former: false,
            revised: String::new(),
        }
    }
}

/// Markdown to HTML that is safe to put in a page: raw HTML in the source is escaped by the
/// renderer's output passing through ammonia, which keeps only harmless tags and attributes
/// (links get `rel="noopener noreferrer"`; images are dropped, as the page loads nothing from
/// elsewhere).
pub fn markdown(source: &str) -> String {
    use pulldown_cmark::{Options, Parser, html};
    let source = printable(source, Lines::Keep);
    let source = source.as_str();
    let mut unsafe_html = String::with_capacity(source.len() * 3 / 2);
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH;
    html::push_html(&mut unsafe_html, Parser::new_ext(source, options));
    let html = ammonia::Builder::default()
        .rm_tags(["img"])
        .clean(&unsafe_html)
        .to_string();
    // Character references (`&#27;`, `&#x202E;`) are decoded by the Markdown renderer, after
    // the source was made printable: the output goes through it again.
    printable(&html, Lines::Keep)
}

/// RFC 3339, for `<time datetime>` and feeds.
pub fn iso(time: Timestamp) -> String {
    humantime::format_rfc3339_seconds(time.to_system_time()).to_string()
}

/// "just now", "5 minutes ago", "3 days ago", or the date for older times.
pub fn ago(time: Timestamp, now: SystemTime) -> String {
    let Ok(elapsed) = now.duration_since(time.to_system_time()) else {
        return "just now".into();
    };
    let seconds = elapsed.as_secs();
    let plural = |count: u64, unit: &str| {
        if count == 1 {
            format!("1 {unit} ago")
        } else {
            format!("{count} {unit}s ago")
        }
    };
    match seconds {
        0..60 => "just now".into(),
        60..3_600 => plural(seconds / 60, "minute"),
        3_600..86_400 => plural(seconds / 3_600, "hour"),
        86_400..2_592_000 => plural(seconds / 86_400, "day"),
        _ => iso(time).get(..10).unwrap_or_default().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_keeps_formatting_and_drops_scripts() {
        let html = markdown(
            "**bold** [ok](https://example.org) <script>alert(1)</script> \
             [bad](javascript:alert(1)) <img src=x onerror=alert(1)>",
        );
        assert!(html.contains("<strong>bold</strong>"));
        assert!(html.contains("href=\"https://example.org\""));
        assert!(!html.contains("<script"));
        assert!(!html.contains("javascript:"));
        assert!(!html.contains("onerror"));
        assert!(!html.contains("<img"));
    }

    #[test]
    fn markdown_shows_controls_instead_of_passing_them_on() {
        let html = markdown("\x1b]8;;http://evil\x1b\\click\x1b]8;;\x1b\\ \u{202E}txt");
        assert!(
            !html.chars().any(|c| c.is_control() && c != '\n'),
            "{html:?}"
        );
        assert!(html.contains("␛]8;;http://evil␛"), "{html:?}");
        assert!(html.contains("\u{202E}txt\u{202C}"), "{html:?}");
        // Character references are decoded by the renderer: they are made safe afterwards.
        let html = markdown("a &#27;[31m b &#x202E;x");
        assert!(
            !html.chars().any(|c| c.is_control() && c != '\n'),
            "{html:?}"
        );
        assert!(
            cairn_core::display::is_printable(&html),
            "an override is left open: {html:?}"
        );
    }

    #[test]
    fn times_read_naturally() {
        let now = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(10_000_000);
        let at = |seconds_before: u64| Timestamp((10_000_000 - seconds_before) * 1_000);
        assert_eq!(ago(at(5), now), "just now");
        assert_eq!(ago(at(60), now), "1 minute ago");
        assert_eq!(ago(at(7_200), now), "2 hours ago");
        assert_eq!(ago(at(3 * 86_400), now), "3 days ago");
        assert_eq!(ago(at(9_000_000), now), "1970-01-12");
    }
}
