//! The Atom feed of the newest stories, at `/feed.atom`. Feed readers cannot log in, so the
//! feed also opens with its own key (`?key=…`, shown in the page footer), which can only read
//! this feed: on loopback a key derived from the API token, on the organisation's network one
//! per member account, derived from that and the account, so it stops working when the
//! account is closed.

use std::fmt::Write as _;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::session::constant_time_eq;
use cairn_core::display::{Lines, printable};

use super::view::{iso, markdown};
use super::{Web, message, session_cookie, signed_in};

/// Entries in the feed.
const FEED_ENTRIES: usize = 50;
/// Pages of the listing read at most to fill the feed, past retracted entries.
const FEED_PAGES: usize = 20;

#[derive(Debug, Deserialize)]
pub struct FeedQuery {
    key: Option<String>,
}

/// The feed key for an API token: its own hash, so it reveals nothing about the token.
pub(crate) fn feed_key(token: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"cairn/feed-key/v1\0")
        .chain_update(token.as_bytes())
        .finalize();
    hex::encode(&digest[..16])
}

/// Member account `handle`'s feed key, from the node's.
pub(crate) fn member_feed_key(node_key: &str, handle: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"cairn/member-feed-key/v1\0")
        .chain_update(node_key.as_bytes())
        .chain_update(b"\0")
        .chain_update(handle.as_bytes())
        .finalize();
    hex::encode(&digest[..16])
}

/// Whether `key` opens the feed on this surface.
fn feed_key_works(web: &Web, key: &str) -> bool {
    match web.surface {
        super::Surface::Loopback { .. } => {
            constant_time_eq(key.as_bytes(), web.feed_key.as_bytes())
        }
        super::Surface::Network => web.accounts.list().iter().any(|account| {
            constant_time_eq(
                key.as_bytes(),
                member_feed_key(&web.feed_key, &account.handle).as_bytes(),
            )
        }),
    }
}

pub async fn feed(
    State(web): State<Web>,
    headers: HeaderMap,
    Query(query): Query<FeedQuery>,
) -> Response {
    let by_key = query.key.is_some_and(|key| feed_key_works(&web, &key));
    let by_session = session_cookie(&headers, &web.surface.cookie_name())
        .and_then(|id| signed_in(&web, &id))
        .is_some();
    if !by_key && !by_session {
        return message(
            StatusCode::UNAUTHORIZED,
            "Feed key needed",
            "Copy the feed link from the footer of the web page; the link changes when the node restarts.",
        );
    }
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let scheme = match web.surface {
        super::Surface::Loopback { .. } => "http",
        super::Surface::Network => "https",
    };
    let entries = web
        .shared
        .read(|service| {
            let mut query = cairn_api::ListQuery {
                limit: Some(FEED_ENTRIES),
                ..cairn_api::ListQuery::default()
            };
            let mut entries = Vec::with_capacity(FEED_ENTRIES);
            let mut notes = crate::service::Notes::default();
            for _ in 0..FEED_PAGES {
                let page = service.list(&query)?;
                notes.extend(page.notes);
                // A retracted entry has nothing left to show.
                entries.extend(
                    page.entries
                        .into_iter()
                        .filter(|entry| entry.body().is_some()),
                );
                match page.next {
                    Some(next) if entries.len() < FEED_ENTRIES => query.cursor = Some(next),
                    _ => break,
                }
            }
            entries.truncate(FEED_ENTRIES);
            Ok((entries, notes))
        })
        .await;
    let (entries, notes) = match entries {
        Ok(found) => found,
        Err(err) => {
            return message(
                StatusCode::INTERNAL_SERVER_ERROR,
                "The feed could not be read",
                &err.to_string(),
            );
        }
    };
    let claims = web.shared.credential().claims();
    let updated = entries.first().map_or_else(
        || "1970-01-01T00:00:00Z".into(),
        |e| iso(e.header().created),
    );
    let mut xml = String::with_capacity(4_096 + entries.len() * 2_048);
    xml.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n");
    xml.push_str("<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    let _ = writeln!(
        xml,
        "<title>Cairn: learning shared with {}</title>",
        escape(&claims.org_name)
    );
    let _ = writeln!(xml, "<id>urn:cairn:feed:{}</id>", claims.org);
    let _ = writeln!(xml, "<updated>{updated}</updated>");
    let _ = writeln!(xml, "<link href=\"{scheme}://{}/\"/>", escape(&host));
    for entry in &entries {
        // The newest revision's text, if the author revised it.
        let story = notes.story(entry).unwrap_or_default();
        let mut body = String::new();
        if !story.summary.is_empty() {
            let _ = write!(body, "<p>{}</p>", escape(&story.summary));
        }
        body.push_str(&markdown(&story.text));
        for (heading, text) in story.sections() {
            if !text.trim().is_empty() {
                let _ = write!(body, "<h2>{heading}</h2>{}", markdown(text));
            }
        }
        let _ = write!(
            xml,
            "<entry>\n<title>{kind}: {title}</title>\n<id>urn:cairn:entry:{id}</id>\n\
             <updated>{updated}</updated>\n<author><name>{who}</name></author>\n\
             <link href=\"{scheme}://{host}/entries/{id}\"/>\n<summary>{summary}</summary>\n\
             <content type=\"html\">{content}</content>\n",
            kind = entry.header().kind,
            title = escape(&story.title),
            id = entry.id(),
            updated = iso(entry.header().created),
            // "Ana Silva of Riverside Trust (followed)": how this node knows the organisation.
            who = escape(&notes.byline_with(entry, |name| printable(name, Lines::One))),
            host = escape(&host),
            summary = escape(&story.summary),
            content = escape(&body),
        );
        for tag in &story.tags {
            let _ = writeln!(xml, "<category term=\"{}\"/>", escape(tag));
        }
        xml.push_str("</entry>\n");
    }
    xml.push_str("</feed>\n");
    (
        [(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")],
        xml,
    )
        .into_response()
}

/// Text for the feed's XML: controls shown as pictures rather than dropped or obeyed (see
/// `cairn_core::display`), bidirectional controls balanced, then XML-escaped.
fn escape(text: &str) -> String {
    let shown = cairn_core::display::printable(text, cairn_core::display::Lines::Keep);
    let mut out = String::with_capacity(shown.len());
    for c in shown.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Not allowed in XML at all.
            c if c.is_control() && c != '\n' && c != '\t' => {}
            '\u{FFFE}' | '\u{FFFF}' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn feed_text_is_valid_xml_with_controls_shown() {
        let escaped = escape("\x1b]0;pwned\x07 <b>&\u{202E}\u{9b}");
        // XML 1.0 allows no C0 control but tab, newline and carriage return, and C1 controls
        // are discouraged; none is left, and the markup is escaped.
        assert!(
            !escaped
                .chars()
                .any(|c| c.is_control() && c != '\n' && c != '\t'),
            "{escaped:?}"
        );
        assert!(escaped.contains("␛]0;pwned␇ &lt;b&gt;&amp;"), "{escaped:?}");
        assert!(escaped.ends_with("\\u{9b}\u{202C}"), "{escaped:?}");
    }
}
