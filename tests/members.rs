//! Members using the page from their own computers, with real processes on a small office
//! network of two namespaces: the office, where the organisation's node serves the page on
//! its LAN address over HTTPS (`--web`) and a partner organisation's node runs, and a laptop,
//! where headless Chromium runs (driven over WebDriver from a test thread moved into the
//! laptop's namespace).
//!
//! Shown: the certificate the page serves is the one whose fingerprint `cairn status` and the
//! invitation give (the browser is told to accept only that key); an invited member sets a
//! passphrase, logs in, writes an entry that the partner's node receives signed with the
//! member's own key, and cannot reach admin pages; revoking the member ends that session at
//! once; an admin account reaches the admin pages; repeated failed logins lock the laptop's
//! address out while the same account still logs in from another address. axe-core checks
//! every new page.
//!
//! Needs root (namespaces), Chromium and chromedriver (`.ci/run` installs them); skipped with
//! a message where they are missing, except under CI.

use std::os::fd::AsFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::Value;

mod browser;
mod common;

use browser::{
    Driver, browser_with, check_accessibility, click, fill, heading, tools, wait_for_text,
};
use common::netns::{NsNode, cairn, ip, run, skip, try_add_namespace};

const OFFICE_IP: &str = "10.231.0.1";
const LAPTOP_IP: &str = "10.231.0.2";
const PAGE_PORT: u16 = 8443;
const PROXY_PORT: u16 = 9443;
const DANA_PASSPHRASE: &str = "river stones in winter";
const ELI_PASSPHRASE: &str = "kettle on the third floor";

/// The office and the laptop, joined by one link; removed when dropped.
struct Office {
    office: String,
    laptop: String,
}

