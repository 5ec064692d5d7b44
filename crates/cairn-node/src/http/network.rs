//! Serving the page on the organisation's network (`cairn node --web ADDRESS`): over HTTPS
//! with the node's own certificate or the admin's, or as plain HTTP on loopback behind a
//! reverse proxy that terminates HTTPS. The local API never answers here.
//!
//! Bounded: at most [`MAX_CONNECTIONS`] connections in all and [`MAX_PER_ADDRESS`] from one
//! client address (an IPv6 /64 counts as one; behind a proxy, the proxy bounds its clients),
//! [`HANDSHAKE_TIMEOUT`] for the TLS handshake and for a request's headers,
//! [`REQUEST_TIMEOUT`] for a whole request with its body, and [`CONNECTION_LIFETIME`] for a
//! connection.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::web::{ClientAddress, NetworkPage};
use crate::Error;

/// Connections open at once, in all.
pub const MAX_CONNECTIONS: usize = 256;
/// Connections open at once from one client address.
pub const MAX_PER_ADDRESS: usize = 32;
/// How long a client has for its TLS handshake, and for each request's headers.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one request may take, reading its body included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a connection may stay open; the browser opens a new one when it needs it.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(5 * 60);

/// How the page is offered on the organisation's network.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Where to listen: a LAN address (or, behind a proxy, a loopback one).
    pub address: SocketAddr,
    pub tls: WebTls,
    /// Host names members reach the node by (beside the listening address), for the
    /// certificate and the Host check.
    pub names: Vec<String>,
}

/// Where the page's HTTPS comes from.
#[derive(Debug, Clone)]
pub enum WebTls {
    /// A certificate this node makes on first start, kept in the home.
    OwnCertificate,
    /// The admin's certificate chain and key (PEM).
    Files { certificate: PathBuf, key: PathBuf },
    /// A reverse proxy on this machine terminates HTTPS and forwards to a loopback address,
    /// saying who the client is in `X-Forwarded-For`; members use `public_url`.
    Proxy { public_url: String },
}

/// The page's network setup, worked out before it starts serving.
pub(crate) struct Prepared {
    pub page: NetworkPage,
    /// Host header values the page answers to.
    pub allowed_hosts: Vec<String>,
    /// `https://HOST` origins accepted on form posts.
    pub origins: Vec<String>,
    pub tls: Option<TlsAcceptor>,
}

/// Checks `config` and loads or makes the certificate (in `dir`).
pub(crate) fn prepare(
    config: &WebConfig,
    dir: &std::path::Path,
    org_name: &str,
) -> Result<Prepared, Error> {
    let ip = config.address.ip();
    let port = config.address.port();
    if port == 0 {
        return Err(Error::BadRequest(format!(
            "give the page a fixed port, such as {ip}:8443: members' invitations and bookmarks name it"
        )));
    }
    let mut names: Vec<String> = Vec::new();
    if !ip.is_unspecified() {
        names.push(ip.to_string());
    }
    names.extend(config.names.iter().map(|name| name.trim().to_lowercase()));
    names.dedup();
    let host = |name: &str| match name.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        _ => name.to_string(),
    };
    match &config.tls {
        WebTls::Proxy { public_url } => {
            if !ip.is_loopback() {
                return Err(Error::BadRequest(format!(
                    "behind a reverse proxy the page listens on a loopback address (such as 127.0.0.1:{port}), not {ip}: anyone who could reach it directly could claim any client address"
                )));
            }
            let authority = public_url
                .strip_prefix("https://")
                .map(|rest| rest.trim_end_matches('/'))
                .filter(|rest| !rest.is_empty() && !rest.contains('/'))
                .ok_or_else(|| {
                    Error::BadRequest(format!(
                        "the public address {public_url:?} must look like https://cairn.example.org (the address members type)"
                    ))
                })?;
            Ok(Prepared {
                page: NetworkPage {
                    url: format!("https://{authority}"),
                    fingerprint: None,
                },
                allowed_hosts: vec![authority.to_string()],
                origins: vec![format!("https://{authority}")],
                tls: None,
            })
        }
        tls => {
            let Some(first) = names.first() else {
                return Err(Error::BadRequest(format!(
                    "the page listens on {ip}, every address of this computer: name the addresses or host names members will use with `names` in the [web] section of config.toml, or give one address to --web"
                )));
            };
            let served = match tls {
                WebTls::Files { certificate, key } => {
                    super::certificate::from_files(certificate, key)?
                }
                _ => super::certificate::own(dir, &names, org_name)?,
            };
            let allowed_hosts: Vec<String> = names
                .iter()
                .map(|name| format!("{}:{port}", host(name)))
                .chain(
                    (port == 443)
                        .then(|| names.iter().map(|name| host(name)))
                        .into_iter()
                        .flatten(),
                )
                .collect();
            Ok(Prepared {
                page: NetworkPage {
                    url: format!("https://{}:{port}", host(first)),
                    fingerprint: Some(served.fingerprint),
                },
                origins: allowed_hosts
                    .iter()
                    .map(|host| format!("https://{host}"))
                    .collect(),
                allowed_hosts,
                tls: Some(TlsAcceptor::from(served.config)),
            })
        }
    }
}

