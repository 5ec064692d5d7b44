//! The JSON API for the CLI, under `/api/`: each handler turns its request (a `cairn-api`
//! shape) into one service call, and the typed result back into JSON through `crate::wire`.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use cairn_api::{
    AddressRequest, AmendRequest, DirectoryQuery, DirectoryView, ForgottenView, ForkedAuthorView,
    FramesView, InviteMemberRequest, InviteQuery, ListQuery, MAX_DIRECTORY, MemberInviteView,
    MemberRequest, MemberView, PeerAddedView, PeerView, PolicyChange, PolicyView, ProfileQuery,
    ProfileRequest, ProfileView, Progress, PublishRequest, PublishedView, ReindexView,
    ReplyRequest, RespondRequest, RetractRequest, RevokeRequest, SearchQuery, Signing, SpacesView,
    StatusView, SyncRequest, SyncView, TicketText, WebPageView,
};
use cairn_core::body::StoryEdit;
use cairn_core::{OrgId, Reply, ResponseType};

use super::Api;
use crate::Error;
use crate::hello::PeerHello;
use crate::service::PublishAs;
use crate::service::names;
use crate::ticket::Ticket;
use crate::wire;

/// Organisations in `GET /api/orgs` when the request does not say.
const DEFAULT_DIRECTORY: usize = 100;

/// Whose name a request publishes under.
fn signer(signing: Signing) -> Result<PublishAs, Error> {
    PublishAs::from_request(signing.as_member, signing.on_behalf)
}

pub(crate) async fn status(State(api): State<Api>) -> Result<Json<StatusView>, Error> {
    let net = api.shared.client().status().await?;
    let hellos: Vec<Option<PeerHello>> = net
        .connected
        .iter()
        .map(|peer| api.shared.hello_of(&peer.peer_id))
        .collect();
    let bound: Vec<(OrgId, String)> = hellos
        .iter()
        .filter_map(|hello| hello.as_ref()?.org.clone())
        .collect();
    let (entries, forks, labels, key_log) = api
        .shared
        .read(move |service| {
            let labels = names::claimed_labels(
                service.store(),
                service.own_org(),
                bound.iter().map(|(org, name)| (*org, Some(name.as_str()))),
            )?;
            let key_log = wire::key_log_view(&service.key_log_status()?);
            Ok((service.count()?, service.forks()?, labels, key_log))
        })
        .await?;
    let mut forked_authors: Vec<ForkedAuthorView> = Vec::new();
    for fork in forks {
        let author = fork.author.to_string();
        match forked_authors.iter_mut().find(|view| view.author == author) {
            Some(view) => view.seqs.push(fork.seq),
            None => {
                let claims = fork.other.credential().claims();
                forked_authors.push(ForkedAuthorView {
                    author,
                    author_name: claims.member_name.clone(),
                    org_name: claims.org_name.clone(),
                    seqs: vec![fork.seq],
                });
            }
        }
    }
    let claims = api.shared.credential().claims();
    Ok(Json(StatusView {
        peer_id: net.peer_id.to_string(),
        listen_addrs: net.listen_addrs.iter().map(ToString::to_string).collect(),
        org: claims.org.to_string(),
        org_name: claims.org_name.clone(),
        member: claims.member.to_string(),
        member_name: claims.member_name.clone(),
        key_log: Some(key_log),
        web: api.pages.network.as_deref().map(|page| WebPageView {
            url: page.url.clone(),
            fingerprint: page.fingerprint.clone(),
        }),
        spaces: api.shared.spaces(),
        connected_peers: net
            .connected
            .into_iter()
            .zip(hellos)
            .map(|(peer, hello)| {
                let org = hello.as_ref().and_then(|hello| hello.org.clone());
                PeerView {
                    last_sync: api.shared.last_sync(&peer.peer_id),
                    peer_id: peer.peer_id.to_string(),
                    address: peer.address.to_string(),
                    spaces: peer.spaces,
                    provenance: org
                        .as_ref()
                        .and_then(|(org, _)| labels.get(org))
                        .map(wire::label_view),
                    org: org.as_ref().map(|(org, _)| org.to_string()),
                    org_name: org.map(|(_, name)| name),
                    clock_skew_ms: hello.as_ref().map(|hello| hello.clock_skew_ms),
                    software: hello.map(|hello| hello.software),
                }
            })
            .collect(),
        known_peers: api.shared.known_peers(),
        reachability: wire::reachability_view(&net.reachability, net.relay_offered, |relay| {
            api.shared
                .hello_of(relay)
                .and_then(|hello| hello.org.map(|(_, name)| name))
        }),
        blocked_peers: net.blocked.iter().map(ToString::to_string).collect(),
        blocked_addresses: net.blocked_addresses,
        refused_connections: net.refused_connections,
        intake_stopped: api.shared.store().intake_stopped(),
        entries,
        search_up_to_date: api.shared.search_up_to_date(),
        api: api.allowed_hosts.first().cloned().unwrap_or_default(),
        forked_authors,
    }))
}

