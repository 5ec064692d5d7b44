//! Writing an entry in `$EDITOR`: the template of sections and reading it back.
//!
//! Each section starts with a `## ` line naming it. Lines starting with `#` before the first
//! section are instructions and are dropped; everything inside a section is kept as written,
//! Markdown headings included.

use std::io::Write as _;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// The sections, by heading, in template order.
pub const HEADINGS: [&str; 7] = [
    "Summary",
    "Context",
    "What we tried",
    "What happened",
    "What we learned",
    "What we would do differently",
    "More detail",
];

/// Text for each heading in [`HEADINGS`], in the same order.
pub type Sections = [String; 7];

pub fn template(title: &str, filled: &Sections) -> String {
    let mut text = format!(
        "# Writing: {title}\n\
         # Fill in what helps; leave a section empty to skip it. Markdown is fine.\n\
         # Lines starting with '#' above the first section are ignored.\n\
         # Save and close the editor to publish; empty everything to cancel.\n"
    );
    for (heading, body) in HEADINGS.iter().zip(filled) {
        text.push_str(&format!("\n## {heading}\n{body}\n"));
    }
    text
}

pub fn parse(text: &str) -> Sections {
    let mut sections: Sections = Default::default();
    let mut current: Option<usize> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix("## ")
            && let Some(index) = HEADINGS
                .iter()
                .position(|heading| heading.eq_ignore_ascii_case(name.trim()))
        {
            current = Some(index);
            continue;
        }
        match current {
            None => {}
            Some(index) => {
                sections[index].push_str(line);
                sections[index].push('\n');
            }
        }
    }
    sections.map(|section| section.trim().to_string())
}

/// Opens `$VISUAL` or `$EDITOR` (or `vi`) on the template and returns what was saved.
pub fn edit(title: &str, filled: &Sections) -> Result<Sections> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".to_string());
    let mut file = tempfile_in_tmp()?;
    file.1
        .write_all(template(title, filled).as_bytes())
        .context("could not write the draft file")?;
    drop(file.1);
    let mut words = editor.split_whitespace();
    let program = words
        .next()
        .context("$EDITOR is empty; set it to your editor, e.g. EDITOR=nano")?;
    let status = Command::new(program)
        .args(words)
        .arg(&file.0)
        .status()
        .with_context(|| {
            format!("could not start the editor {editor:?}; set $EDITOR to one you have")
        })?;
    let text = std::fs::read_to_string(&file.0).context("could not read the draft back");
    let _ = std::fs::remove_file(&file.0);
    if !status.success() {
        bail!("the editor exited with {status}; nothing was published");
    }
    Ok(parse(&text?))
}

fn tempfile_in_tmp() -> Result<(std::path::PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::env::temp_dir();
    for attempt in 0..100u32 {
        let path = dir.join(format!("cairn-entry-{}-{attempt}.md", std::process::id()));
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("could not create a draft in {}", dir.display()));
            }
        }
    }
    bail!("could not create a draft file in {}", dir.display())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_round_trips_and_keeps_markdown_headings() {
        let mut filled: Sections = Default::default();
        filled[0] = "Short summary".into();
        filled[6] = "# A markdown heading\n\nSome *text*.".into();
        let parsed = parse(&template("Title", &filled));
        assert_eq!(parsed, filled);
    }

    #[test]
    fn instructions_are_dropped_and_unknown_headings_kept() {
        let parsed = parse("# note\n## what we learned\nOne\n## Not a section\nTwo\n");
        assert_eq!(parsed[4], "One\n## Not a section\nTwo");
        assert!(parsed[0].is_empty());
    }
}
