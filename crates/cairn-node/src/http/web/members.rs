//! `GET /members` (admins): the organisation's members and their accounts on the page; `POST
//! /members/add`, `/members/invite` and `/members/revoke`. Inviting and revoking are written
//! once here, for the page and the API (`cairn member invite`, `cairn member revoke`).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Extension, State};
use cairn_api::MemberInviteView;

use super::accounts::{Accounts, Role};
use super::page::{Chrome, Outcome, PageResult, posted_form, render_as};
use super::session::Sessions;
use super::{NetworkPage, Session, Web};
use crate::Error;
use crate::daemon::Shared;

#[derive(Template)]
#[template(path = "members.html")]
struct MembersPage {
    chrome: Chrome,
    members: Vec<MemberRow>,
    /// An invitation just made, to pass on.
    invitation: Option<MemberInviteView>,
    outcome: Outcome,
    /// Whether the page is served on the organisation's network (invitations need it).
    on_network: bool,
}

struct MemberRow {
    handle: String,
    name: String,
    short_id: String,
    revoked: bool,
    account: String,
}

pub async fn members(State(web): State<Web>, Extension(session): Extension<Session>) -> PageResult {
    members_page(&web, &session, None, Outcome::default()).await
}

async fn members_page(
    web: &Web,
    session: &Session,
    invitation: Option<MemberInviteView>,
    outcome: Outcome,
) -> PageResult {
    let members = web.shared.read(|service| service.members()).await?;
    let accounts = web.accounts.list();
    let rows = members
        .into_iter()
        .map(|member| {
            let account = accounts
                .iter()
                .find(|account| account.handle == member.key.handle);
            let account = match (member.revoked_after, account) {
                (Some(_), _) => "revoked: cannot log in".to_string(),
                (None, None) => "no account on the page".to_string(),
                (None, Some(account)) => {
                    let mut text = format!("{} account", account.role.as_str());
                    if account.on_behalf {
                        text.push_str(", may publish for the organisation");
                    }
                    text.push_str(if account.can_log_in {
                        "; can log in"
                    } else {
                        "; has not set a passphrase yet"
                    });
                    if let Some(until) = account.invited_until {
                        text.push_str(&format!(
                            "; invitation open until {}",
                            humantime::format_rfc3339_seconds(until)
                        ));
                    }
                    text
                }
            };
            MemberRow {
                handle: member.key.handle,
                name: cairn_core::display::printable(
                    &member.key.name,
                    cairn_core::display::Lines::One,
                ),
                short_id: member.key.member.to_string().chars().take(12).collect(),
                revoked: member.revoked_after.is_some(),
                account,
            }
        })
        .collect();
    render_as(
        outcome.status(),
        &MembersPage {
            chrome: Chrome::new(web, session, "Members", "/members"),
            members: rows,
            invitation,
            outcome,
            on_network: web.network.is_some(),
        },
    )
}