impl Office {
    /// The network for one test; `test` (one letter) tells the tests' namespaces apart.
    fn new(test: char) -> Result<Self, String> {
        let tag = format!("{}{test}", std::process::id());
        let net = Self {
            office: format!("cairn-office-{tag}"),
            laptop: format!("cairn-laptop-{tag}"),
        };
        try_add_namespace(&net.office)?;
        if let Err(err) = try_add_namespace(&net.laptop) {
            let _ = run("ip", &["netns", "del", &net.office]);
            return Err(err);
        }
        let (office_end, laptop_end) = (format!("cwo{tag}"), format!("cwl{tag}"));
        ip(&[
            "link",
            "add",
            &office_end,
            "type",
            "veth",
            "peer",
            "name",
            &laptop_end,
        ]);
        for (ns, end, address) in [
            (&net.office, &office_end, OFFICE_IP),
            (&net.laptop, &laptop_end, LAPTOP_IP),
        ] {
            ip(&["link", "set", end, "netns", ns]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                end,
            ]);
            ip(&["-n", ns, "link", "set", end, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        Ok(net)
    }
}

impl Drop for Office {
    fn drop(&mut self) {
        for ns in [&self.office, &self.laptop] {
            let _ = run("ip", &["netns", "del", ns]);
        }
    }
}

/// Moves the calling thread (and the processes it starts) into namespace `ns`.
fn enter_namespace(ns: &str) {
    let file = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("namespace file");
    rustix::thread::move_into_link_name_space(
        file.as_fd(),
        Some(rustix::thread::LinkNameSpaceType::Network),
    )
    .expect("setns into the namespace");
}

/// Runs `work` on a thread inside namespace `ns`, with a runtime of its own; a panic there
/// fails the test.
fn in_namespace<T: Send + 'static>(
    ns: &str,
    work: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
) -> T {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        enter_namespace(&ns);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(work())
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

#[test]
fn members_log_in_from_their_own_computers_with_roles_and_revocation() {
    let test = "members_log_in_from_their_own_computers_with_roles_and_revocation";
    let Some(tools) = tools() else { return };
    let net = match Office::new('b') {
        Ok(net) => net,
        Err(reason) => return skip(test, &reason),
    };
    let root = tempfile::tempdir().expect("temp dir");
    let a_home = root.path().join("riverside");
    let b_home = root.path().join("hillside");
    common::ok(
        &a_home,
        &["init", "--org", "Riverside Trust", "--name", "Ana Silva"],
    );
    common::ok(&b_home, &["init", "--org", "Hillside Carers"]);
    let web = format!("{OFFICE_IP}:{PAGE_PORT}");
    let a = start(&net.office, &a_home, "7411", &["--web", &web]);
    let a_peer = a.status().expect("status")["peer_id"]
        .as_str()
        .expect("peer id")
        .to_string();
    let b = start(
        &net.office,
        &b_home,
        "7412",
        &["--peer", &format!("/ip4/127.0.0.1/tcp/7411/p2p/{a_peer}")],
    );
    common::wait_for("the partner's node to connect", || {
        b.status().is_some_and(|status| {
            status["connected_peers"]
                .as_array()
                .is_some_and(|peers| !peers.is_empty())
        })
    });

    // The page is named, with its certificate's fingerprint, in the status.
    let status = a.status().expect("status");
    let page_url = status["web"]["url"].as_str().expect("page url").to_string();
    assert_eq!(page_url, format!("https://{web}"));
    let fingerprint = status["web"]["fingerprint"]
        .as_str()
        .expect("fingerprint")
        .to_string();
    a.ok(&["member", "add", "Dana Okafor"]);
    a.ok(&["member", "add", "Eli Brennan"]);
    let dana_id = member_id(&a, "Dana Okafor");
    let dana = invite(&a, &["Dana Okafor"]);
    assert_eq!(dana["fingerprint"], fingerprint.as_str());
    assert!(
        dana["url"]
            .as_str()
            .is_some_and(|url| url.starts_with(&format!("{page_url}/welcome?code="))),
        "{dana}"
    );
    let eli = invite(&a, &["Eli Brennan", "--admin"]);

    // What the laptop sees: the certificate served is the one the fingerprint names.
    let served = in_namespace(&net.laptop, move || {
        Box::pin(async move { served_certificate(OFFICE_IP, PAGE_PORT).await })
    });
    assert_eq!(
        sha256_colons(&served),
        fingerprint,
        "the certificate served"
    );
    // The browser accepts that key and no other.
    let pin = spki_pin(&served);

    let (laptop, office) = (net.laptop.clone(), net.office.clone());
    let (a_home_for_browser, b_home_for_browser) = (a_home.clone(), b_home.clone());
    let profile = root.path().join("profile");
    let driver_log = root.path().join("chromedriver.log");
    let chromium = tools.chromium.clone();
    let chromedriver = tools.chromedriver.clone();
    let axe = tools.axe.clone();
    let fingerprint_shown = fingerprint.clone();
    in_namespace(&laptop, move || {
        Box::pin(async move {
            let driver = Driver::start(&chromedriver, &driver_log);
            let browser = browser_with(
                &driver,
                &chromium,
                &profile,
                &[format!("--ignore-certificate-errors-spki-list={pin}")],
            )
            .await;
            let axe = axe.as_deref();
            let office = office.as_str();

            // Dana follows her invitation and chooses a passphrase.
            browser
                .goto(dana["url"].as_str().expect("url"))
                .await
                .expect("goto invitation");
            assert_eq!(heading(&browser).await, "Welcome, Dana Okafor");
            assert_eq!(
                text(&browser, "code.fingerprint").await,
                fingerprint_shown,
                "the fingerprint on the page is the certificate's"
            );
            check_accessibility(&browser, axe, "the welcome page").await;
            fill(&browser, "#passphrase", DANA_PASSPHRASE).await;
            fill(&browser, "#again", DANA_PASSPHRASE).await;
            click(&browser, "form button[type=submit]").await;
            wait_for_text(&browser, "h1", "What organisations are learning").await;
            assert!(!nav_labels(&browser).await.contains(&"Members".to_string()));

            // She cannot reach the admin pages.
            for path in ["/members", "/settings"] {
                browser
                    .goto(&format!("{page_url}{path}"))
                    .await
                    .expect("goto");
                assert_eq!(heading(&browser).await, "Only admins can do this", "{path}");
            }

            // She writes a failure entry, signed with her own key.
            browser
                .goto(&format!("{page_url}/compose"))
                .await
                .expect("goto compose");
            assert!(
                browser
                    .find(Locator::Css("#as-organisation"))
                    .await
                    .is_err(),
                "she may not publish for the organisation"
            );
            click(&browser, "#kind-failure").await;
            let title = "Our consent leaflet confused everyone";
            fill(&browser, "#title", title).await;
            fill(&browser, "#summary", "We rewrote it with a patient panel.").await;
            click(&browser, "form.compose button[type=submit]").await;
            wait_for_text(&browser, "h1", title).await;
            let url = browser.current_url().await.expect("url").to_string();
            let id = url
                .rsplit('/')
                .next()
                .expect("entry id in the url")
                .to_string();
            assert_eq!(id.len(), 64, "{url}");
            // Her name is on the entry, not the node's own member's.
            wait_for_text(
                &browser,
                "main p.meta",
                "Shared by Dana Okafor of Riverside Trust",
            )
            .await;

            // The partner organisation's node receives it, signed by her.
            common::wait_for("the partner to receive Dana's entry", || {
                let output = cairn(office, &b_home_for_browser, &["--json", "show", &id]);
                serde_json::from_slice::<Value>(&output.stdout).is_ok_and(|entry| {
                    entry["author"] == dana_id.as_str() && entry["author_name"] == "Dana Okafor"
                })
            });

            // Revoking her ends the session she is using, at once.
            let revoked = cairn(
                office,
                &a_home_for_browser,
                &[
                    "member",
                    "revoke",
                    "Dana Okafor",
                    "--reason",
                    "left the trust",
                ],
            );
            assert!(revoked.status.success(), "{revoked:?}");
            browser.goto(&format!("{page_url}/")).await.expect("goto");
            assert_eq!(heading(&browser).await, "Log in to Cairn");
            log_in(&browser, "Dana Okafor", DANA_PASSPHRASE).await;
            // A revoked member cannot log in again.
            wait_for_text(&browser, "[role=alert]", "do not match").await;
            check_accessibility(&browser, axe, "the login page with an error").await;

            // Eli, an admin, reaches the admin pages.
            browser
                .goto(eli["url"].as_str().expect("url"))
                .await
                .expect("goto invitation");
            fill(&browser, "#passphrase", ELI_PASSPHRASE).await;
            fill(&browser, "#again", ELI_PASSPHRASE).await;
            click(&browser, "form button[type=submit]").await;
            wait_for_text(&browser, "h1", "What organisations are learning").await;
            assert!(nav_labels(&browser).await.contains(&"Members".to_string()));
            browser
                .goto(&format!("{page_url}/members"))
                .await
                .expect("goto members");
            assert_eq!(heading(&browser).await, "Members");
            let listing = text(&browser, "table.members").await;
            assert!(listing.contains("revoked: cannot log in"), "{listing}");
            assert!(listing.contains("admin account"), "{listing}");
            check_accessibility(&browser, axe, "the members page").await;
            // He adds a member and invites them from the page.
            fill(&browser, "#add-name", "Femi Adeyemi").await;
            click(&browser, "form[action='/members/add'] button").await;
            wait_for_text(&browser, "[role=status]", "Added Femi Adeyemi").await;
            browser
                .find(Locator::Css("#invite-name"))
                .await
                .expect("member choice")
                .select_by_value("femi-adeyemi")
                .await
                .expect("Femi can be chosen");
            click(&browser, "form[action='/members/invite'] button").await;
            wait_for_text(
                &browser,
                "#invitation-heading",
                "Invitation for Femi Adeyemi",
            )
            .await;
            let link = text(&browser, "code.invitation-link").await;
            assert!(
                link.starts_with(&format!("{page_url}/welcome?code=")),
                "{link}"
            );
            assert_eq!(text(&browser, "code.fingerprint").await, fingerprint_shown);
            check_accessibility(&browser, axe, "the members page with an invitation").await;
            browser
                .goto(&format!("{page_url}/settings"))
                .await
                .expect("goto settings");
            assert_eq!(heading(&browser).await, "Settings");
            check_accessibility(&browser, axe, "the settings page").await;
            // He joins a space for the whole node.
            fill(&browser, "#join-space", "health-research").await;
            click(
                &browser,
                "form[action='/settings/spaces'] button[value=join]",
            )
            .await;
            wait_for_text(&browser, "[role=status]", "Joined health-research").await;
            let status = cairn(office, &a_home_for_browser, &["--json", "status"]);
            let status: Value = serde_json::from_slice(&status.stdout).expect("status JSON");
            assert!(
                status["spaces"]
                    .as_array()
                    .is_some_and(|spaces| spaces.iter().any(|space| space == "health-research")),
                "{status}"
            );
            click(&browser, "footer button[type=submit]").await;
            wait_for_text(&browser, "h1", "Logged out").await;

            // Guessing from the laptop locks the laptop out, even with the right passphrase:
            // five failures (Dana's refused login was the first) lock an address out.
            for _ in 0..4 {
                browser
                    .goto(&format!("{page_url}/login"))
                    .await
                    .expect("goto login");
                log_in(&browser, "Eli Brennan", "not the passphrase at all").await;
                wait_for_text(&browser, "[role=alert]", "do not match").await;
            }
            browser
                .goto(&format!("{page_url}/login"))
                .await
                .expect("goto login");
            log_in(&browser, "Eli Brennan", ELI_PASSPHRASE).await;
            wait_for_text(&browser, "[role=alert]", "Too many failed logins").await;
            browser.close().await.expect("browser closes");
        })
    });

    // Eli still logs in from another address (the office's).
    let (status_line, cookie) = in_namespace(&net.office, move || {
        Box::pin(async move {
            let body = format!(
                "name=Eli+Brennan&passphrase={}",
                ELI_PASSPHRASE.replace(' ', "+")
            );
            https_request(OFFICE_IP, PAGE_PORT, "POST", "/login", &body, &[]).await
        })
    });
    assert!(status_line.contains("303"), "{status_line}");
    assert!(cookie.contains("__Host-cairn_session="), "{cookie}");
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    drop((a, b));
}

#[test]
fn behind_a_reverse_proxy_the_page_sees_each_members_own_address() {
    let test = "behind_a_reverse_proxy_the_page_sees_each_members_own_address";
    if std::process::Command::new("nginx")
        .arg("-v")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run {test}: install nginx (nginx-light)"
        );
        eprintln!("SKIPPED {test}: nginx is not installed (apt-get install nginx-light)");
        return;
    }
    let net = match Office::new('p') {
        Ok(net) => net,
        Err(reason) => return skip(test, &reason),
    };
    let root = tempfile::tempdir().expect("temp dir");
    let home = root.path().join("riverside");
    common::ok(&home, &["init", "--org", "Riverside Trust"]);
    let public_url = format!("https://{OFFICE_IP}:{PROXY_PORT}");
    let config = std::fs::read_to_string(home.join("config.toml")).expect("config");
    assert!(config.contains("\n[web]\n"), "init writes a [web] section");
    let config = config.replacen(
        "\n[web]\n",
        &format!("\n[web]\naddress = \"127.0.0.1:{PAGE_PORT}\"\nproxy_url = \"{public_url}\"\n"),
        1,
    );
    std::fs::write(home.join("config.toml"), config).expect("config written");
    let node = start(&net.office, &home, "7411", &[]);
    let status = node.status().expect("status");
    assert_eq!(status["web"]["url"], public_url.as_str());
    assert!(
        status["web"]["fingerprint"].is_null(),
        "the proxy's certificate"
    );
    let _proxy = Nginx::start(&net.office, root.path());
    node.ok(&["member", "add", "Dana Okafor"]);
    let invitation = invite(&node, &["Dana Okafor"]);
    let url = invitation["url"].as_str().expect("url").to_string();
    let code = url
        .strip_prefix(&format!("{public_url}/welcome?code="))
        .unwrap_or_else(|| panic!("the invitation names the proxy's address: {url}"))
        .to_string();

