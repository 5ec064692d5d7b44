//! Where a command's operations run: in this process on the home's store (the service, when no
//! node runs), or in the running node through its local API. Chosen once per command by
//! [`open`]; every command that reads or writes entries goes through [`Backend`], so the two
//! paths cannot drift apart.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use cairn_api::{
    AmendRequest, DirectoryView, FramesView, KnownOrgView, LinkRequest, ListQuery, MemberRequest,
    MemberView, PolicyChange, PolicyView, ProfileRequest, ProfileView, PublishRequest,
    PublishedView, ReindexView, ReplyRequest, RespondRequest, RetractRequest, RevokeRequest,
    Signing, SpacesView, StatusView,
};
use cairn_core::body::StoryEdit;
use cairn_core::{Entry, Profile, Reply, Response};
use cairn_node::service::{Listing, NewStory, Shown};
use cairn_node::{PublishAs, Service, wire};

use crate::client::NodeClient;
use crate::home::Home;

/// How long a command waits for a node that holds the store to open its API (it is starting)
/// or let the store go (it is stopping).
const NODE_START_WAIT: Duration = Duration::from_secs(15);
/// How often it looks again meanwhile.
const NODE_START_POLL: Duration = Duration::from_millis(100);

/// The operations of the service, wherever they run.
pub trait Backend {
    fn publish(&self, new: NewStory, signing: Signing) -> Result<Entry>;
    fn reply(&self, target: &str, reply: Reply, signing: Signing) -> Result<Entry>;
    fn respond(&self, target: &str, response: Response, signing: Signing) -> Result<Entry>;
    fn amend(&self, target: &str, edit: StoryEdit, signing: Signing) -> Result<Entry>;
    fn retract(&self, target: &str, reason: String, signing: Signing) -> Result<Entry>;
    fn set_profile(&self, profile: Profile, signing: Signing) -> Result<Entry>;
    /// The newest profile of an author (an organisation or member id).
    fn profile(&self, author: &str) -> Result<Option<ProfileView>>;
    fn add_member(&self, name: &str) -> Result<MemberView>;
    fn members(&self) -> Result<Vec<MemberView>>;
    fn revoke(&self, name: &str, reason: String) -> Result<Entry>;
    /// One page of a listing; see [`cairn_node::Service::list`].
    fn list(&self, query: &ListQuery) -> Result<Listing>;
    fn show(&self, prefix: &str) -> Result<Shown>;
    fn search(&self, query: &str, limit: usize) -> Result<Listing>;
    fn reindex(&self) -> Result<u64>;
    fn policy(&self) -> Result<PolicyView>;
    fn change_policy(&self, change: &PolicyChange) -> Result<PolicyView>;
    /// Up to `limit` organisations with entries here, followed first.
    fn directory(&self, limit: usize) -> Result<Vec<KnownOrgView>>;
    /// How many entries the store holds.
    fn count(&self) -> Result<usize>;
    /// The joined spaces.
    fn spaces(&self) -> Result<Vec<String>>;
    /// Joins a space; returns the joined spaces.
    fn join_space(&self, name: &str) -> Result<Vec<String>>;
    /// Leaves a space; returns the joined spaces.
    fn leave_space(&self, name: &str) -> Result<Vec<String>>;
    /// Forgets a remembered peer (by peer id or address); returns what was forgotten.
    fn forget_peer(&self, peer: &str) -> Result<Vec<String>>;
}

/// The running node's API if there is one, else the service on the home's store. A node that
/// holds the store without answering yet is starting (or stopping): wait for its API, or for
/// the store to come free, for a few seconds.
pub fn open(home: &Home) -> Result<Box<dyn Backend>> {
    if let Some(client) = NodeClient::find(home)? {
        return Ok(Box::new(client));
    }
    match open_store(home)? {
        Opened::Node(client) => Ok(Box::new(client)),
        Opened::Store(store) => Ok(Box::new(service_on(home, *store)?)),
    }
}

