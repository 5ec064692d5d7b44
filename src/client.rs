//! The CLI's client for a running node's local API. It finds the node through the address and
//! token files the node writes into its home.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::home::Home;

/// A connection to the node of one home.
#[derive(Debug)]
pub struct NodeClient {
    base: String,
    token: String,
    agent: ureq::Agent,
}

impl NodeClient {
    /// The running node of this home, or `None` if none runs (no address file, or nothing
    /// answers at the address in it).
    pub fn find(home: &Home) -> Result<Option<Self>> {
        let Some(address) = read_trimmed(&home.node_files().api_address)? else {
            return Ok(None);
        };
        let token = read_trimmed(&home.node_files().api_token)?.with_context(|| {
            format!(
                "{} is missing although a node seems to run; restart the node",
                home.node_files().api_token.display()
            )
        })?;
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(60)))
            .http_status_as_error(false)
            .build()
            .into();
        let client = Self {
            base: format!("http://{address}"),
            token,
            agent,
        };
        match client
            .agent
            .get(format!("{}/api/spaces", client.base))
            .header("Authorization", client.bearer())
            .call()
        {
            Ok(_) => Ok(Some(client)),
            // Left behind by a node that did not stop cleanly.
            Err(ureq::Error::Io(_) | ureq::Error::ConnectionFailed | ureq::Error::Timeout(_)) => {
                Ok(None)
            }
            Err(err) => Err(err).context("the node's API did not answer properly"),
        }
    }

    /// The running node, or an error saying how to start one.
    pub fn require(home: &Home) -> Result<Self> {
        Self::find(home)?.with_context(|| {
            format!("no node is running for {}; start it with `cairn node` (in another terminal or as a service)", home.root().display())
        })
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    pub fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T> {
        let mut request = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", self.bearer());
        for (name, value) in query {
            request = request.query(*name, value);
        }
        Self::answer(request.call().context("could not reach the node")?)
    }

    pub fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T> {
        let response = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", self.bearer())
            .send_json(body)
            .context("could not reach the node")?;
        Self::answer(response)
    }

    pub fn delete<T: DeserializeOwned>(&self, path: &str) -> Result<T> {
        let response = self
            .agent
            .delete(format!("{}{path}", self.base))
            .header("Authorization", self.bearer())
            .call()
            .context("could not reach the node")?;
        Self::answer(response)
    }

    fn answer<T: DeserializeOwned>(mut response: ureq::http::Response<ureq::Body>) -> Result<T> {
        let status = response.status();
        if status.is_success() {
            return response.body_mut().read_json().context(
                "the node sent an answer this CLI cannot read; are both the same version?",
            );
        }
        let message = response
            .body_mut()
            .read_json::<cairn_api::ErrorView>()
            .map(|error| error.error)
            .unwrap_or_else(|_| format!("the node answered {status}"));
        bail!("{message}")
    }
}

fn read_trimmed(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text.trim().to_string())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err).with_context(|| format!("could not read {}", path.display())),
    }
}
