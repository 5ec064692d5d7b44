//! The HTTP edge: typed service results to the JSON shapes of `cairn-api` (for the node's API)
//! and back (for the CLI talking to a running node). Entries travel as hex frames, so the CLI
//! decodes and checks them with `cairn-core` rather than trusting a second rendering; hex and
//! id strings exist only here and in `cairn-api`.

use cairn_api::{FramesView, KnownOrgView, MemberView, OrgLabelView, ProfileView, PublishedView};
use cairn_core::{Entry, EntryId, Kind, MemberId, OrgId, Profile, RefKind};

use crate::Error;
use crate::service::names::{KnownOrg, OrgLabel, Standing};
use crate::service::{Listing, Member, Notes, Shown};

/// Entries and their notes as hex frames and id strings.
pub fn frames_view<'a>(
    entries: impl IntoIterator<Item = &'a Entry>,
    notes: &Notes,
    next: Option<String>,
) -> FramesView {
    let mut view = FramesView {
        next,
        ..FramesView::default()
    };
    for entry in entries {
        view.frames.push(hex::encode(entry.encode()));
        if let Some(revision) = notes.revision(entry) {
            view.revisions
                .insert(entry.id().to_string(), hex::encode(revision.encode()));
        }
        let author = entry.header().author.to_string();
        if notes.forked(entry) && !view.forked_authors.contains(&author) {
            view.forked_authors.push(author.clone());
        }
        if notes.former(entry) && !view.former_authors.contains(&author) {
            view.former_authors.push(author);
        }
        if let Some(reason) = notes.retracted(entry) {
            view.retracted
                .insert(entry.id().to_string(), reason.to_string());
        }
        if let Some(label) = notes.label(entry) {
            view.orgs
                .entry(label.org.to_string())
                .or_insert_with(|| label_view(label));
        }
    }
    view
}

/// How this node knows an organisation, as the API sends it.
pub fn label_view(label: &OrgLabel) -> OrgLabelView {
    OrgLabelView {
        standing: label.standing.as_str().to_string(),
        petname: label.petname.clone(),
        current_name: label.name.clone(),
        name_shared: label.name_shared,
    }
}

/// An organisation of the directory as the API sends it.
pub fn known_org_view(known: &KnownOrg) -> KnownOrgView {
    KnownOrgView {
        org: known.org().to_string(),
        name: known.own_name().to_string(),
        label: label_view(&known.label),
        latest: humantime::format_rfc3339_seconds(known.newest.header().created.to_system_time())
            .to_string(),
    }
}

/// A label read back from the API's answer. A standing this build does not know (from a
/// newer node) reads as a stranger's, the one that claims the least.
pub fn label_from(org: &str, view: &OrgLabelView) -> Result<OrgLabel, Error> {
    Ok(OrgLabel {
        org: parse_id::<OrgId>(org, "organisation")?,
        standing: Standing::parse(&view.standing).unwrap_or(Standing::Stranger),
        petname: view.petname.clone(),
        name: view.current_name.clone(),
        name_shared: view.name_shared,
    })
}

/// A listing's page as the API sends it.
pub fn listing_view(listing: &Listing) -> FramesView {
    frames_view(&listing.entries, &listing.notes, listing.next.clone())
}

/// An entry and what refers to it, the entry first.
pub fn shown_view(shown: &Shown) -> FramesView {
    frames_view(
        std::iter::once(&shown.entry).chain(&shown.related),
        &shown.notes,
        None,
    )
}

/// A listing read back from the API's answer.
pub fn listing_from(view: &FramesView) -> Result<Listing, Error> {
    let entries = entries_from(&view.frames)?;
    let mut notes = Notes::default();
    for author in &view.forked_authors {
        notes
            .forked_authors
            .insert(parse_id::<MemberId>(author, "author")?);
    }
    for author in &view.former_authors {
        notes
            .former_authors
            .insert(parse_id::<MemberId>(author, "author")?);
    }
    for (id, reason) in &view.retracted {
        notes
            .retracted
            .insert(parse_id::<EntryId>(id, "entry")?, reason.clone());
    }
    for (id, frame) in &view.revisions {
        notes
            .revisions
            .insert(parse_id::<EntryId>(id, "entry")?, entry_from(frame)?);
    }
    for (org, label) in &view.orgs {
        let label = label_from(org, label)?;
        notes.orgs.insert(label.org, label);
    }
    Ok(Listing {
        entries,
        notes,
        next: view.next.clone(),
    })
}

/// An entry and what refers to it, read back from the API's answer.
pub fn shown_from(view: &FramesView) -> Result<Shown, Error> {
    let Listing { entries, notes, .. } = listing_from(view)?;
    let mut entries = entries.into_iter();
    let entry = entries
        .next()
        .ok_or_else(|| Error::BadRequest("the node sent no entry".into()))?;
    Ok(Shown {
        entry,
        related: entries.collect(),
        notes,
    })
}