/// The service on the home's own store, for operations that must not run beside a node
/// (rotating keys): refuses while a node runs.
pub fn local(home: &Home, why: &str) -> Result<Service> {
    let running = || {
        anyhow::anyhow!(
            "a node is running on this home; stop it first ({why}), then start it again"
        )
    };
    if NodeClient::find(home)?.is_some() {
        return Err(running());
    }
    match open_store(home)? {
        Opened::Node(_) => Err(running()),
        Opened::Store(store) => service_on(home, *store),
    }
}

/// What holds the home's store: a node (answering on its API), or this process.
enum Opened {
    Node(NodeClient),
    Store(Box<cairn_store::Store>),
}

/// Opens the home's store, waiting a few seconds for a node that holds it to answer.
fn open_store(home: &Home) -> Result<Opened> {
    home.load()?;
    let deadline = Instant::now() + NODE_START_WAIT;
    let mut told = false;
    loop {
        match home.open_store_now() {
            Ok(store) => return Ok(Opened::Store(Box::new(store))),
            Err(err) if !is_locked(&err) => return Err(err),
            Err(err) => {
                if let Some(client) = NodeClient::find(home)? {
                    return Ok(Opened::Node(client));
                }
                if Instant::now() >= deadline {
                    return Err(err).context(format!(
                        "another Cairn process has held the store for {} s without its API answering; if a node is running, see its log (it may be stuck opening a large store), else stop the other process",
                        NODE_START_WAIT.as_secs()
                    ));
                }
                if !told {
                    eprintln!(
                        "The store in {} is in use; waiting for the node that is starting (or stopping), or for the other command to finish...",
                        home.root().display()
                    );
                    told = true;
                }
                std::thread::sleep(NODE_START_POLL);
            }
        }
    }
}

fn service_on(home: &Home, store: cairn_store::Store) -> Result<Service> {
    let identity = home.load()?;
    let config = home.config()?;
    Ok(Service::new(
        cairn_node::service::Config {
            store: std::sync::Arc::new(store),
            member_key: identity.member_key,
            credential: identity.credential,
            files: home.node_files(),
            default_spaces: config.publish.default_spaces,
        },
        None,
    )?)
}

fn is_locked(err: &anyhow::Error) -> bool {
    matches!(
        err.downcast_ref::<cairn_store::Error>(),
        Some(cairn_store::Error::Locked(_))
    )
}

fn publish_as(signing: Signing) -> Result<PublishAs> {
    Ok(PublishAs::from_request(
        signing.as_member,
        signing.on_behalf,
    )?)
}

impl Backend for Service {
    fn publish(&self, new: NewStory, signing: Signing) -> Result<Entry> {
        Ok(Service::publish(self, new, &publish_as(signing)?)?)
    }

    fn reply(&self, target: &str, reply: Reply, signing: Signing) -> Result<Entry> {
        Ok(Service::reply(self, target, reply, &publish_as(signing)?)?)
    }

    fn respond(&self, target: &str, response: Response, signing: Signing) -> Result<Entry> {
        Ok(Service::respond(
            self,
            target,
            response,
            &publish_as(signing)?,
        )?)
    }

    fn amend(&self, target: &str, edit: StoryEdit, signing: Signing) -> Result<Entry> {
        Ok(Service::amend(self, target, &edit, &publish_as(signing)?)?)
    }

    fn retract(&self, target: &str, reason: String, signing: Signing) -> Result<Entry> {
        Ok(Service::retract(
            self,
            target,
            reason,
            &publish_as(signing)?,
        )?)
    }

    fn set_profile(&self, profile: Profile, signing: Signing) -> Result<Entry> {
        Ok(Service::set_profile(self, &profile, &publish_as(signing)?)?)
    }

    fn profile(&self, author: &str) -> Result<Option<ProfileView>> {
        Ok(Service::profile(self, Some(author))?
            .map(|(entry, profile)| wire::profile_view(&entry, profile)))
    }

