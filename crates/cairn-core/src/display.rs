//! Text that came from the network, made safe to show. Entries are validated for form, not for
//! what their text does to a screen: a summary can carry terminal escape sequences, C1 controls
//! or right-to-left overrides. These functions are applied where text is shown (the terminal,
//! the web page, the feed), never at validation: rejecting such entries now would get honest
//! older peers that relay them blocked.
//!
//! - Controls are shown, not obeyed: C0 controls (other than newline and tab, which a caller
//!   may keep) and DEL become their Unicode control pictures (ESC shows as `␛`), and C1
//!   controls a visible `\u{85}`-style escape.
//! - Bidirectional text stays readable: embeddings, overrides and isolates are kept where they
//!   are balanced, so right-to-left writing shows as its author meant; one that closes nothing
//!   is shown escaped, and whatever is left open at the end of the field is closed there, so it
//!   cannot reorder what follows the field. [`isolated`] also wraps a field in a first-strong
//!   isolate, so a right-to-left field does not reorder the text around it.
//! - Names are compared by how they look: [`name_key`] maps names that a reader could take
//!   for one another (letter case, spacing, invisible characters, confusable letters from
//!   other scripts) to the same key, so two organisations that look alike are flagged.

use std::fmt::Write as _;

/// First strong isolate: the field's direction comes from its own first strong character.
const FSI: char = '\u{2068}';
/// Pop directional isolate: ends the isolate.
const PDI: char = '\u{2069}';
/// Pop directional formatting: ends an embedding or override.
const PDF: char = '\u{202C}';
/// The most embeddings, overrides and isolates kept open at once; deeper ones are shown
/// escaped (the Unicode algorithm itself stops at 125).
const MAX_DEPTH: usize = 64;

/// How a field may use line breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// Newlines and tabs are kept (bodies, replies).
    Keep,
    /// One line: a newline shows as `⏎` and a tab as a space (titles, names, list lines), so
    /// a field cannot forge the lines after it.
    One,
}

/// `text` with controls shown and bidirectional controls balanced, as the module describes.
pub fn printable(text: &str, lines: Lines) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    // Open embeddings and overrides (closed by PDF) and isolates (closed by PDI), innermost last.
    let mut open: Vec<char> = Vec::new();
    for c in text.chars() {
        match c {
            '\n' if lines == Lines::Keep => {
                // A paragraph break ends every embedding and isolate in the bidi algorithm;
                // closing them here keeps the output's meaning explicit.
                close_all(&mut open, &mut out);
                out.push('\n');
            }
            '\t' if lines == Lines::Keep => out.push('\t'),
            '\n' => out.push('⏎'),
            '\t' => out.push(' '),
            '\r' if lines == Lines::Keep => {}
            // C0 controls and DEL as their control pictures (U+2400 to U+241F, U+2421).
            '\u{0}'..='\u{1f}' => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('?')),
            '\u{7f}' => out.push('\u{2421}'),
            // C1 controls (U+0080 to U+009F) have no pictures: an escape, as Rust writes them.
            '\u{80}'..='\u{9f}' => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            // LRE, RLE, LRO, RLO open an embedding or override; LRI, RLI, FSI an isolate.
            '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2068}' if c != PDF => {
                if open.len() < MAX_DEPTH {
                    open.push(c);
                    out.push(c);
                } else {
                    escape(c, &mut out);
                }
            }
            PDF => {
                if open.last().is_some_and(|last| !is_isolate(*last)) {
                    open.pop();
                    out.push(c);
                } else {
                    escape(c, &mut out);
                }
            }
            PDI => {
                // A PDI closes the innermost isolate and every embedding opened inside it.
                if let Some(at) = open.iter().rposition(|opened| is_isolate(*opened)) {
                    while open.len() > at + 1 {
                        open.pop();
                        out.push(PDF);
                    }
                    open.pop();
                    out.push(c);
                } else {
                    escape(c, &mut out);
                }
            }
            // Marks that only fix the direction of one spot (LRM, RLM, ALM) are harmless.
            c => out.push(c),
        }
    }
    close_all(&mut open, &mut out);
    out
}

/// [`printable`] as one first-strong isolate, for a field shown among other text in a
/// terminal: it takes its direction from its own first strong character and cannot reorder
/// what is around it.
pub fn isolated(text: &str, lines: Lines) -> String {
    let inner = printable(text, lines);
    let mut out = String::with_capacity(inner.len() + 6);
    out.push(FSI);
    out.push_str(&inner);
    out.push(PDI);
    out
}

/// Whether `text` holds nothing a terminal would obey: no C0 control but newline and tab, no
/// DEL or C1 control, and its bidirectional controls balanced.
pub fn is_printable(text: &str) -> bool {
    printable(text, Lines::Keep) == text
}