/// The answer to a request that published an entry.
pub fn published_view(entry: &Entry, shared: bool) -> PublishedView {
    PublishedView {
        id: entry.id().to_string(),
        frame: hex::encode(entry.encode()),
        shared,
    }
}

/// The entry a publishing request produced, read back from the API's answer.
pub fn published_from(view: &PublishedView) -> Result<Entry, Error> {
    entry_from(&view.frame)
}

/// An author's newest profile as readers see it.
pub fn profile_view(entry: &Entry, profile: Profile) -> ProfileView {
    ProfileView {
        author: entry.header().author.to_string(),
        name: entry.author_name().to_string(),
        about: profile.about,
        website: profile.website,
        contact: profile.contact,
        updated: humantime::format_rfc3339_seconds(entry.header().created.to_system_time())
            .to_string(),
    }
}

pub fn member_view(member: &Member) -> MemberView {
    MemberView {
        name: member.key.name.clone(),
        member: member.key.member.to_string(),
        revoked_after: member.revoked_after,
    }
}

/// Hex frames decoded into entries.
pub fn entries_from(frames: &[String]) -> Result<Vec<Entry>, Error> {
    frames.iter().map(|frame| entry_from(frame)).collect()
}

fn entry_from(frame: &str) -> Result<Entry, Error> {
    let bytes = hex::decode(frame).map_err(|_| {
        Error::BadRequest(
            "the node sent a frame that is not hex; are the CLI and the node the same version?"
                .into(),
        )
    })?;
    Ok(Entry::decode(&bytes)?)
}

fn parse_id<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, Error> {
    text.parse().map_err(|_| {
        Error::BadRequest(format!(
            "the node sent {text:?}, which is not an {what} id; are the CLI and the node the same version?"
        ))
    })
}

/// The key log's status as the API shows it.
pub fn key_log_view(status: &crate::service::KeyLogStatus) -> cairn_api::KeyLogView {
    cairn_api::KeyLogView {
        events: status.events,
        id_is_first_key: status.id_is_first_key,
        current_key: status.current_key.to_string(),
        next_key_here: status.next_key_here,
        duplicity: status.duplicity,
    }
}

/// The story a publish request asks for, with its links' types read; the links' targets are
/// looked up by the service.
pub fn new_story(request: cairn_api::PublishRequest) -> Result<crate::service::NewStory, Error> {
    let mut links = Vec::with_capacity(request.links.len());
    for link in request.links {
        let kind = RefKind::from_name(&link.kind)
            .filter(|kind| kind.is_story_link())
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "{:?} is not a link type; use builds-on, contradicts or tried-too",
                    link.kind
                ))
            })?;
        links.push((kind, link.target));
    }
    Ok(crate::service::NewStory {
        kind: Kind(request.kind),
        story: request.story,
        spaces: request.spaces,
        links,
    })
}

/// How other nodes can reach this node, with its summary in plain words. `org_of` names the
/// organisation behind a relay (from its binding); names are made printable here, since the
/// summary goes to terminals and the page as it is.
pub fn reachability_view(
    reachability: &cairn_net::Reachability,
    relay_offered: bool,
    org_of: impl Fn(&cairn_net::PeerId) -> Option<String>,
) -> cairn_api::ReachabilityView {
    use cairn_core::display::{Lines, printable};
    use cairn_net::Reachability;

    let list = |addresses: &[cairn_net::Multiaddr]| -> Vec<String> {
        addresses.iter().map(ToString::to_string).collect()
    };
    let (state, summary, addresses, relays) = match reachability {
        Reachability::Checking => (
            "checking",
            "not known yet: no peer has tested whether it can connect to this node".to_string(),
            Vec::new(),
            Vec::new(),
        ),
        Reachability::Direct { addresses } => (
            "direct",
            format!("reachable directly at {}", list(addresses).join(", ")),
            list(addresses),
            Vec::new(),
        ),
        Reachability::Relayed { relays, addresses } => {
            let relays: Vec<cairn_api::RelayView> = relays
                .iter()
                .map(|relay| cairn_api::RelayView {
                    peer_id: relay.to_string(),
                    org_name: org_of(relay).map(|name| printable(&name, Lines::One)),
                })
                .collect();
            let names: Vec<String> = relays
                .iter()
                .map(|relay| match &relay.org_name {
                    Some(name) => name.clone(),
                    None => format!("peer {}", relay.peer_id),
                })
                .collect();
            (
                "relayed",
                format!("reachable through the relay of {}", names.join(" and ")),
                list(addresses),
                relays,
            )
        }
        Reachability::Unreachable => (
            "unreachable",
            "not reachable: other nodes cannot connect to this one; it can still connect out"
                .to_string(),
            Vec::new(),
            Vec::new(),
        ),
    };
    cairn_api::ReachabilityView {
        state: state.to_string(),
        summary,
        addresses,
        relays,
        relay_offered,
    }
}
