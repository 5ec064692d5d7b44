//! Names you can trust, with real nodes: a stranger that calls itself by a name that looks
//! like one the reader follows (a Cyrillic "А") is told apart everywhere a name is shown
//! (`list`, `show`, `--json`, `orgs`, the page, the feed); `--org NAME` with two matches exits
//! 1 listing both; a petname, set from the CLI or the page, is shown instead of a name; peers
//! are named by the organisation their binding names, with the same labels. The
//! page and the feed carry the stranger's hostile and right-to-left text and still parse
//! without an error (the HTML tokenizer's exact errors, a strict XML parser).
//!
//! The page half needs Chromium and chromedriver, as `tests/web.rs` does.

mod browser;
mod common;

use std::path::Path;

use fantoccini::{Client, Locator};
use serde_json::Value;

use browser::{
    Driver, base, browser, check_accessibility, click, cookies, http_get, http_get_with_cookies,
    login_url, tools, wait_for_text,
};
use common::{Node, cairn, json, ok, org_id, plain, wait_for};

const ARABIC: &str = "مرحبا بالعالم";
const HEBREW: &str = "שלום עולם";
const LOOKALIKE: &str = "\u{410}lpha Org";

#[test]
fn a_lookalike_is_told_apart_everywhere_and_the_page_and_feed_stay_valid() {
    let root = tempfile::tempdir().expect("temp dir");
    let real_home = Node::init(root.path(), "Alpha Org");
    let lookalike_home = root.path().join("lookalike");
    ok(
        &lookalike_home,
        &["init", "--org", LOOKALIKE, "--name", "Ana"],
    );
    let reader_home = Node::init(root.path(), "Reader");
    let real_org = org_id(&real_home);
    let lookalike_org = org_id(&lookalike_home);
    let (real_short, lookalike_short) = (&real_org[..12], &lookalike_org[..12]);

    let real_entry = ok(
        &real_home,
        &[
            "publish",
            "--kind",
            "learning",
            "--title",
            "Rota that worked",
        ],
    )
    .trim()
    .to_string();
    let lookalike_entry = ok(
        &lookalike_home,
        &[
            "publish",
            "--kind",
            "failure",
            "--title",
            "Urgent \u{202E}fdp.exe",
            "--summary",
            &format!("\x1b]0;pwned\x07\x1b[2J\u{9b}31m{ARABIC}"),
            "--body",
            &format!("\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\ <b>&amp;</b>\n{HEBREW}"),
        ],
    )
    .trim()
    .to_string();
    let real = Node::start(&real_home, &["--no-kademlia"]);
    let lookalike = Node::start(&lookalike_home, &["--no-kademlia"]);
    let reader = Node::start(
        &reader_home,
        &[
            "--no-kademlia",
            "--peer",
            &real.address(),
            "--peer",
            &lookalike.address(),
        ],
    );
    ok(&reader_home, &["follow", &real_org]);
    wait_for("both entries to reach the reader", || {
        reader.has(&real_entry) && reader.has(&lookalike_entry)
    });

    // The terminal: the same name, told apart by standing and id, and flagged on both.
    let listed = plain(&ok(&reader_home, &["list"]));
    assert!(
        listed.contains(&format!("Alpha Org (followed {real_short}, name shared)")),
        "{listed}"
    );
    assert!(
        listed.contains(&format!(
            "{LOOKALIKE} (stranger {lookalike_short}, name shared)"
        )),
        "{listed}"
    );
    let shown = plain(&ok(&reader_home, &["show", &lookalike_entry]));
    assert!(
        shown.contains(&format!(
            "by       Ana of {LOOKALIKE} (stranger {lookalike_short}"
        )),
        "{shown}"
    );
    let entries = json(&reader_home, &["list"]);
    let provenance = |id: &str| -> Value {
        entries
            .as_array()
            .expect("a list")
            .iter()
            .find(|entry| entry["id"] == id)
            .map(|entry| entry["provenance"].clone())
            .expect("the entry is listed")
    };
    assert_eq!(provenance(&real_entry)["standing"], "followed");
    assert_eq!(provenance(&lookalike_entry)["standing"], "stranger");
    assert_eq!(provenance(&lookalike_entry)["name_shared"], true);

    let ambiguous = cairn(&reader_home, &["list", "--org", "Alpha Org"]);
    assert_eq!(ambiguous.status.code(), Some(1));
    let error = String::from_utf8_lossy(&ambiguous.stderr);
    for short in [real_short, lookalike_short] {
        assert!(error.contains(short), "{error}");
    }
    let by_prefix = json(&reader_home, &["list", "--org", lookalike_short]);
    assert_eq!(by_prefix.as_array().map(Vec::len), Some(1));

    let orgs = plain(&ok(&reader_home, &["orgs"]));
    let first = orgs.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(real_short) && first.contains("(followed"),
        "the followed organisation comes first:\n{orgs}"
    );

    // Following by a name two organisations go by is refused as well; by id it works.
    let refused = cairn(
        &reader_home,
        &["follow", "alpha org", "--petname", "Partners"],
    );
    assert_eq!(refused.status.code(), Some(1));
    ok(
        &reader_home,
        &["follow", real_short, "--petname", "Partners"],
    );
    let listed = plain(&ok(&reader_home, &["list"]));
    assert!(
        listed.contains("Partners (your name, followed)"),
        "{listed}"
    );

    page_and_feed(
        root.path(),
        &reader,
        &lookalike_org,
        lookalike_short,
        &real_org,
    );
}