    fn add_member(&self, name: &str) -> Result<MemberView> {
        let key = Service::add_member(self, name)?;
        Ok(wire::member_view(&cairn_node::service::Member {
            key,
            revoked_after: None,
        }))
    }

    fn members(&self) -> Result<Vec<MemberView>> {
        Ok(Service::members(self)?
            .iter()
            .map(wire::member_view)
            .collect())
    }

    fn revoke(&self, name: &str, reason: String) -> Result<Entry> {
        Ok(Service::revoke(self, name, reason)?)
    }

    fn list(&self, query: &ListQuery) -> Result<Listing> {
        Ok(Service::list(self, query)?)
    }

    fn show(&self, prefix: &str) -> Result<Shown> {
        Ok(Service::show(self, prefix)?)
    }

    fn search(&self, query: &str, limit: usize) -> Result<Listing> {
        Ok(Service::search(self, query, limit)?)
    }

    fn reindex(&self) -> Result<u64> {
        Ok(Service::reindex(self)?)
    }

    fn policy(&self) -> Result<PolicyView> {
        Ok(Service::policy(self)?)
    }

    fn change_policy(&self, change: &PolicyChange) -> Result<PolicyView> {
        Ok(Service::change_policy(self, change)?)
    }

    fn directory(&self, limit: usize) -> Result<Vec<KnownOrgView>> {
        let orgs = Service::directory(self, limit.min(cairn_api::MAX_DIRECTORY))?;
        Ok(orgs.iter().map(wire::known_org_view).collect())
    }

    fn count(&self) -> Result<usize> {
        Ok(Service::count(self)?)
    }

    fn spaces(&self) -> Result<Vec<String>> {
        Ok(Service::spaces(self))
    }

    fn join_space(&self, name: &str) -> Result<Vec<String>> {
        Service::join_space(self, name)?;
        Ok(Service::spaces(self))
    }

    fn leave_space(&self, name: &str) -> Result<Vec<String>> {
        Service::leave_space(self, name)?;
        Ok(Service::spaces(self))
    }

    fn forget_peer(&self, peer: &str) -> Result<Vec<String>> {
        Ok(Service::forget_peer(self, peer)?)
    }
}

impl NodeClient {
    fn published(&self, path: &str, body: &impl serde::Serialize) -> Result<Entry> {
        let published: PublishedView = self.post(path, body)?;
        Ok(wire::published_from(&published)?)
    }
}

/// The API path of an action on the entry an id or prefix names.
fn entry_path(prefix: &str, action: &str) -> String {
    format!("/api/entries/{}/{action}", path_segment(prefix.trim()))
}

