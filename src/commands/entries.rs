//! `publish`, `list`, `show`, `search` and `reindex`.

use std::io::IsTerminal;

use anyhow::{Context, Result, bail};
use cairn_api::{ListQuery, MAX_PAGE, Signing};
use cairn_core::body::normalize_tags;
use cairn_core::{Entry, Kind, RefKind, Story};
use cairn_node::service::{NewStory, Notes};

use super::print_json;
use crate::backend;
use crate::cli::{ListArgs, PublishArgs, StoryKind};
use crate::editor;
use crate::home::Home;
use crate::output::{say, say_raw};
use crate::render::{self, EntryView};

pub(super) fn publish(home: &Home, args: PublishArgs, json: bool) -> Result<()> {
    home.load()?;
    let story = story_from(args.clone_story_parts()?, &args)?;
    let kind = match args.kind {
        StoryKind::Learning => Kind::LEARNING,
        StoryKind::Failure => Kind::FAILURE,
        StoryKind::Question => Kind::QUESTION,
    };
    let mut links = Vec::new();
    for (name, target) in args.typed_links() {
        let kind = RefKind::from_name(name).context("typed link names are known")?;
        links.push((kind, target));
    }
    let new = NewStory {
        kind,
        story,
        // Empty: the joined spaces.
        spaces: args.spaces.clone(),
        links,
    };
    let signing = Signing {
        as_member: args.as_member.clone(),
        on_behalf: args.on_behalf,
    };
    let entry = backend::open(home)?.publish(new, signing)?;
    if json {
        return print_json(&EntryView::new(&entry));
    }
    say!("{}", entry.id());
    Ok(())
}

/// Body text and sections as given on the command line, before the editor may fill them.
struct StoryParts {
    summary: String,
    text: Option<String>,
    sections: [Option<String>; 5],
}

impl PublishArgs {
    fn clone_story_parts(&self) -> Result<StoryParts> {
        let text = match (&self.body, &self.body_file) {
            (Some(body), _) => Some(body.clone()),
            (None, Some(path)) if path.as_os_str() == "-" => Some(super::read_text_bounded(
                std::io::stdin(),
                "the body on standard input",
            )?),
            (None, Some(path)) => {
                let file = std::fs::File::open(path)
                    .with_context(|| format!("could not open the body file {}", path.display()))?;
                Some(super::read_text_bounded(
                    file,
                    &format!("the body file {}", path.display()),
                )?)
            }
            (None, None) => None,
        };
        Ok(StoryParts {
            summary: self.summary.clone().unwrap_or_default(),
            text,
            sections: [
                self.context.clone(),
                self.tried.clone(),
                self.happened.clone(),
                self.learned.clone(),
                self.next.clone(),
            ],
        })
    }
}

fn story_from(parts: StoryParts, args: &PublishArgs) -> Result<Story> {
    let no_content = parts.text.is_none() && parts.sections.iter().all(Option::is_none);
    let interactive = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    let (summary, text, sections) = if no_content && interactive {
        let mut filled: editor::Sections = Default::default();
        filled[0] = parts.summary.clone();
        let written = editor::edit(&args.title, &filled)?;
        if written.iter().all(String::is_empty) {
            bail!("the entry was left empty, so nothing was published");
        }
        let [summary, context, tried, happened, learned, next, text] = written;
        (summary, text, [context, tried, happened, learned, next])
    } else {
        (
            parts.summary,
            parts.text.unwrap_or_default(),
            parts.sections.map(Option::unwrap_or_default),
        )
    };
    let tags = normalize_tags(args.tags.iter().map(String::as_str))?;
    let [context, tried, happened, learned, next] = sections;
    // The service tidies whitespace, as for every other way of publishing.
    Ok(Story {
        title: args.title.clone(),
        summary,
        text,
        context,
        tried,
        happened,
        learned,
        next,
        tags,
        language: args.language.clone().unwrap_or_default(),
        links: args.links.clone(),
    })
}

/// Lists entries page by page until `--limit` is reached or nothing more matches, so a
/// listing answers the same with or without a node.
pub(super) fn list(home: &Home, args: &ListArgs, json: bool) -> Result<()> {
    let backend = backend::open(home)?;
    let mut query = ListQuery {
        kind: args.kind.clone(),
        space: args.space.clone(),
        tag: args.tag.clone(),
        org: args.org.clone(),
        author: args.author.clone(),
        limit: None,
        cursor: args.after.clone(),
    };
    let mut entries = Vec::new();
    let mut notes = Notes::default();
    let next = loop {
        query.limit = Some(args.limit.saturating_sub(entries.len()).min(MAX_PAGE));
        let page = backend.list(&query)?;
        entries.extend(page.entries);
        notes.extend(page.notes);
        match page.next {
            Some(next) if entries.len() < args.limit => query.cursor = Some(next),
            next => break next,
        }
    };
    print_entries(
        &entries,
        &notes,
        next.as_deref(),
        json,
        "No entries match. Publish one with `cairn publish`.",
    )
}

/// A list of entries as text (or JSON), with `when_empty` if there are none. `next`, for a
/// listing cut short, is where it continues.
pub(super) fn print_entries(
    entries: &[Entry],
    notes: &Notes,
    next: Option<&str>,
    json: bool,
    when_empty: &str,
) -> Result<()> {
    if json {
        let mut views: Vec<_> = entries
            .iter()
            .map(|entry| EntryView::noted(entry, notes))
            .collect();
        if let Some(last) = views.last_mut() {
            last.cursor = next.map(str::to_string);
        }
        return print_json(&views);
    }
    if entries.is_empty() {
        say!("{when_empty}");
    }
    for entry in entries {
        say!("{}", render::list_item(entry, notes));
    }
    if let Some(next) = next {
        // On standard error, so that a script reading the list sees entries only.
        eprintln!("More entries match; add `--after {next}` to the same command to see them.");
    }
    Ok(())
}

pub(super) fn show(home: &Home, prefix: &str, json: bool) -> Result<()> {
    let shown = backend::open(home)?.show(prefix)?;
    let notes = &shown.notes;
    if json {
        return print_json(&render::ShowView {
            entry: EntryView::noted(&shown.entry, notes),
            related: shown
                .related
                .iter()
                .map(|entry| EntryView::noted(entry, notes))
                .collect(),
        });
    }
    let thread = cairn_node::thread::Thread::gather(&shown.entry, shown.related.iter().cloned());
    say_raw!(
        "{}{}",
        render::entry_text(&shown.entry, notes),
        render::thread_text(&thread, notes)
    );
    Ok(())
}

pub(super) fn search(home: &Home, query: &str, limit: usize, json: bool) -> Result<()> {
    let found = backend::open(home)?.search(query, limit)?;
    print_entries(
        &found.entries,
        &found.notes,
        None,
        json,
        &format!("Nothing matches {query:?}. Try fewer or different words."),
    )
}

pub(super) fn reindex(home: &Home, json: bool) -> Result<()> {
    let entries = backend::open(home)?.reindex()?;
    if json {
        return print_json(&cairn_api::ReindexView { entries });
    }
    say!("Rebuilt the search index: {entries} entries.");
    Ok(())
}

/// Prints a new entry's id, or with `--json` the entry.
pub(super) fn print_entry(entry: &Entry, json: bool) -> Result<()> {
    if json {
        return print_json(&EntryView::new(entry));
    }
    say!("{}", entry.id());
    Ok(())
}