/// Serves `router` on `listener` until `stop` fires; connections still open then are closed.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<TlsAcceptor>,
    stop: tokio::sync::oneshot::Receiver<()>,
) {
    let proxied = tls.is_none();
    let all = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let per_address = Arc::new(Mutex::new(HashMap::<IpAddr, usize>::new()));
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(stop);
    loop {
        let accepted = tokio::select! {
            _ = &mut stop => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors, say: wait a little rather than spin.
                tracing::warn!("the page could not accept a connection: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = all.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "page connection refused: {MAX_CONNECTIONS} are open");
            continue;
        };
        let slot = if proxied {
            None
        } else {
            match AddressSlot::take(&per_address, super::web::accounts::client_key(peer.ip())) {
                Some(slot) => Some(slot),
                None => {
                    tracing::debug!(%peer, "page connection refused: {MAX_PER_ADDRESS} open from that address");
                    continue;
                }
            }
        };
        let (router, tls) = (router.clone(), tls.clone());
        connections.spawn(async move {
            let _held = (permit, slot);
            match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_connection(stream, router, peer, false).await,
                        Ok(Err(err)) => tracing::debug!(%peer, "page TLS handshake failed: {err}"),
                        Err(_) => tracing::debug!(%peer, "page TLS handshake timed out"),
                    }
                }
                None => serve_connection(stream, router, peer, true).await,
            }
        });
    }
    connections.shutdown().await;
}

async fn serve_connection<S>(stream: S, router: Router, peer: SocketAddr, proxied: bool)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(
        move |mut request: hyper::Request<hyper::body::Incoming>| {
            let client = if proxied {
                forwarded_for(request.headers())
            } else {
                Some(peer.ip())
            };
            let mut router = router.clone();
            async move {
                let Some(client) = client else {
                    return Ok(refusal(
                        StatusCode::BAD_REQUEST,
                        "The reverse proxy did not say who the client is: add `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;` to its configuration (see docs/operating.md).",
                    ));
                };
                request.extensions_mut().insert(ClientAddress(client));
                let answer = tower_service::Service::call(&mut router, request);
                match tokio::time::timeout(REQUEST_TIMEOUT, answer).await {
                    Ok(answer) => answer,
                    Err(_) => Ok(refusal(
                        StatusCode::REQUEST_TIMEOUT,
                        "The request took too long to arrive. Try again.",
                    )),
                }
            }
        },
    );
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HANDSHAKE_TIMEOUT)
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_LIFETIME, connection).await {
        Ok(Err(err)) => tracing::debug!(%peer, "page connection ended: {err}"),
        Err(_) => tracing::debug!(%peer, "page connection closed after {CONNECTION_LIFETIME:?}"),
        Ok(Ok(())) => {}
    }
}

fn refusal(status: StatusCode, text: &str) -> axum::response::Response {
    super::web::message(status, "Refused", text)
}

/// The client a reverse proxy on this machine names: the last `X-Forwarded-For` address,
/// the one the proxy itself added.
fn forwarded_for(headers: &axum::http::HeaderMap) -> Option<IpAddr> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()?
        .to_str()
        .ok()?
        .rsplit(',')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// One connection's place in its address's count, given back when dropped.
struct AddressSlot {
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
    address: IpAddr,
}

impl AddressSlot {
    fn take(counts: &Arc<Mutex<HashMap<IpAddr, usize>>>, address: IpAddr) -> Option<Self> {
        let mut map = counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = map.entry(address).or_default();
        if *count >= MAX_PER_ADDRESS {
            return None;
        }
        *count += 1;
        Some(Self {
            counts: counts.clone(),
            address,
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut map = self
            .counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = map.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.address);
            }
        }
    }
}