/// A key under which names that look alike to a reader are equal: invisible characters
/// (controls, bidirectional and other format characters) dropped, runs of white space made
/// one space, letter case folded, and each character mapped to its prototype in Unicode's
/// confusables table (UTS #39 skeletons), so "Alpha Org", "ALPHA  org", "Аlpha Org" (with
/// a Cyrillic "А") and "Alpha Оrg" (a Greek "Ο") share a key. Only for comparing: never
/// shown.
pub fn name_key(name: &str) -> String {
    let visible: String = name
        .chars()
        .filter(|c| c.is_whitespace() || !(c.is_control() || is_format(*c)))
        .collect();
    let words = visible.split_whitespace().collect::<Vec<_>>().join(" ");
    // Upper case first: letters of other scripts that look like Latin ones mostly do so in
    // their capitals (Cyrillic "Т" and "т"), and the confusables table maps capitals. Then
    // lower case, mapped again: some look-alikes exist only there ("rn" and "m").
    let upper: String = unicode_security::skeleton(&words.to_uppercase()).collect();
    unicode_security::skeleton(&upper.to_lowercase()).collect()
}

/// Characters with no glyph of their own (Unicode's format characters that text in names
/// carries): soft hyphen, zero-width spaces and joiners, direction marks, embeddings,
/// overrides and isolates, invisible operators, the byte-order mark.
fn is_format(c: char) -> bool {
    matches!(
        c,
        '\u{AD}'
            | '\u{34F}'
            | '\u{61C}'
            | '\u{180E}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{FEFF}'
            | '\u{FE00}'..='\u{FE0F}'
    )
}

fn is_isolate(c: char) -> bool {
    matches!(c, '\u{2066}'..='\u{2068}')
}

fn close_all(open: &mut Vec<char>, out: &mut String) {
    while let Some(opened) = open.pop() {
        out.push(if is_isolate(opened) { PDI } else { PDF });
    }
}

fn escape(c: char, out: &mut String) {
    let _ = write!(out, "\\u{{{:x}}}", c as u32);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_shown_not_obeyed() {
        let hostile = "ok\x1b]0;pwned\x07 \x1b[2J\x1b]8;;http://evil\x1b\\link\u{9b}31m\x7f";
        let shown = printable(hostile, Lines::One);
        assert!(!shown.chars().any(|c| c.is_control()), "{shown:?}");
        assert!(shown.contains("␛]0;pwned␇"), "{shown:?}");
        assert!(shown.contains("\\u{9b}"), "{shown:?}");
        assert!(shown.ends_with('\u{2421}'));
    }

    #[test]
    fn one_line_fields_cannot_forge_lines() {
        let shown = printable("title\n  by Alice of Alpha Org\tx", Lines::One);
        assert_eq!(shown, "title⏎  by Alice of Alpha Org x");
        let kept = printable("line one\n\tline two\r\n", Lines::Keep);
        assert_eq!(kept, "line one\n\tline two\n");
    }

    #[test]
    fn right_to_left_text_is_kept_and_unbalanced_controls_are_closed() {
        // Arabic and Hebrew need nothing: they are ordinary characters.
        let arabic = "مرحبا بالعالم";
        assert_eq!(printable(arabic, Lines::One), arabic);
        // A balanced isolate inside a field stays.
        let balanced = "name \u{2067}עברית\u{2069} end";
        assert_eq!(printable(balanced, Lines::One), balanced);
        // An override left open is closed at the end of the field.
        assert_eq!(
            printable("txt\u{202E}gnp.exe", Lines::One),
            "txt\u{202E}gnp.exe\u{202C}"
        );
        // A closer that closes nothing is shown, not obeyed.
        assert_eq!(
            printable("a\u{2069}b\u{202C}", Lines::One),
            "a\\u{2069}b\\u{202c}"
        );
        // A PDI closes the embeddings opened inside its isolate.
        assert_eq!(
            printable("\u{2068}x\u{202B}y\u{2069}", Lines::One),
            "\u{2068}x\u{202B}y\u{202C}\u{2069}"
        );
        // A paragraph break closes what is open.
        assert_eq!(
            printable("\u{202E}a\nb", Lines::Keep),
            "\u{202E}a\u{202C}\nb"
        );
        let field = isolated("\u{202E}abc", Lines::One);
        assert_eq!(field, "\u{2068}\u{202E}abc\u{202C}\u{2069}");
        assert!(is_printable(&printable("\u{202E}\x1b", Lines::Keep)));
        assert!(!is_printable("\x1b[31m"));
    }

    #[test]
    fn names_that_look_alike_share_a_key() {
        let real = name_key("Alpha Org");
        for lookalike in [
            "alpha org",
            "  ALPHA   Org ",
            "\u{410}lpha Org",
            "Alpha\u{200B} Org",
            "\u{202E}Alpha Org",
            "A\u{FE0F}lpha\tOrg",
            "Alpha \u{39f}rg",
            "alpha \u{43e}rg",
            "ALPHA \u{41e}RG",
        ] {
            assert_eq!(name_key(lookalike), real, "{lookalike:?}");
        }
        assert_ne!(name_key("Alpha Org"), name_key("Alpha Orgs"));
        // Look-alikes that exist only in lower case.
        assert_eq!(name_key("Caim Trust"), name_key("Cairn Trust"));
        assert_ne!(name_key("Beta Org"), real);
        // Right-to-left names have keys of their own.
        assert_eq!(name_key("منظمة الأمل"), name_key(" منظمة  الأمل"));
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = "\u{202E}".repeat(1_000);
        let shown = printable(&deep, Lines::One);
        assert_eq!(shown.matches('\u{202E}').count(), MAX_DEPTH);
        assert_eq!(shown.matches('\u{202C}').count(), MAX_DEPTH);
    }
}
