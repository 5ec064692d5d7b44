//! What each command does. Commands read the home, act on the store and print through
//! `render`; all of them report failures as errors for `main` to print.

use std::io::{IsTerminal, Read};

use anyhow::{Context, Result, bail};
use cairn_core::body::normalize_tag;
use cairn_core::{Draft, Entry, Kind, MemberId, OrgId, Space, Story, Timestamp};
use cairn_store::Filter;
use serde::Serialize;

use crate::cli::{Cli, Command, InitArgs, ListArgs, PublishArgs, StoryKind};
use crate::editor;
use crate::home::Home;
use crate::render::{self, EntryView};

pub fn run(cli: Cli) -> Result<()> {
    let home = Home::locate(cli.home)?;
    match cli.command {
        Command::Init(args) => init(&home, &args, cli.json),
        Command::Publish(args) => publish(&home, args, cli.json),
        Command::List(args) => list(&home, &args, cli.json),
        Command::Show { id } => show(&home, &id, cli.json),
        Command::Whoami => whoami(&home, cli.json),
    }
}

#[derive(Serialize)]
struct WhoamiView {
    org: String,
    org_name: String,
    member: String,
    member_name: String,
    home: String,
    entries: usize,
}

fn init(home: &Home, args: &InitArgs, json: bool) -> Result<()> {
    let org_name = args.org.trim();
    let member_name = match &args.name {
        Some(name) => name.trim().to_string(),
        None => format!("Member of {org_name}"),
    };
    let identity = home.init(org_name, &member_name)?;
    let claims = identity.credential.claims();
    if json {
        return print_json(&WhoamiView {
            org: claims.org.to_string(),
            org_name: claims.org_name.clone(),
            member: claims.member.to_string(),
            member_name: claims.member_name.clone(),
            home: home.root().display().to_string(),
            entries: 0,
        });
    }
    println!("Created a Cairn identity in {}", home.root().display());
    println!();
    println!("  organisation  {}", claims.org_name);
    println!("  org id        {}", claims.org);
    println!("  you           {}", claims.member_name);
    println!("  member id     {}", claims.member);
    println!();
    println!(
        "Back up {} : the keys in it cannot be recovered.",
        home.root().join("keys").display()
    );
    println!();
    println!("Next, try:");
    println!(
        "  cairn publish --kind learning --title \"What we learned\" --summary \"In plain words...\""
    );
    println!("  cairn list");
    println!("  cairn whoami");
    Ok(())
}

fn publish(home: &Home, args: PublishArgs, json: bool) -> Result<()> {
    let identity = home.load()?;
    let config = home.config()?;
    let story = story_from(args.clone_story_parts()?, &args)?;
    let space_names = if args.spaces.is_empty() {
        config.publish.default_spaces.clone()
    } else {
        args.spaces.clone()
    };
    let spaces = space_names
        .iter()
        .map(|name| Space::new(name))
        .collect::<Result<Vec<_>, _>>()?;
    let kind = match args.kind {
        StoryKind::Learning => Kind::LEARNING,
        StoryKind::Failure => Kind::FAILURE,
        StoryKind::Question => Kind::QUESTION,
    };
    let draft = Draft::story(kind, &story, spaces, Timestamp::now())?;

    let store = home.open_store()?;
    let author = identity.member_key.member_id();
    let (seq, prev) = match store.chain_head(&author)? {
        Some((seq, id)) => (seq + 1, Some(id)),
        None => (1, None),
    };
    let entry = Entry::sign(&identity.member_key, &identity.credential, seq, prev, draft)?;
    let inserted = store
        .insert(&entry.encode(), Timestamp::now())
        .context("the entry was not published")?;
    if json {
        return print_json(&EntryView::new(&entry));
    }
    println!("{}", inserted.id);
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
            (None, Some(path)) if path.as_os_str() == "-" => {
                let mut text = String::new();
                std::io::stdin().read_to_string(&mut text).context(
                    "could not read the body from standard input (it must be UTF-8 text)",
                )?;
                Some(text)
            }
            (None, Some(path)) => Some(std::fs::read_to_string(path).with_context(|| {
                format!(
                    "could not read the body from {} (it must be UTF-8 text)",
                    path.display()
                )
            })?),
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
    let mut tags = Vec::new();
    for raw in &args.tags {
        let tag = normalize_tag(raw)?;
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    let [context, tried, happened, learned, next] = sections;
    Ok(Story {
        title: args.title.trim().to_string(),
        summary: summary.trim().to_string(),
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

fn list(home: &Home, args: &ListArgs, json: bool) -> Result<()> {
    let store = home.open_store()?;
    let kind = match &args.kind {
        None => None,
        Some(name) => Some(Kind::from_name(name.trim()).with_context(|| {
            format!("{name:?} is not a kind; use learning, failure, question, reply, response, amend, retract, profile, membership or revoke")
        })?),
    };
    let tag = args.tag.as_deref().map(normalize_tag).transpose()?;
    let space = args
        .space
        .as_deref()
        .map(Space::new)
        .transpose()?
        .map(|space| space.to_string());
    // An id narrows the index scan; a name is matched on each entry's credential.
    let org_id = args
        .org
        .as_deref()
        .and_then(|org| org.parse::<OrgId>().ok());
    let author_id = args
        .author
        .as_deref()
        .and_then(|author| author.parse::<MemberId>().ok());
    let filter = Filter {
        kind,
        space,
        tag,
        org: org_id,
        author: author_id,
    };
    let org_name = args
        .org
        .as_deref()
        .filter(|_| org_id.is_none())
        .map(str::to_lowercase);
    let author_name = args
        .author
        .as_deref()
        .filter(|_| author_id.is_none())
        .map(str::to_lowercase);

    let mut entries = Vec::new();
    for entry in store.newest(&filter) {
        let entry = entry?;
        let claims = entry.credential().claims();
        if org_name
            .as_ref()
            .is_some_and(|name| claims.org_name.to_lowercase() != *name)
            || author_name
                .as_ref()
                .is_some_and(|name| claims.member_name.to_lowercase() != *name)
        {
            continue;
        }
        entries.push(entry);
        if entries.len() >= args.limit {
            break;
        }
    }
    if json {
        return print_json(&entries.iter().map(EntryView::new).collect::<Vec<_>>());
    }
    if entries.is_empty() {
        println!("No entries match. Publish one with `cairn publish`.");
    }
    for entry in &entries {
        println!("{}", render::list_item(entry));
    }
    Ok(())
}

fn show(home: &Home, prefix: &str, json: bool) -> Result<()> {
    let store = home.open_store()?;
    let id = store.resolve(prefix)?;
    let entry = store
        .get(&id)?
        .with_context(|| format!("entry {id} disappeared while it was being read; try again"))?;
    if json {
        return print_json(&EntryView::new(&entry));
    }
    print!("{}", render::entry_text(&entry));
    Ok(())
}

fn whoami(home: &Home, json: bool) -> Result<()> {
    let identity = home.load()?;
    let entries = home.open_store()?.count()?;
    let claims = identity.credential.claims();
    let view = WhoamiView {
        org: claims.org.to_string(),
        org_name: claims.org_name.clone(),
        member: claims.member.to_string(),
        member_name: claims.member_name.clone(),
        home: home.root().display().to_string(),
        entries,
    };
    if json {
        return print_json(&view);
    }
    println!("{}, member of {}", view.member_name, view.org_name);
    println!("  member id  {}", view.member);
    println!("  org id     {}", view.org);
    println!("  home       {}", view.home);
    println!("  entries    {} in the local store", view.entries);
    Ok(())
}

fn print_json<T: Serialize>(value: &T) -> Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