/// The reader's page and feed: both organisations told apart, a petname set from the page,
/// and everything parsing cleanly.
fn page_and_feed(
    root: &Path,
    reader: &Node,
    lookalike_org: &str,
    lookalike_short: &str,
    real_org: &str,
) {
    assert!(
        !html_errors("<p =x>a</p>").is_empty(),
        "the HTML checker finds errors"
    );
    let Some(tools) = tools() else { return };
    let driver = Driver::start(&tools.chromedriver, &root.join("chromedriver.log"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let login = login_url(reader);
    let site = base(&login);
    let feed_link = runtime.block_on(async {
        let browser = browser(&driver, &tools.chromium, &root.join("profile")).await;
        let axe = tools.axe.as_deref();
        browser.goto(&login).await.expect("log in");
        wait_for_text(
            &browser,
            ".provenance.stranger",
            &format!("stranger {lookalike_short}, name shared"),
        )
        .await;
        wait_for_text(&browser, ".provenance.followed", "your name, followed").await;
        wait_for_text(&browser, "article", ARABIC).await;
        check_accessibility(&browser, axe, "the timeline with a lookalike").await;
        for path in ["/", "/orgs", "/search?q=urgent"] {
            assert_valid_html(&browser, &site, path).await;
        }
        let entry_path = format!("/entries/{}", lookalike_entry_id(&browser).await);
        assert_valid_html(&browser, &site, &entry_path).await;
        browser
            .goto(&format!("{site}{entry_path}"))
            .await
            .expect("entry page");
        wait_for_text(&browser, "main", HEBREW).await;
        wait_for_text(&browser, ".provenance.stranger", lookalike_short).await;

        // A petname given on the organisations page replaces the one given from the CLI.
        browser.goto(&format!("{site}/orgs")).await.expect("orgs");
        let field = format!("form:has(input[name=org][value='{real_org}']) input[name=petname]");
        let input = browser
            .find(Locator::Css(&field))
            .await
            .expect("a petname field for the followed organisation");
        input.clear().await.expect("clear");
        input.send_keys("Alpha partners").await.expect("type");
        click(
            &browser,
            &format!("form:has(input[name=org][value='{real_org}']) button[value=follow]"),
        )
        .await;
        wait_for_text(&browser, ".directory li", "Alpha partners").await;
        wait_for_text(&browser, ".directory li", "calls itself Alpha Org").await;
        assert_eq!(
            browser
                .find_all(Locator::Css(&format!(
                    "form:has(input[name=org][value='{lookalike_org}']) button[value=follow]"
                )))
                .await
                .expect("find")
                .len(),
            1,
            "the stranger can be followed from the page"
        );
        check_accessibility(&browser, axe, "the organisations page").await;
        // The peers page names the organisation behind each peer.
        browser.goto(&format!("{site}/peers")).await.expect("peers");
        wait_for_text(&browser, "main li", "Alpha partners (your name, followed)").await;
        wait_for_text(&browser, "main li", &format!("stranger {lookalike_short}")).await;
        check_accessibility(&browser, axe, "the peers page").await;
        assert_valid_html(&browser, &site, "/peers").await;

        let link = browser
            .find(Locator::Css("footer a[href^='/feed.atom']"))
            .await
            .expect("a feed link")
            .attr("href")
            .await
            .expect("href")
            .expect("an address");
        browser.close().await.expect("browser closes");
        link
    });

    let response = http_get(&format!("{site}{feed_link}"));
    let (head, feed) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let authors = parse_feed(feed);
    assert!(
        authors
            .iter()
            .any(|name| name.contains(&format!("(stranger {lookalike_short}, name shared)"))),
        "{authors:?}"
    );
    assert!(
        authors
            .iter()
            .any(|name| name.contains("Alpha partners (your name, followed)")),
        "{authors:?}"
    );
    assert!(feed.contains(ARABIC), "right-to-left text is kept");
}

/// The id of the lookalike's entry, from the timeline's links.
async fn lookalike_entry_id(browser: &Client) -> String {
    let links = browser
        .find_all(Locator::Css("article.failure h2 a"))
        .await
        .expect("links");
    let href = links
        .first()
        .expect("the failure entry is on the timeline")
        .attr("href")
        .await
        .expect("href")
        .expect("an address");
    href.trim_start_matches("/entries/").to_string()
}

/// Fetches `path` with the browser's session and checks the HTML as served: no tokenizer
/// error, no raw control character, direction controls balanced.
async fn assert_valid_html(browser: &Client, site: &str, path: &str) {
    let response = http_get_with_cookies(&format!("{site}{path}"), &cookies(browser).await);
    let (head, html) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}");
    assert!(html.starts_with("<!doctype html>"), "{path}: {html}");
    let errors = html_errors(html);
    assert!(errors.is_empty(), "{path} has HTML errors: {errors:?}");
    assert!(
        !html
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "{path} carries a raw control character"
    );
    assert!(
        cairn_core::display::is_printable(html),
        "{path} leaves a direction control open"
    );
}

/// The HTML tokenizer's exact parse errors for `html`.
fn html_errors(html: &str) -> Vec<String> {
    use std::cell::RefCell;

    use html5ever::tokenizer::{
        BufferQueue, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
    };

    #[derive(Default)]
    struct Errors(RefCell<Vec<String>>);

    impl TokenSink for Errors {
        type Handle = ();

        fn process_token(&self, token: Token, line: u64) -> TokenSinkResult<()> {
            if let Token::ParseError(error) = token {
                self.0.borrow_mut().push(format!("line {line}: {error}"));
            }
            TokenSinkResult::Continue
        }
    }

    let tokenizer = Tokenizer::new(
        Errors::default(),
        TokenizerOpts {
            exact_errors: true,
            ..TokenizerOpts::default()
        },
    );
    let input = BufferQueue::default();
    input.push_back(html.into());
    let _ = tokenizer.feed(&input);
    tokenizer.end();
    tokenizer.sink.0.take()
}

/// Parses the feed with a strict XML parser (any error fails the test) and returns each
/// entry's author name.
fn parse_feed(feed: &str) -> Vec<String> {
    use xml::reader::{EventReader, XmlEvent};

    let mut authors = Vec::new();
    let mut path: Vec<String> = Vec::new();
    for event in EventReader::from_str(feed) {
        match event.unwrap_or_else(|err| panic!("the feed is not well-formed XML: {err}\n{feed}")) {
            XmlEvent::StartElement { name, .. } => path.push(name.local_name),
            XmlEvent::EndElement { .. } => {
                path.pop();
            }
            XmlEvent::Characters(text) if path.ends_with(&["author".into(), "name".into()]) => {
                authors.push(text);
            }
            _ => {}
        }
    }
    assert!(path.is_empty(), "the feed ends inside an element");
    authors
}