    let (welcome, accepted, forbidden, guesses, locked) = in_namespace(&net.laptop, move || {
        Box::pin(async move {
            let request = |method: &'static str, path: String, body: String, spoof: String| async move {
                let headers = [spoof.as_str()];
                let headers: &[&str] = if spoof.is_empty() { &[] } else { &headers };
                https_request(OFFICE_IP, PROXY_PORT, method, &path, &body, headers).await
            };
            let welcome = request(
                "GET",
                format!("/welcome?code={code}"),
                String::new(),
                String::new(),
            )
            .await;
            let form = format!(
                "code={code}&passphrase=river+stones+in+winter&again=river+stones+in+winter"
            );
            let accepted = request("POST", "/welcome".into(), form, String::new()).await;
            // A member's session does not open admin pages or forms.
            let cookie = accepted
                .1
                .split(';')
                .next()
                .and_then(|pair| pair.split_once(": "))
                .map(|(_, pair)| format!("Cookie: {pair}"))
                .unwrap_or_default();
            let mut forbidden = Vec::new();
            for (method, path) in [
                ("GET", "/members"),
                ("POST", "/settings/policy"),
                ("POST", "/members/invite"),
            ] {
                let (status, _) =
                    request(method, path.into(), "action=open".into(), cookie.clone()).await;
                forbidden.push(format!("{method} {path}: {status}"));
            }
            let (home_page, _) = request("GET", "/".into(), String::new(), cookie.clone()).await;
            forbidden.push(format!("GET /: {home_page}"));
            // Each guess claims another client address; the proxy adds the real one last.
            let mut guesses = Vec::new();
            for n in 0..5 {
                let (status, _) = request(
                    "POST",
                    "/login".into(),
                    "name=Dana+Okafor&passphrase=not+the+passphrase+at+all".into(),
                    format!("X-Forwarded-For: 192.0.2.{n}"),
                )
                .await;
                guesses.push(status);
            }
            let locked = request(
                "POST",
                "/login".into(),
                "name=Dana+Okafor&passphrase=river+stones+in+winter".into(),
                "X-Forwarded-For: 192.0.2.99".into(),
            )
            .await;
            (welcome, accepted, forbidden, guesses, locked)
        })
    });
    assert!(welcome.0.contains("200"), "{welcome:?}");
    assert!(accepted.0.contains("303"), "{accepted:?}");
    assert!(
        accepted.1.contains("__Host-cairn_session=") && accepted.1.contains("Secure"),
        "{accepted:?}"
    );
    let (admin_only, member_page) = forbidden.split_at(3);
    assert!(
        admin_only.iter().all(|line| line.contains(" 403 ")),
        "{forbidden:?}"
    );
    assert!(
        member_page[0].contains(" 200 "),
        "the session works: {forbidden:?}"
    );
    for guess in &guesses {
        assert!(guess.contains("401"), "{guesses:?}");
    }
    assert!(
        locked.0.contains("429"),
        "the laptop is locked out: {locked:?}"
    );
    // The office's own address is not.
    let from_office = in_namespace(&net.office, move || {
        Box::pin(async move {
            https_request(
                OFFICE_IP,
                PROXY_PORT,
                "POST",
                "/login",
                "name=Dana+Okafor&passphrase=river+stones+in+winter",
                &[],
            )
            .await
        })
    });
    assert!(from_office.0.contains("303"), "{from_office:?}");
    // Nobody reaches the page but through the proxy: it listens on loopback only.
    let direct = in_namespace(&net.laptop, move || {
        Box::pin(async move {
            tokio::net::TcpStream::connect((OFFICE_IP, PAGE_PORT))
                .await
                .is_ok()
        })
    });
    assert!(!direct, "the page is not reachable around the proxy");

    // An invitation still open when the member is revoked with the node stopped opens
    // nothing once the node is back.
    let again = invite(&node, &["Dana Okafor"]);
    let path = again["url"]
        .as_str()
        .and_then(|url| url.strip_prefix(&public_url))
        .expect("an invitation on the proxy's address")
        .to_string();
    let mut node = node;
    node.kill();
    let revoked = cairn(&net.office, &home, &["member", "revoke", "Dana Okafor"]);
    assert!(revoked.status.success(), "{revoked:?}");
    let _node = start(&net.office, &home, "7411", &[]);
    let reopened = in_namespace(&net.laptop, move || {
        Box::pin(async move { https_request(OFFICE_IP, PROXY_PORT, "GET", &path, "", &[]).await })
    });
    assert!(reopened.0.contains("401"), "{reopened:?}");
}