pub(crate) async fn list(
    State(api): State<Api>,
    Query(query): Query<ListQuery>,
) -> Result<Json<FramesView>, Error> {
    let listing = api.shared.read(move |service| service.list(&query)).await?;
    Ok(Json(wire::listing_view(&listing)))
}

/// The entry first, then the entries that refer to it (replies, responses, links), oldest
/// first.
pub(crate) async fn show(
    State(api): State<Api>,
    Path(id): Path<String>,
) -> Result<Json<FramesView>, Error> {
    let shown = api.shared.read(move |service| service.show(&id)).await?;
    Ok(Json(wire::shown_view(&shown)))
}

pub(crate) async fn publish(
    State(api): State<Api>,
    Json(mut request): Json<PublishRequest>,
) -> Result<Json<PublishedView>, Error> {
    let publish_as = signer(std::mem::take(&mut request.signing))?;
    let new = wire::new_story(request)?;
    published(
        api.shared
            .write(move |service| service.publish(new, &publish_as))
            .await?,
    )
}

pub(crate) async fn reply(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(request): Json<ReplyRequest>,
) -> Result<Json<PublishedView>, Error> {
    let publish_as = signer(request.signing)?;
    let reply = Reply { text: request.text };
    published(
        api.shared
            .write(move |service| service.reply(&id, reply, &publish_as))
            .await?,
    )
}

pub(crate) async fn respond(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(request): Json<RespondRequest>,
) -> Result<Json<PublishedView>, Error> {
    let kind = ResponseType::from_name(request.kind.trim()).ok_or_else(|| {
        Error::BadRequest(format!(
            "{:?} is not a response type; use thank-you, me-too, this-helped-us, challenge or offer-to-talk",
            request.kind
        ))
    })?;
    let response = cairn_core::Response {
        kind,
        note: request.note,
    };
    let publish_as = signer(request.signing)?;
    published(
        api.shared
            .write(move |service| service.respond(&id, response, &publish_as))
            .await?,
    )
}

pub(crate) async fn retract(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(request): Json<RetractRequest>,
) -> Result<Json<PublishedView>, Error> {
    let publish_as = signer(request.signing)?;
    published(
        api.shared
            .write(move |service| service.retract(&id, request.reason, &publish_as))
            .await?,
    )
}

pub(crate) async fn amend(
    State(api): State<Api>,
    Path(id): Path<String>,
    Json(request): Json<AmendRequest>,
) -> Result<Json<PublishedView>, Error> {
    let publish_as = signer(request.signing)?;
    // A client one version older sends the whole revised story.
    let edit = match request.story {
        Some(story) => StoryEdit::replacing(story),
        None => request.edit,
    };
    published(
        api.shared
            .write(move |service| service.amend(&id, &edit, &publish_as))
            .await?,
    )
}

pub(crate) async fn set_profile(
    State(api): State<Api>,
    Json(request): Json<ProfileRequest>,
) -> Result<Json<PublishedView>, Error> {
    let publish_as = signer(request.signing)?;
    published(
        api.shared
            .write(move |service| service.set_profile(&request.profile, &publish_as))
            .await?,
    )
}

pub(crate) async fn profile(
    State(api): State<Api>,
    Query(query): Query<ProfileQuery>,
) -> Result<Json<Option<ProfileView>>, Error> {
    let found = api
        .shared
        .read(move |service| service.profile(Some(&query.author)))
        .await?;
    Ok(Json(found.map(|(entry, profile)| {
        wire::profile_view(&entry, profile)
    })))
}

/// Organisations with entries here, followed first, each with how this node knows it.
pub(crate) async fn directory(
    State(api): State<Api>,
    Query(query): Query<DirectoryQuery>,
) -> Result<Json<DirectoryView>, Error> {
    let limit = query.limit.unwrap_or(DEFAULT_DIRECTORY).min(MAX_DIRECTORY);
    let orgs = api
        .shared
        .read(move |service| service.directory(limit))
        .await?;
    Ok(Json(DirectoryView {
        orgs: orgs.iter().map(wire::known_org_view).collect(),
    }))
}

pub(crate) async fn policy(State(api): State<Api>) -> Result<Json<PolicyView>, Error> {
    Ok(Json(api.shared.read(|service| service.policy()).await?))
}

pub(crate) async fn change_policy(
    State(api): State<Api>,
    Json(change): Json<PolicyChange>,
) -> Result<Json<PolicyView>, Error> {
    Ok(Json(
        api.shared
            .read(move |service| service.change_policy(&change))
            .await?,
    ))
}

pub(crate) async fn members(State(api): State<Api>) -> Result<Json<Vec<MemberView>>, Error> {
    let members = api.shared.read(|service| service.members()).await?;
    Ok(Json(members.iter().map(wire::member_view).collect()))
}

pub(crate) async fn add_member(
    State(api): State<Api>,
    Json(request): Json<MemberRequest>,
) -> Result<Json<MemberView>, Error> {
    let key = api
        .shared
        .read(move |service| service.add_member(&request.name))
        .await?;
    Ok(Json(wire::member_view(&crate::service::Member {
        key,
        revoked_after: None,
    })))
}

