//! `cairn demo`: three organisations' nodes on loopback, in temporary homes, seeded with a
//! dozen learning and failure entries across two spaces. It shows the entries spreading,
//! prints a login link to the first node's web page, and on Ctrl-C stops the nodes and
//! removes everything it made.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use cairn_core::{Kind, Story};
use cairn_node::Running;

use crate::cli::NodeArgs;
use crate::client::NodeClient;
use crate::home::Home;
use crate::node::{config, init_logging, shutdown_signal};

const SPACES: [&str; 2] = ["commons", "health-research"];
const ORGS: [(&str, &str); 3] = [
    ("Riverside Trust", "Ana Silva"),
    ("Northfield University Health Lab", "Dr Kwame Mensah"),
    ("Hillside Carers Network", "Bethan Jones"),
];
/// How long the entries may take to reach every node before the demo says so.
const SPREAD_DEADLINE: Duration = Duration::from_secs(60);

struct Seed {
    org: usize,
    kind: Kind,
    space: usize,
    title: &'static str,
    summary: &'static str,
    tried: &'static str,
    happened: &'static str,
    learned: &'static str,
    tags: &'static [&'static str],
}

const SEEDS: [Seed; 12] = [
    Seed {
        org: 0,
        kind: Kind::FAILURE,
        space: 0,
        title: "Our befriending rota collapsed every winter",
        summary: "Volunteers dropped out when evenings got dark, and the people they visited were left alone at the worst time of year.",
        tried: "We recruited more volunteers each autumn.",
        happened: "New volunteers left just as fast; travel after dark was the real problem.",
        learned: "Ask volunteers what stops them before recruiting more. Daytime and phone visits kept most of them.",
        tags: &["volunteers", "befriending"],
    },
    Seed {
        org: 0,
        kind: Kind::LEARNING,
        space: 0,
        title: "Paying people for their time changed who came",
        summary: "When we started paying community members for co-design sessions, younger people and carers came for the first time.",
        tried: "Vouchers at first, then cash paid on the day.",
        happened: "Attendance doubled and the group looked like our community.",
        learned: "Payment on the day matters more than the amount.",
        tags: &["co-production", "payment"],
    },
    Seed {
        org: 0,
        kind: Kind::QUESTION,
        space: 1,
        title: "How do you share results with people who took part?",
        summary: "We finish projects and the people who shaped them never hear what happened. What works for you?",
        tried: "",
        happened: "",
        learned: "",
        tags: &["feedback", "co-production"],
    },
    Seed {
        org: 0,
        kind: Kind::FAILURE,
        space: 1,
        title: "A survey in English only missed half our area",
        summary: "Our health needs survey reached mostly English speakers, so the plan it informed missed the people with the greatest need.",
        tried: "An online survey, promoted through our newsletter.",
        happened: "Few responses from the two largest language communities.",
        learned: "Co-write surveys with community researchers who speak the languages.",
        tags: &["surveys", "language"],
    },
    Seed {
        org: 1,
        kind: Kind::LEARNING,
        space: 1,
        title: "Patients rewrote our consent form and it got better",
        summary: "A patient panel cut our consent form from six pages to two. More people understood what they were agreeing to.",
        tried: "Three sessions with the panel, paid, with the ethics officer present.",
        happened: "The committee approved the shorter form first time.",
        learned: "Involve the ethics officer early; they became the form's champion.",
        tags: &["consent", "patient-involvement"],
    },
    Seed {
        org: 1,
        kind: Kind::FAILURE,
        space: 1,
        title: "We asked for involvement after the grant was written",
        summary: "We invited patients to shape a study that was already funded. They could only change small details, and some felt used.",
        tried: "An advisory group set up after the award.",
        happened: "Two members left, saying the real decisions had been made.",
        learned: "Budget for involvement before the application, and give the group real choices.",
        tags: &["co-production", "funding"],
    },
    Seed {
        org: 1,
        kind: Kind::LEARNING,
        space: 0,
        title: "Short plain-language summaries got our papers read",
        summary: "Adding a 150-word plain summary to each paper tripled how often community partners shared them.",
        tried: "Summaries written with two community readers.",
        happened: "Partners quoted them in their own funding bids.",
        learned: "Write the summary first; it clarifies the paper too.",
        tags: &["plain-language", "dissemination"],
    },
    Seed {
        org: 1,
        kind: Kind::QUESTION,
        space: 0,
        title: "How do you keep a partnership going between grants?",
        summary: "Our relationships with community groups fade when the money stops. Has anyone kept one alive without funding?",
        tried: "",
        happened: "",
        learned: "",
        tags: &["partnerships", "funding"],
    },
    Seed {
        org: 2,
        kind: Kind::FAILURE,
        space: 0,
        title: "Our online support group went quiet in a month",
        summary: "We moved our carers' group online to reach more people. Most stopped coming; they missed the tea and the chat before.",
        tried: "Weekly video calls at the old time.",
        happened: "Attendance fell from twelve to three.",
        learned: "Keep one in-person meeting a month; use the online ones for people who cannot travel.",
        tags: &["carers", "peer-support", "online"],
    },
    Seed {
        org: 2,
        kind: Kind::LEARNING,
        space: 0,
        title: "Carers trained as peer researchers found what we missed",
        summary: "Carers we trained to interview other carers heard about money worries our staff had never been told.",
        tried: "Six short training sessions and paid interview time.",
        happened: "The findings changed our advice service.",
        learned: "People tell their peers different things than they tell staff.",
        tags: &["peer-research", "carers"],
    },
    Seed {
        org: 2,
        kind: Kind::FAILURE,
        space: 1,
        title: "Our evaluation measured what the funder wanted, not what mattered",
        summary: "We reported hours of respite delivered. Carers told us what mattered was feeling less alone, which we never measured.",
        tried: "The funder's standard outcome form.",
        happened: "Good numbers; little learning.",
        learned: "Agree one outcome with carers and argue for it with the funder.",
        tags: &["evaluation", "carers"],
    },
    Seed {
        org: 2,
        kind: Kind::LEARNING,
        space: 1,
        title: "A shared glossary ended months of talking past each other",
        summary: "Researchers and carers used the same words to mean different things. A one-page glossary, written together, fixed it.",
        tried: "An hour at the start of the project to define ten words.",
        happened: "Fewer misunderstandings in every later meeting.",
        learned: "Agree on words before agreeing on plans.",
        tags: &["co-production", "language"],
    },
];