/// nginx in a namespace as the page's reverse proxy, with the configuration
/// docs/operating.md gives; stopped when dropped.
struct Nginx {
    child: std::process::Child,
}

impl Nginx {
    fn start(ns: &str, dir: &Path) -> Self {
        let made = rcgen::generate_simple_self_signed(vec![OFFICE_IP.to_string()])
            .expect("a certificate for the proxy");
        std::fs::write(dir.join("proxy.pem"), made.cert.pem()).expect("cert");
        std::fs::write(dir.join("proxy.key"), made.key_pair.serialize_pem()).expect("key");
        let d = dir.display();
        let config = format!(
            "user root;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/nginx.log;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               server {{\n    listen {OFFICE_IP}:{PROXY_PORT} ssl;\n\
                 ssl_certificate {d}/proxy.pem;\n    ssl_certificate_key {d}/proxy.key;\n\
                 location / {{\n      proxy_pass http://127.0.0.1:{PAGE_PORT};\n\
                   proxy_set_header Host $http_host;\n\
                   proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                   proxy_set_header X-Forwarded-Proto https;\n    }}\n  }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), config).expect("nginx config");
        let conf = dir.join("nginx.conf");
        let child = std::process::Command::new("ip")
            .args(["netns", "exec", ns, "nginx", "-c"])
            .arg(&conf)
            .args(["-g", "daemon off;"])
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("nginx starts");
        let ns = ns.to_string();
        common::wait_for("nginx to listen", || proxy_listening(&ns));
        Self { child }
    }
}

/// Whether nginx answers on the proxy port, probed from inside `ns`.
fn proxy_listening(ns: &str) -> bool {
    run(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "bash",
            "-c",
            &format!("exec 3<>/dev/tcp/{OFFICE_IP}/{PROXY_PORT}"),
        ],
    )
    .status
    .success()
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM, so that the master stops its workers too (SIGKILL would orphan them).
        let _ = run("kill", &["-TERM", &self.child.id().to_string()]);
        let _ = self.child.wait();
    }
}

