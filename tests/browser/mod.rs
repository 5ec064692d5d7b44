//! The browser harness the page tests share: finding Chromium, chromedriver and axe-core,
//! driving a headless browser over WebDriver, checking pages with axe-core, and plain HTTP
//! requests without cookies.

#![allow(dead_code)] // Each test file uses a different part.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json as json_value};

use crate::common::{Node, json, wait_for};

/// Browser steps are awaited with this deadline, polling the page.
pub const PAGE_DEADLINE: Duration = Duration::from_secs(60);

pub struct Tools {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
    pub axe: Option<String>,
}

/// Finds the browser, its driver and axe-core, or explains why the test cannot run.
pub fn tools() -> Option<Tools> {
    let in_ci = std::env::var_os("CI").is_some();
    let find = |names: &[&str]| {
        names.iter().find_map(|name| {
            std::env::var_os("PATH").and_then(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(name))
                    .find(|candidate| candidate.is_file())
            })
        })
    };
    let chromium = find(&["chromium", "chromium-browser", "google-chrome"]);
    let chromedriver = find(&["chromedriver"]);
    let axe_path = std::env::var_os("CAIRN_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/axe/node_modules/axe-core/axe.min.js")
        });
    let axe = std::fs::read_to_string(&axe_path).ok();
    match (chromium, chromedriver) {
        (Some(chromium), Some(chromedriver)) => {
            if axe.is_none() {
                assert!(
                    !in_ci,
                    "axe-core is missing at {}; .ci/run installs it with npm",
                    axe_path.display()
                );
                eprintln!(
                    "SKIPPED the accessibility checks: axe-core is not at {} (run `npm install --prefix .ci/axe axe-core@4`)",
                    axe_path.display()
                );
            }
            Some(Tools {
                chromium,
                chromedriver,
                axe,
            })
        }
        _ => {
            assert!(
                !in_ci,
                "chromium and chromedriver must be installed under CI (apt-get install chromium chromium-driver)"
            );
            eprintln!(
                "SKIPPED the browser tests: chromium and chromedriver are not installed (apt-get install chromium chromium-driver)"
            );
            None
        }
    }
}

/// A chromedriver process, killed when dropped.
pub struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    pub fn start(chromedriver: &Path, log: &Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("driver log"))
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        wait_for("chromedriver to listen", || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        Self { child, url }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub async fn browser(driver: &Driver, chromium: &Path, profile: &Path) -> Client {
    browser_with(driver, chromium, profile, &[]).await
}

/// A browser session with `extra` command-line switches for Chromium.
pub async fn browser_with(
    driver: &Driver,
    chromium: &Path,
    profile: &Path,
    extra: &[String],
) -> Client {
    let mut args: Vec<String> = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1100,1400",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    args.push(format!("--user-data-dir={}", profile.display()));
    args.extend_from_slice(extra);
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json_value!({
            "binary": chromium.display().to_string(),
            "args": args,
        }),
    );
    ClientBuilder::rustls()
        .expect("TLS setup for the WebDriver client")
        .capabilities(capabilities)
        .connect(&driver.url)
        .await
        .expect("a browser session")
}

/// Polls the page until `css` matches an element whose text contains `text`.
pub async fn wait_for_text(browser: &Client, css: &str, text: &str) {
    let started = Instant::now();
    loop {
        if let Ok(elements) = browser.find_all(Locator::Css(css)).await {
            for element in elements {
                if element.text().await.is_ok_and(|found| found.contains(text)) {
                    return;
                }
            }
        }
        assert!(
            started.elapsed() < PAGE_DEADLINE,
            "no {css} containing {text:?} within {PAGE_DEADLINE:?}; the page was:\n{}",
            browser.source().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn heading(browser: &Client) -> String {
    browser
        .find(Locator::Css("h1"))
        .await
        .expect("the page has a heading")
        .text()
        .await
        .expect("heading text")
}

pub async fn fill(browser: &Client, css: &str, text: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|err| panic!("no {css}: {err}"))
        .send_keys(text)
        .await
        .expect("typing works");
}

pub async fn click(browser: &Client, css: &str) {
    browser
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|err| panic!("no {css}: {err}"))
        .click()
        .await
        .expect("clicking works");
}

/// Runs axe-core's WCAG 2.1 A and AA rules on the current page; panics listing violations.
pub async fn check_accessibility(browser: &Client, axe: Option<&str>, page: &str) {
    let Some(axe) = axe else { return };
    browser
        .execute(&format!("{axe}\nreturn true;"), Vec::new())
        .await
        .expect("axe-core loads into the page");
    let result = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { runOnly: { type: 'tag',
                 values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
               .then(r => done(JSON.stringify({ violations: r.violations, passes: r.passes.length })))
               .catch(e => done(JSON.stringify({ error: String(e) })));",
            Vec::new(),
        )
        .await
        .expect("axe-core runs");
    let report: Value =
        serde_json::from_str(result.as_str().expect("axe returns text")).expect("axe JSON");
    assert!(report["error"].is_null(), "axe failed on {page}: {report}");
    let violations = report["violations"].as_array().expect("violations list");
    let described: Vec<String> = violations
        .iter()
        .map(|v| {
            format!(
                "{} ({}): {}",
                v["id"],
                v["impact"],
                v["nodes"]
                    .as_array()
                    .map(|nodes| nodes
                        .iter()
                        .map(|n| n["html"].to_string())
                        .collect::<Vec<_>>()
                        .join(" | "))
                    .unwrap_or_default()
            )
        })
        .collect();
    assert!(
        violations.is_empty(),
        "accessibility violations on {page}:\n{}",
        described.join("\n")
    );
    assert!(
        report["passes"].as_u64().is_some_and(|passes| passes > 5),
        "axe ran suspiciously few checks on {page}: {report}"
    );
}

pub async fn screenshot(browser: &Client, name: &str) {
    let Some(dir) = std::env::var_os("CAIRN_SCREENSHOTS") else {
        return;
    };
    browser
        .execute("window.scrollTo(0, 0); return true;", Vec::new())
        .await
        .expect("scrolls");
    let png = browser.screenshot().await.expect("screenshot");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    std::fs::write(Path::new(&dir).join(format!("{name}.png")), png).expect("save screenshot");
}

pub fn login_url(node: &Node) -> String {
    json(&node.home, &["open", "--print-only"])["url"]
        .as_str()
        .expect("a login URL")
        .to_string()
}

pub fn base(url: &str) -> String {
    url.split("/login").next().expect("a base URL").to_string()
}

/// A plain HTTP GET with no cookies; returns the whole response.
pub fn http_get(url: &str) -> String {
    http_get_with_cookies(url, "")
}

/// A plain HTTP GET sending `cookies` (`name=value; ...`, none if empty); returns the whole
/// response, as served.
pub fn http_get_with_cookies(url: &str, cookies: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").expect("http URL");
    let (host, path) = rest.split_once('/').map_or((rest, "/"), |(h, p)| (h, p));
    let mut stream = std::net::TcpStream::connect(host).expect("connect");
    let cookie_header = if cookies.is_empty() {
        String::new()
    } else {
        format!("Cookie: {cookies}\r\n")
    };
    write!(
        stream,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\n{cookie_header}Connection: close\r\n\r\n"
    )
    .expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
}

/// The browser's cookies for the current site, as a `Cookie` header's value.
pub async fn cookies(browser: &Client) -> String {
    browser
        .get_all_cookies()
        .await
        .expect("cookies")
        .iter()
        .map(|cookie| format!("{}={}", cookie.name(), cookie.value()))
        .collect::<Vec<_>>()
        .join("; ")
}