pub fn run() -> Result<()> {
    crate::node::limit_malloc_arenas();
    // Only warnings unless RUST_LOG says otherwise: the demo's own lines tell the story.
    init_logging(Some("warn"));
    let dirs: Vec<tempfile::TempDir> = (0..ORGS.len())
        .map(|_| tempfile::Builder::new().prefix("cairn-demo-").tempdir())
        .collect::<std::io::Result<_>>()
        .context("could not create the demo's temporary homes")?;
    let homes: Vec<Home> = dirs
        .iter()
        .map(|dir| Home::locate(Some(dir.path().to_path_buf())))
        .collect::<Result<_>>()?;
    for (home, (org, member)) in homes.iter().zip(ORGS) {
        home.init(org, member)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("could not start the async runtime")?;
    // Listening before the link is printed: whoever reads it may press Ctrl-C at once.
    let signals = shutdown_signal(&runtime);
    let nodes = runtime.block_on(start_and_seed(&homes))?;
    let login =
        NodeClient::require(&homes[0])?.post::<_, cairn_api::LoginView>("/api/login", &())?;
    println!();
    println!("Open {}'s web page (the link works once):", ORGS[0].0);
    println!();
    println!("  {}", login.url);
    println!();
    println!("Press Ctrl-C to stop the demo and remove its files.");
    runtime.block_on(async {
        signals.await;
        for node in nodes {
            if let Err(err) = node.stop().await {
                eprintln!("a demo node did not stop cleanly: {err}");
            }
        }
    });
    drop(dirs);
    println!("Stopped the demo and removed its files.");
    Ok(())
}

async fn start_and_seed(homes: &[Home]) -> Result<Vec<Running>> {
    let mut nodes: Vec<Running> = Vec::new();
    let mut first_address = None;
    for (index, home) in homes.iter().enumerate() {
        let args = NodeArgs {
            listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
            api: Some("127.0.0.1:0".into()),
            peers: first_address.iter().cloned().collect(),
            no_mdns: true,
            no_upnp: true,
            sync_interval: Some(5),
            ..NodeArgs::default()
        };
        let mut node_config = config(home, args)?;
        node_config.default_spaces = SPACES.iter().map(|space| (*space).to_string()).collect();
        let node = cairn_node::start(node_config)
            .await
            .with_context(|| format!("could not start the node of {}", ORGS[index].0))?;
        if first_address.is_none() {
            let status = node.shared.client().status().await?;
            let address = status
                .listen_addrs
                .first()
                .context("the first demo node has no listening address")?;
            first_address = Some(format!("{address}/p2p/{}", status.peer_id));
        }
        println!(
            "Started {} (web and API on {}, home {})",
            ORGS[index].0,
            node.api_address,
            home.root().display()
        );
        nodes.push(node);
    }
    for seed in &SEEDS {
        let story = Story {
            title: seed.title.into(),
            summary: seed.summary.into(),
            tried: seed.tried.into(),
            happened: seed.happened.into(),
            learned: seed.learned.into(),
            tags: seed.tags.iter().map(|tag| (*tag).to_string()).collect(),
            language: "en".into(),
            ..Story::default()
        };
        let new = cairn_node::service::NewStory {
            kind: seed.kind,
            story,
            spaces: vec![SPACES[seed.space].into()],
            links: Vec::new(),
        };
        nodes[seed.org]
            .shared
            .write(move |service| service.publish(new, &cairn_node::PublishAs::Me))
            .await
            .context("could not publish a demo entry")?;
    }
    println!("Each organisation published 4 entries. Watching them spread:");
    let started = Instant::now();
    let mut last_line = String::new();
    loop {
        let mut counts = Vec::new();
        for node in &nodes {
            counts.push(node.shared.read(|service| service.count()).await?);
        }
        let line = ORGS
            .iter()
            .zip(&counts)
            .map(|((org, _), count)| format!("{org}: {count}/{}", SEEDS.len()))
            .collect::<Vec<_>>()
            .join(" · ");
        if line != last_line {
            println!("  {line}");
            last_line = line;
        }
        if counts.iter().all(|count| *count >= SEEDS.len()) {
            println!(
                "Every node holds every entry ({:.1} s).",
                started.elapsed().as_secs_f64()
            );
            return Ok(nodes);
        }
        if started.elapsed() > SPREAD_DEADLINE {
            bail!(
                "the demo entries did not reach every node within a minute; is loopback networking blocked?"
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