fn start(ns: &str, home: &Path, port: &str, extra: &[&str]) -> NsNode {
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let mut args = vec![
        "--listen",
        &listen,
        "--api",
        "127.0.0.1:0",
        "--no-mdns",
        "--no-kademlia",
        "--no-upnp",
        "--sync-interval",
        "5",
    ];
    args.extend_from_slice(extra);
    let node = NsNode::spawn(ns, home, &args);
    common::wait_for("the node to start", || node.status().is_some());
    node
}

fn member_id(node: &NsNode, name: &str) -> String {
    let members: Value =
        serde_json::from_str(&node.ok(&["--json", "member", "list"])).expect("members JSON");
    members
        .as_array()
        .expect("list")
        .iter()
        .find(|member| member["name"] == name)
        .and_then(|member| member["member"].as_str())
        .expect("the member is listed")
        .to_string()
}

fn invite(node: &NsNode, args: &[&str]) -> Value {
    let mut all = vec!["--json", "member", "invite"];
    all.extend_from_slice(args);
    serde_json::from_str(&node.ok(&all)).expect("invitation JSON")
}

async fn log_in(browser: &Client, name: &str, passphrase: &str) {
    fill(browser, "#name", name).await;
    fill(browser, "#passphrase", passphrase).await;
    click(browser, "form button[type=submit]").await;
}

