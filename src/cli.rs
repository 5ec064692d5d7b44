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
    Publish(Box<PublishArgs>),
    /// List entries, newest first.
    #[command(after_help = EXIT_CODES)]
    List(ListArgs),
    /// Show one entry in full. The start of an id is enough, as in git.
    #[command(after_help = EXIT_CODES)]
    Show {
        /// The entry id, or enough of its first digits to be unique.
        id: String,
    },
    /// Reply to an entry; prints the reply's id.
    #[command(after_help = EXIT_CODES)]
    Reply {
        /// The entry to reply to (its id, or enough of its first digits to be unique).
        id: String,
        /// The reply (Markdown) [default: read from standard input]
        #[arg(long)]
        text: Option<String>,
        /// Reply as this member of your organisation (see `cairn member list`).
        #[arg(long = "as", value_name = "MEMBER")]
        as_member: Option<String>,
    },
    /// Respond to an entry with support rather than applause; prints the response's id.
    #[command(after_help = EXIT_CODES)]
    Respond {
        /// The entry to respond to.
        id: String,
        /// What your response says.
        #[arg(long = "type", value_enum)]
        kind: ResponseKindArg,
        /// A short note to go with it (plain text).
        #[arg(long)]
        note: Option<String>,
        /// Respond as this member of your organisation.
        #[arg(long = "as", value_name = "MEMBER")]
        as_member: Option<String>,
    },
    /// Publish a new revision of one of your own entries. Only the parts you give change;
    /// earlier versions stay visible as its history.
    #[command(after_help = EXIT_CODES)]
    Amend(Box<AmendArgs>),
    /// Withdraw one of your own entries: every node that holds it drops its text and keeps a
    /// signed note that you retracted it, with your reason.
    #[command(after_help = EXIT_CODES)]
    Retract {
        /// The entry to retract.
        id: String,
        /// Why, in a sentence readers will see in its place.
        #[arg(long)]
        reason: String,
        /// Retract as this member (it must be their entry).
        #[arg(long = "as", value_name = "MEMBER")]
        as_member: Option<String>,
    },
    /// Follow an organisation: it comes first in the directory, and its entries are accepted
    /// when this node follows only those it follows. Run it again to change the petname.
    #[command(after_help = EXIT_CODES)]
    Follow {
        /// The organisation's name, its id (the first 12 digits are enough), or your petname
        /// for it.
        org: String,
        /// Your own name for it, shown everywhere on this node instead of the name it gives
        /// itself ("" removes it).
        #[arg(long, value_name = "NAME")]
        petname: Option<String>,
    },
    /// List the organisations whose entries this node holds: the ones you follow first, then
    /// the most recently active, each with how this node knows it.
    #[command(after_help = EXIT_CODES)]
    Orgs {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Stop following an organisation.
    #[command(after_help = EXIT_CODES)]
    Unfollow { org: String },
    /// Block an organisation: remove its entries from this node and refuse them from now on.
    #[command(after_help = EXIT_CODES)]
    Block {
        org: String,
        /// Why, for your own records.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift a block: the organisation's entries are accepted, and fetched, again.
    #[command(after_help = EXIT_CODES)]
    Unblock { org: String },
    /// Show this node's policy, or set it: `open` accepts every organisation not blocked,
    /// `follow` only those followed.
    #[command(after_help = EXIT_CODES)]
    Policy {
        #[arg(value_enum)]
        mode: Option<PolicyMode>,
    },
    /// Say who your organisation (or you) are, for readers elsewhere; or show a profile.
    #[command(after_help = EXIT_CODES)]
    Profile {
        #[command(subcommand)]
        action: ProfileAction,
    },
    /// Manage your organisation's members: add, list, revoke.
    #[command(after_help = EXIT_CODES)]
    Member {
        #[command(subcommand)]
        action: MemberAction,
    },
    /// Your organisation's keys: its key event log, adopting one, rotating to the next key.
    #[command(after_help = EXIT_CODES)]
    Org {
        #[command(subcommand)]
        action: OrgAction,
    },
    /// Search entries by their words, e.g. cairn search "volunteer rota".
    #[command(after_help = EXIT_CODES)]
    Search {
        /// Words that must all appear; "quoted phrases", OR and -word also work.
        query: String,
        /// At most this many results.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Rebuild the search index from the store.
    #[command(after_help = EXIT_CODES)]
    Reindex,
    /// Open the node's web page: prints a one-time login link and opens it in a browser.
    #[command(after_help = EXIT_CODES)]
    Open {
        /// Only print the link; do not start a browser.
        #[arg(long)]
        print_only: bool,
    },
    /// Start three organisations' nodes on this machine with sample entries, and print a link
    /// to one node's web page. Ctrl-C stops them and removes everything they made.
    #[command(after_help = EXIT_CODES)]
    Demo,
    /// Show who you publish as.
    #[command(after_help = EXIT_CODES)]
    Whoami,
    /// Change the organisation's or your display name (for entries published from now on).
    #[command(after_help = EXIT_CODES)]
    Rename {
        /// The organisation's new name.
        #[arg(long, value_name = "NAME", required_unless_present = "name")]
        org: Option<String>,
        /// Your new name.
        #[arg(long, value_name = "MEMBER NAME")]
        name: Option<String>,
    },
    /// Run this organisation's node in the foreground: share entries with peers as they are
    /// written. Stop it with Ctrl-C.
    #[command(after_help = EXIT_CODES)]
    Node(NodeArgs),
    /// Show whether the node runs, its addresses, spaces, peers and entry count.
    #[command(after_help = EXIT_CODES)]
    Status,
    /// List connected and known peers.
    #[command(after_help = EXIT_CODES)]
    Peers,
    /// Manage peers.
    #[command(after_help = EXIT_CODES)]
    Peer {
        #[command(subcommand)]
        action: PeerAction,
    },
    /// Write an encrypted backup of this home's keys, configuration and node state to FILE
    /// (not the entries, which peers hold). Keep it somewhere safe, away from this computer.
    #[command(after_help = EXIT_CODES)]
    Backup {
        /// The backup file to create (never overwritten).
        file: PathBuf,
        /// Read the passphrase from the first line of this file instead of asking.
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
    },
    /// Restore a backup into a new home (--home DIR): the same organisation and members, a
    /// new node. Publishing waits until the node has caught up with a peer; `--confirm`
    /// (with the node stopped) lifts that wait if no other node ever held your entries.
    #[command(after_help = EXIT_CODES)]
    Restore {
        /// The backup file `cairn backup` wrote.
        #[arg(required_unless_present = "confirm")]
        file: Option<PathBuf>,
        #[arg(long, value_name = "FILE")]
        passphrase_file: Option<PathBuf>,
        /// Allow publishing now, without waiting for a sync.
        #[arg(long, conflicts_with = "file")]
        confirm: bool,
    },
    /// Print a ticket that lets another organisation's node connect to this one.
    #[command(after_help = EXIT_CODES)]
    Invite {
        /// How long the invitation lasts, e.g. 2h, 3days, 2weeks (at most a year).
        #[arg(long, value_name = "DURATION", default_value = "7days", value_parser = humantime::parse_duration)]
        expires: std::time::Duration,
        /// Only one node may accept it; it is refused to any other after that.
        #[arg(long)]
        single_use: bool,
    },
    /// Connect to the node in an invite ticket, remember it and join its spaces.
    #[command(after_help = EXIT_CODES)]
    Join {
        /// The ticket printed by `cairn invite` on the other node.
        ticket: String,
    },
    /// Catch up now: pull what connected peers hold and this node lacks, with a progress bar.
    #[command(after_help = EXIT_CODES)]
    Sync {
        /// Only this peer (its peer id) [default: every connected peer]
        #[arg(long, value_name = "PEER")]
        peer: Option<String>,
        /// Only this space [default: every joined space]
        #[arg(long, value_name = "SPACE")]
        space: Option<String>,
    },
    /// List the spaces this node joined.
    #[command(after_help = EXIT_CODES)]
    Spaces,
    /// Join or leave a space.
    #[command(after_help = EXIT_CODES)]
    Space {
        #[command(subcommand)]
        action: SpaceAction,
    },
}

#[derive(Debug, Args)]
pub struct AmendArgs {
    /// The entry to revise.
    pub id: String,
    #[arg(long)]
    pub title: Option<String>,
    #[arg(long)]
    pub summary: Option<String>,
    /// The body text (Markdown).
    #[arg(long)]
    pub body: Option<String>,
    #[arg(long)]
    pub context: Option<String>,
    #[arg(long)]
    pub tried: Option<String>,
    #[arg(long)]
    pub happened: Option<String>,
    #[arg(long)]
    pub learned: Option<String>,
    #[arg(long)]
    pub next: Option<String>,
    /// Replaces all tags (repeat for more).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Amend as this member (it must be their entry).
    #[arg(long = "as", value_name = "MEMBER")]
    pub as_member: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ProfileAction {
    /// Publish a profile: of your organisation with --org, otherwise of you (or --as MEMBER).
    Set {
        /// The organisation's profile (signed with the organisation's key).
        #[arg(long, conflicts_with = "as_member")]
        org: bool,
        #[arg(long = "as", value_name = "MEMBER")]
        as_member: Option<String>,
        /// A few plain-language sentences.
        #[arg(long, default_value = "")]
        about: String,
        /// An http(s) address.
        #[arg(long, default_value = "")]
        website: String,
        /// How to get in touch.
        #[arg(long, default_value = "")]
        contact: String,
    },
    /// Show the newest profile of an organisation or member (by 64-digit id) [default: your
    /// organisation's]
    Show { id: Option<String> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyMode {
    /// Accept every organisation that is not blocked.
    Open,
    /// Accept only organisations you follow (and your own).
    Follow,
}

#[derive(Debug, Subcommand)]
pub enum MemberAction {
    /// Create a key for a new member, vouched for by your organisation's key. They publish
    /// with `--as NAME`.
    Add {
        /// Their name, as readers will see it.
        name: String,
    },
    /// List the members added to this home, and whether each was revoked.
    List,
    /// Make a one-time link for a member to set a passphrase and log in to the web page from
    /// their own computer (needs a node serving the page with `--web`).
    Invite {
        /// The member, as added with `cairn member add`.
        name: String,
        /// Let them manage members, follows, blocks, policy and spaces on the page too.
        #[arg(long)]
        admin: bool,
        /// Let them publish on behalf of the organisation too.
        #[arg(long)]
        on_behalf: bool,
    },
    /// Remove a member: their entries so far stay (shown as by a former member); every later
    /// entry signed with their key is refused by every node.
    Revoke {
        name: String,
        /// Why, for the record (optional).
        #[arg(long)]
        reason: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OrgAction {
    /// Show the organisation's key log: how many events, the current key, whether the next
    /// key is still on this computer (it belongs offline).
    Keys,
    /// For an organisation created before key logs: start one. The id stays the same; a next
    /// key is written to keys/org.next.key for you to move offline. Stop the node first.
    Adopt,
    /// Make the committed next key current (if the current key was lost or may have leaked).
    /// Entries written so far stay valid; anything newer signed with the old key is refused
    /// everywhere. Stop the node first; start it again afterwards to publish the rotation.
    Rotate {
        /// The next-key file written by `cairn init`, `cairn org adopt` or the last rotation.
        #[arg(long, value_name = "FILE")]
        next_key: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum PeerAction {
    /// Connect to a peer and remember it, e.g. /ip4/192.0.2.7/tcp/7411/p2p/12D3KooW…
    Add {
        /// The peer's multiaddress.
        address: String,
    },
    /// Stop redialling a peer and remove it from the address book and the added peers.
    Forget {
        /// Its peer id, or one of its addresses (as `cairn peers` lists them).
        peer: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SpaceAction {
    /// Join a space, e.g. mental-health.
    Join { name: String },
    /// Leave a space.
    Leave { name: String },
}

#[derive(Debug, Default, Args)]
pub struct NodeArgs {
    /// Listen for peers on this address (repeat for more) [config: node.listen; default:
    /// TCP and QUIC on port 7411]
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<String>,
    /// Serve the local API on this address [config: node.api; default: 127.0.0.1:0]
    #[arg(long, value_name = "HOST:PORT")]
    pub api: Option<String>,
    /// Other nodes reach this one at this address: a public address or a port the router
    /// forwards (repeat for more). Needed for a relay to be used at once; otherwise peers
    /// find out by dialling back [config: node.external]
    #[arg(long, value_name = "MULTIADDR")]
    pub external: Vec<String>,
    /// Connect to this peer at start and whenever the link drops (repeat for more)
    /// [config: node.peers]
    #[arg(long = "peer", value_name = "MULTIADDR")]
    pub peers: Vec<String>,
    /// Do not look for peers on the local network [config: node.mdns = false]
    #[arg(long)]
    pub no_mdns: bool,
    /// Do not look for peers of peers with Kademlia: talk only to the peers given and those
    /// that connect [config: node.kademlia = false]
    #[arg(long)]
    pub no_kademlia: bool,
    /// Do not ask the router to forward the listening ports here (UPnP) [config: node.upnp
    /// = false]
    #[arg(long)]
    pub no_upnp: bool,
    /// Offer a relay to nodes that cannot be reached directly, within the limits of
    /// `[relay]` in the config [config: relay.offer = true]
    #[arg(long)]
    pub relay: bool,
    /// Allow the API on a non-loopback address [config: node.allow_remote_api]
    #[arg(long)]
    pub allow_remote_api: bool,
    /// Serve the web page to your organisation's network over HTTPS on this address, e.g.
    /// 192.168.1.20:8443, for members with accounts (`cairn member invite`) [config:
    /// web.address]
    #[arg(long, value_name = "ADDRESS")]
    pub web: Option<String>,
    /// Seconds between catch-up syncs with each peer [config: node.sync_interval_secs;
    /// default: 30]
    #[arg(long, value_name = "SECS")]
    pub sync_interval: Option<u64>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ResponseKindArg {
    /// Thank the author.
    ThankYou,
    /// This happened to us too.
    MeToo,
    /// It helped your organisation.
    ThisHelpedUs,
    /// You see it differently (kindly).
    Challenge,
    /// You are happy to talk about it.
    OfferToTalk,
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
    /// An entry this one builds on (repeat for more).
    #[arg(long, value_name = "ID")]
    pub builds_on: Vec<String>,
    /// An entry this one contradicts (repeat for more).
    #[arg(long, value_name = "ID")]
    pub contradicts: Vec<String>,
    /// An entry describing the same thing tried elsewhere (repeat for more).
    #[arg(long, value_name = "ID")]
    pub tried_too: Vec<String>,
    /// Publish as this member of your organisation (see `cairn member list`).
    #[arg(long = "as", value_name = "MEMBER")]
    pub as_member: Option<String>,
    /// Publish on behalf of the organisation: readers see the organisation, and the author
    /// is withheld (the organisation stays accountable).
    #[arg(long, conflicts_with = "as_member")]
    pub on_behalf: bool,
}

impl PublishArgs {
    /// The typed links as (link name, entry id or prefix).
    pub fn typed_links(&self) -> Vec<(&'static str, String)> {
        let named = |name: &'static str, ids: &[String]| {
            ids.iter()
                .map(move |id| (name, id.clone()))
                .collect::<Vec<_>>()
        };
        [
            named("builds-on", &self.builds_on),
            named("contradicts", &self.contradicts),
            named("tried-too", &self.tried_too),
        ]
        .concat()
    }
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
    /// Continue a listing cut at --limit: the cursor it printed (with --json, the `cursor`
    /// of its last entry).
    #[arg(long, value_name = "CURSOR")]
    pub after: Option<String>,
}