pub async fn add(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> PageResult {
    let form = posted_form(&session, &body)?;
    let name = form.get("name").unwrap_or_default().trim().to_string();
    let added = web
        .shared
        .read(move |service| service.add_member(&name))
        .await
        .map(|key| format!("Added {}. Invite them below to let them log in.", key.name));
    members_page(&web, &session, None, Outcome::of(added)).await
}

pub async fn invite(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> PageResult {
    let form = posted_form(&session, &body)?;
    let name = form.get("name").unwrap_or_default().to_string();
    let role = Role::parse(form.get("role").unwrap_or("member"))?;
    let on_behalf = form.get("on_behalf") == Some("yes");
    let Some(page) = web.network.as_deref() else {
        let refused = Outcome::of(Err(Error::BadRequest(NOT_ON_NETWORK.into())));
        return members_page(&web, &session, None, refused).await;
    };
    match invite_member(
        &web.shared,
        &web.accounts,
        &web.sessions,
        page,
        &name,
        role,
        on_behalf,
    )
    .await
    {
        Ok(invitation) => members_page(&web, &session, Some(invitation), Outcome::default()).await,
        Err(err) => members_page(&web, &session, None, Outcome::of(Err(err))).await,
    }
}

pub async fn revoke(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> PageResult {
    let form = posted_form(&session, &body)?;
    let name = form.get("name").unwrap_or_default().to_string();
    let reason = form.get("reason").unwrap_or_default().to_string();
    let revoked = revoke_member(&web.shared, &web.accounts, &web.sessions, &name, reason)
        .await
        .map(|_| {
            format!(
                "Revoked {name}: their account is closed and their later entries will be refused everywhere."
            )
        });
    members_page(&web, &session, None, Outcome::of(revoked)).await
}

pub(crate) const NOT_ON_NETWORK: &str = "the node does not serve the page on your organisation's network, so there is nowhere to invite members to; start it with `cairn node --web ADDRESS` (see docs/operating.md)";

/// Invites member `name` to log in to the page on the network with `role`.
pub(crate) async fn invite_member(
    shared: &Shared,
    accounts: &Accounts,
    sessions: &Sessions,
    page: &NetworkPage,
    name: &str,
    role: Role,
    on_behalf: bool,
) -> Result<MemberInviteView, Error> {
    let handle = crate::service::keystore::handle(name)?;
    let wanted = handle.clone();
    let member = shared
        .read(move |service| {
            let members = service.members()?;
            Ok(members.into_iter().find(|member| member.key.handle == wanted))
        })
        .await?
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "no member {name:?} in this organisation; add them first with `cairn member add \"{name}\"`"
            ))
        })?;
    if member.revoked_after.is_some() {
        return Err(Error::BadRequest(format!(
            "{name:?} was revoked and cannot be invited again; add them as a new member"
        )));
    }
    let invitation = accounts
        .invite(&handle, &member.key.name, role, on_behalf)
        .await?;
    // Whoever used the old passphrase is logged out; the new link sets a new one.
    sessions.end_member(&handle);
    tracing::info!(member = %handle, role = role.as_str(), "invited a member to the page");
    Ok(MemberInviteView {
        name: member.key.name,
        role: role.as_str().into(),
        url: format!("{}/welcome?code={}", page.url, invitation.code),
        fingerprint: page.fingerprint.clone(),
        expires: humantime::format_rfc3339_seconds(invitation.expires).to_string(),
    })
}

/// Closes the accounts of members revoked by other means than [`revoke_member`] (the CLI
/// with the node stopped, or a revocation from another node of the organisation) and ends
/// their sessions. Returns their handles.
pub(crate) async fn close_revoked_accounts(
    shared: &Shared,
    accounts: &Accounts,
    sessions: &Sessions,
) -> Result<Vec<String>, Error> {
    if accounts.list().is_empty() {
        return Ok(Vec::new());
    }
    let allowed = shared.active_members().await?;
    let closed = accounts
        .keep_only(|handle| allowed.iter().any(|member| member == handle))
        .await?;
    for handle in &closed {
        sessions.end_member(handle);
    }
    if !closed.is_empty() {
        tracing::info!(members = %closed.join(", "), "closed the page accounts of revoked members");
    }
    Ok(closed)
}

/// Revokes member `name`: publishes the revocation, closes their account and ends their
/// sessions at once.
pub(crate) async fn revoke_member(
    shared: &Shared,
    accounts: &Accounts,
    sessions: &Sessions,
    name: &str,
    reason: String,
) -> Result<(cairn_core::Entry, bool), Error> {
    let owned = name.to_string();
    let published = shared
        .write(move |service| service.revoke(&owned, reason))
        .await?;
    let handle = crate::service::keystore::handle(name)?;
    sessions.end_member(&handle);
    accounts.remove(&handle).await?;
    tracing::info!(member = %handle, "revoked a member; their page account is closed");
    Ok(published)
}
