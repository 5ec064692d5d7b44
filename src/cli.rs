//! Command-line arguments: the clap definitions and nothing else.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit status:
  0  success
  1  failure (the message on stderr says what failed and what to do)
  2  usage error (a bad flag or argument)";

/// Cairn: share what your organisation learned, and what failed, with your peers.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, after_help = EXIT_CODES, propagate_version = true)]
pub struct Cli {
    /// The Cairn home: identity, keys, configuration and store [default: the platform's data
    /// directory, e.g. ~/.local/share/cairn]
    #[arg(long, global = true, env = "CAIRN_HOME", value_name = "DIR")]
    pub home: Option<PathBuf>,

    /// Print machine-readable JSON (a stable interface) instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create this organisation's identity: an org key, your member key and a config file.
    #[command(after_help = EXIT_CODES)]
    Init(InitArgs),
    /// Publish a learning, failure or question entry; prints the new entry's id.
    #[command(after_help = EXIT_CODES)]
    Publish(PublishArgs),
    /// List entries, newest first.
    #[command(after_help = EXIT_CODES)]
    List(ListArgs),
    /// Show one entry in full. The start of an id is enough, as in git.
    #[command(after_help = EXIT_CODES)]
    Show {
        /// The entry id, or enough of its first digits to be unique.
        id: String,
    },
    /// Show who you publish as.
    #[command(after_help = EXIT_CODES)]
    Whoami,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Your organisation's name, as peers will see it.
    #[arg(long, value_name = "NAME")]
    pub org: String,
    /// Your own name, as readers will see it [default: "Member of ORG"]
    #[arg(long, value_name = "MEMBER NAME")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoryKind {
    /// Something that worked, or that you now understand better.
    Learning,
    /// Something that did not work, and what it taught you.
    Failure,
    /// Something you want to ask other organisations.
    Question,
}

#[derive(Debug, Args)]
pub struct PublishArgs {
    /// What kind of entry this is.
    #[arg(long, value_enum)]
    pub kind: StoryKind,
    /// A short title.
    #[arg(long)]
    pub title: String,
    /// A plain-language summary someone from another field can follow.
    #[arg(long)]
    pub summary: Option<String>,
    /// The body text (Markdown).
    #[arg(long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Read the body from a file, or from standard input with `-`.
    #[arg(long, value_name = "PATH")]
    pub body_file: Option<PathBuf>,
    /// The situation the work happened in.
    #[arg(long)]
    pub context: Option<String>,
    /// What you tried.
    #[arg(long)]
    pub tried: Option<String>,
    /// What happened.
    #[arg(long)]
    pub happened: Option<String>,
    /// What you learned.
    #[arg(long)]
    pub learned: Option<String>,
    /// What you would do differently next time.
    #[arg(long)]
    pub next: Option<String>,
    /// A tag (repeat for more), e.g. --tag volunteers --tag "peer support".
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// A space to publish to (repeat for more) [default: from config.toml, normally commons]
    #[arg(long = "space", value_name = "SPACE")]
    pub spaces: Vec<String>,
    /// The language the entry is written in, as a tag such as en, cy or pt-BR.
    #[arg(long, value_name = "TAG")]
    pub language: Option<String>,
    /// A link to related material (repeat for more).
    #[arg(long = "link", value_name = "URL")]
    pub links: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only entries of this kind (learning, failure, question, …).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only entries in this space.
    #[arg(long)]
    pub space: Option<String>,
    /// Only entries with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only entries from this organisation: its name or its id.
    #[arg(long, value_name = "ORG")]
    pub org: Option<String>,
    /// Only entries by this member: their name or their id.
    #[arg(long, value_name = "MEMBER")]
    pub author: Option<String>,
    /// At most this many entries.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
}