async fn text(browser: &Client, css: &str) -> String {
    match browser.find(Locator::Css(css)).await {
        Ok(element) => element.text().await.expect("text"),
        Err(err) => panic!(
            "no {css} ({err}); the page was:\n{}",
            browser.source().await.unwrap_or_default()
        ),
    }
}

async fn nav_labels(browser: &Client) -> Vec<String> {
    let mut labels = Vec::new();
    for link in browser
        .find_all(Locator::Css("nav a"))
        .await
        .expect("navigation")
    {
        labels.push(link.text().await.expect("link text"));
    }
    labels
}

fn sha256_colons(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Chromium's pin for a certificate's key: base64 of SHA-256 of its SubjectPublicKeyInfo.
fn spki_pin(certificate: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate).expect("a certificate");
    data_encoding::BASE64.encode(&Sha256::digest(parsed.public_key().raw))
}

/// The certificate the page at `ip:port` serves (the handshake completes without trusting
/// it: this is what a browser is shown).
async fn served_certificate(ip: &str, port: u16) -> Vec<u8> {
    let (_, certificate) = tokio::time::timeout(Duration::from_secs(60), tls_connect(ip, port))
        .await
        .expect("a TLS handshake within 60 s");
    certificate
}

/// A request over HTTPS (a form post when `body` is not empty), with extra `headers`: the
/// status line and the Set-Cookie header of the answer.
async fn https_request(
    ip: &str,
    port: u16,
    method: &str,
    path: &str,
    body: &str,
    headers: &[&str],
) -> (String, String) {
    tokio::time::timeout(
        Duration::from_secs(60),
        https_exchange(ip, port, method, path, body, headers),
    )
    .await
    .unwrap_or_else(|_| panic!("no answer to {method} {path} within 60 s"))
}