/// Text as one URL path segment: ids and space names pass as they are, anything else typed
/// by mistake is percent-escaped rather than read as more of the path.
fn path_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|byte| match byte {
            b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b'-' | b'_' | b'.' => {
                (byte as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

impl Backend for NodeClient {
    fn publish(&self, new: NewStory, signing: Signing) -> Result<Entry> {
        let request = PublishRequest {
            kind: new.kind.0,
            story: new.story,
            spaces: new.spaces,
            links: new
                .links
                .into_iter()
                .map(|(kind, target)| LinkRequest {
                    kind: kind.name().unwrap_or_default().to_string(),
                    target,
                })
                .collect(),
            signing,
        };
        self.published("/api/publish", &request)
    }

    fn reply(&self, target: &str, reply: Reply, signing: Signing) -> Result<Entry> {
        let request = ReplyRequest {
            text: reply.text,
            signing,
        };
        self.published(&entry_path(target, "reply"), &request)
    }

    fn respond(&self, target: &str, response: Response, signing: Signing) -> Result<Entry> {
        let request = RespondRequest {
            kind: response.kind.to_string(),
            note: response.note,
            signing,
        };
        self.published(&entry_path(target, "respond"), &request)
    }

    fn amend(&self, target: &str, edit: StoryEdit, signing: Signing) -> Result<Entry> {
        self.published(
            &entry_path(target, "amend"),
            &AmendRequest {
                edit,
                story: None,
                signing,
            },
        )
    }

    fn retract(&self, target: &str, reason: String, signing: Signing) -> Result<Entry> {
        self.published(
            &entry_path(target, "retract"),
            &RetractRequest { reason, signing },
        )
    }

    fn set_profile(&self, profile: Profile, signing: Signing) -> Result<Entry> {
        self.published("/api/profile", &ProfileRequest { profile, signing })
    }

    fn profile(&self, author: &str) -> Result<Option<ProfileView>> {
        self.get("/api/profile", &[("author", author.trim().to_string())])
    }

    fn add_member(&self, name: &str) -> Result<MemberView> {
        self.post(
            "/api/members",
            &MemberRequest {
                name: name.to_string(),
            },
        )
    }

    fn members(&self) -> Result<Vec<MemberView>> {
        self.get("/api/members", &[])
    }

    fn revoke(&self, name: &str, reason: String) -> Result<Entry> {
        self.published(
            "/api/members/revoke",
            &RevokeRequest {
                name: name.to_string(),
                reason,
            },
        )
    }

    fn list(&self, query: &ListQuery) -> Result<Listing> {
        let mut params = Vec::new();
        for (name, value) in [
            ("kind", &query.kind),
            ("space", &query.space),
            ("tag", &query.tag),
            ("org", &query.org),
            ("author", &query.author),
            ("cursor", &query.cursor),
        ] {
            if let Some(value) = value {
                params.push((name, value.clone()));
            }
        }
        if let Some(limit) = query.limit {
            params.push(("limit", limit.to_string()));
        }
        let view: FramesView = self.get("/api/entries", &params)?;
        Ok(wire::listing_from(&view)?)
    }

    fn show(&self, prefix: &str) -> Result<Shown> {
        let view: FramesView = self.get(
            &format!("/api/entries/{}", path_segment(prefix.trim())),
            &[],
        )?;
        Ok(wire::shown_from(&view)?)
    }

    fn search(&self, query: &str, limit: usize) -> Result<Listing> {
        let view: FramesView = self.get(
            "/api/search",
            &[("q", query.to_string()), ("limit", limit.to_string())],
        )?;
        Ok(wire::listing_from(&view)?)
    }

    fn reindex(&self) -> Result<u64> {
        Ok(self.post::<_, ReindexView>("/api/reindex", &())?.entries)
    }

    fn policy(&self) -> Result<PolicyView> {
        self.get("/api/policy", &[])
    }

    fn change_policy(&self, change: &PolicyChange) -> Result<PolicyView> {
        self.post("/api/policy", change)
    }

    fn directory(&self, limit: usize) -> Result<Vec<KnownOrgView>> {
        let view: DirectoryView = self.get("/api/orgs", &[("limit", limit.to_string())])?;
        Ok(view.orgs)
    }

    fn count(&self) -> Result<usize> {
        Ok(self.get::<StatusView>("/api/status", &[])?.entries)
    }

    fn spaces(&self) -> Result<Vec<String>> {
        Ok(self.get::<SpacesView>("/api/spaces", &[])?.spaces)
    }

    fn join_space(&self, name: &str) -> Result<Vec<String>> {
        let path = format!("/api/spaces/{}", path_segment(name.trim()));
        Ok(self.post::<_, SpacesView>(&path, &())?.spaces)
    }

    fn leave_space(&self, name: &str) -> Result<Vec<String>> {
        let path = format!("/api/spaces/{}", path_segment(name.trim()));
        Ok(self.delete::<SpacesView>(&path)?.spaces)
    }

    fn forget_peer(&self, peer: &str) -> Result<Vec<String>> {
        let request = cairn_api::AddressRequest {
            address: peer.to_string(),
        };
        let forgotten: cairn_api::ForgottenView = self.post("/api/peers/forget", &request)?;
        Ok(forgotten.forgotten)
    }
}