pub(crate) async fn revoke_member(
    State(api): State<Api>,
    Json(request): Json<RevokeRequest>,
) -> Result<Json<PublishedView>, Error> {
    published(
        super::web::members::revoke_member(
            &api.shared,
            &api.pages.accounts,
            &api.pages.sessions,
            &request.name,
            request.reason,
        )
        .await?,
    )
}

/// An invitation for a member to log in to the page on the organisation's network.
pub(crate) async fn invite_member(
    State(api): State<Api>,
    Json(request): Json<InviteMemberRequest>,
) -> Result<Json<MemberInviteView>, Error> {
    let page = api
        .pages
        .network
        .as_deref()
        .ok_or_else(|| Error::BadRequest(super::web::members::NOT_ON_NETWORK.into()))?;
    let role = if request.admin {
        super::web::accounts::Role::Admin
    } else {
        super::web::accounts::Role::Member
    };
    Ok(Json(
        super::web::members::invite_member(
            &api.shared,
            &api.pages.accounts,
            &api.pages.sessions,
            page,
            &request.name,
            role,
            request.on_behalf,
        )
        .await?,
    ))
}

fn published((entry, shared): (cairn_core::Entry, bool)) -> Result<Json<PublishedView>, Error> {
    Ok(Json(wire::published_view(&entry, shared)))
}

/// Entries matching a full-text query, best first.
pub(crate) async fn search(
    State(api): State<Api>,
    Query(query): Query<SearchQuery>,
) -> Result<Json<FramesView>, Error> {
    let limit = query.limit.unwrap_or(crate::service::DEFAULT_PAGE);
    let listing = api
        .shared
        .read(move |service| service.search(&query.q, limit))
        .await?;
    Ok(Json(wire::listing_view(&listing)))
}

/// Rebuilds the search index from the store.
pub(crate) async fn reindex(State(api): State<Api>) -> Result<Json<ReindexView>, Error> {
    let entries = api.shared.read(|service| service.reindex()).await?;
    Ok(Json(ReindexView { entries }))
}

pub(crate) async fn add_peer(
    State(api): State<Api>,
    Json(request): Json<AddressRequest>,
) -> Result<Json<PeerAddedView>, Error> {
    let peer = api.shared.add_peer(&request.address).await?;
    Ok(Json(PeerAddedView {
        peer_id: peer.to_string(),
    }))
}

pub(crate) async fn forget_peer(
    State(api): State<Api>,
    Json(request): Json<AddressRequest>,
) -> Result<Json<ForgottenView>, Error> {
    let forgotten = api.shared.forget_remembered_peer(&request.address).await?;
    Ok(Json(ForgottenView { forgotten }))
}

pub(crate) async fn invite(
    State(api): State<Api>,
    Query(query): Query<InviteQuery>,
) -> Result<Json<TicketText>, Error> {
    let lifetime = query.expires_secs.map_or(
        crate::ticket::DEFAULT_LIFETIME,
        std::time::Duration::from_secs,
    );
    if lifetime.is_zero() || lifetime > crate::ticket::MAX_LIFETIME {
        return Err(Error::BadRequest(
            "an invitation lasts from a second to a year; choose a duration in between".into(),
        ));
    }
    Ok(Json(TicketText {
        ticket: api
            .shared
            .invite(lifetime, query.single_use)
            .await?
            .encode(),
    }))
}

pub(crate) async fn join(
    State(api): State<Api>,
    Json(request): Json<TicketText>,
) -> Result<Json<PeerAddedView>, Error> {
    let ticket = Ticket::decode(&request.ticket)?;
    let peer = api.shared.join(&ticket).await?;
    Ok(Json(PeerAddedView {
        peer_id: peer.to_string(),
    }))
}

pub(crate) async fn sync_now(
    State(api): State<Api>,
    Json(request): Json<SyncRequest>,
) -> Result<Json<SyncView>, Error> {
    let syncs = crate::daemon::sync::now(
        &api.shared,
        request.peer.as_deref(),
        request.space.as_deref(),
    )
    .await?;
    Ok(Json(SyncView { syncs }))
}

pub(crate) async fn sync_progress(State(api): State<Api>) -> Json<Progress> {
    Json(api.shared.sync_progress())
}

/// Gossip and connection counters in the OpenMetrics text format, for Prometheus.
pub(crate) async fn metrics(State(api): State<Api>) -> Result<Response, Error> {
    let text = api.shared.client().metrics().await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

pub(crate) async fn spaces(State(api): State<Api>) -> Json<SpacesView> {
    Json(SpacesView {
        spaces: api.shared.spaces(),
    })
}

pub(crate) async fn join_space(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> Result<Json<SpacesView>, Error> {
    api.shared.join_space(&name).await?;
    Ok(Json(SpacesView {
        spaces: api.shared.spaces(),
    }))
}

pub(crate) async fn leave_space(
    State(api): State<Api>,
    Path(name): Path<String>,
) -> Result<Json<SpacesView>, Error> {
    api.shared.leave_space(&name).await?;
    Ok(Json(SpacesView {
        spaces: api.shared.spaces(),
    }))
}