async fn https_exchange(
    ip: &str,
    port: u16,
    method: &str,
    path: &str,
    body: &str,
    headers: &[&str],
) -> (String, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (mut stream, _) = tls_connect(ip, port).await;
    let mut extra = String::new();
    for header in headers {
        extra.push_str(header);
        extra.push_str("\r\n");
    }
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response).into_owned();
    let status = response.lines().next().unwrap_or_default().to_string();
    let cookie = response
        .lines()
        .find(|line| line.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_default()
        .to_string();
    (status, cookie)
}

async fn tls_connect(
    ip: &str,
    port: u16,
) -> (
    tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
    Vec<u8>,
) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let recorder = Arc::new(Recorder {
        seen: std::sync::Mutex::new(Vec::new()),
        provider: provider.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect((ip, port))
        .await
        .expect("the page is reachable from here");
    let name =
        rustls::pki_types::ServerName::from(ip.parse::<std::net::IpAddr>().expect("an IP address"));
    let stream = connector.connect(name, tcp).await.expect("a TLS handshake");
    let seen = recorder.seen.lock().expect("lock").clone();
    (stream, seen)
}

/// Accepts any certificate (it checks the handshake's signatures) and keeps the one shown.
#[derive(Debug)]
struct Recorder {
    seen: std::sync::Mutex<Vec<u8>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        *self.seen.lock().expect("lock") = end_entity.to_vec();
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}
