//! Logging in and out. On loopback, `GET /login?code=…` spends a one-time code from
//! `cairn open`. On the organisation's network, `GET`/`POST /login` take a member's name and
//! passphrase (rate-limited, with lockouts), and `GET`/`POST /welcome?code=…` spend an
//! invitation from `cairn member invite` to choose the passphrase. `POST /logout` on both.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Extension, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::accounts::{FAILURES_PER_ADDRESS, PASSPHRASE_CHARS, Refusal};
use super::page::{Form, PageResult, posted_form, render_as};
use super::session::Who;
use super::{ClientAddress, Session, Surface, Web, foreign_post, message};
use crate::Error;

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    code: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    org_name: &'a str,
    name: &'a str,
    error: &'a str,
}

#[derive(Template)]
#[template(path = "welcome.html")]
struct WelcomePage<'a> {
    org_name: &'a str,
    member_name: &'a str,
    code: &'a str,
    fingerprint: &'a str,
    error: &'a str,
    min_chars: usize,
}

/// `GET /login`: on loopback, spends a `cairn open` code; on the network, the login form.
pub async fn login(State(web): State<Web>, Query(query): Query<LoginQuery>) -> PageResult {
    match (web.surface, query.code) {
        (Surface::Loopback { .. }, Some(code)) => {
            let Some(session_id) = web.sessions.redeem(&code)? else {
                return Ok(message(
                    StatusCode::UNAUTHORIZED,
                    "This login link no longer works",
                    "Each link works once, for 10 minutes. Run `cairn open` again for a new one.",
                ));
            };
            with_session_cookie(&web, &session_id, Redirect::to("/").into_response())
        }
        (Surface::Loopback { .. }, None) => Ok(message(
            StatusCode::UNAUTHORIZED,
            "Please log in",
            "Run `cairn open` on this computer and follow the link it prints.",
        )),
        (Surface::Network, _) => login_form(&web, "", "", StatusCode::OK),
    }
}

fn login_form(web: &Web, name: &str, error: &str, status: StatusCode) -> PageResult {
    let org_name = web.shared.credential().claims().org_name.clone();
    render_as(
        status,
        &LoginPage {
            org_name: &org_name,
            name,
            error,
        },
    )
}

/// `POST /login` (network only): a member account's name and passphrase.
pub async fn log_in(State(web): State<Web>, request: Request) -> PageResult {
    if !matches!(web.surface, Surface::Network) {
        return Ok(message(
            StatusCode::NOT_FOUND,
            "No login form here",
            "On this computer, run `cairn open` and follow the link it prints.",
        ));
    }
    if let Some(refusal) = foreign_post(&web, &request) {
        return Ok(refusal);
    }
    let client = request.extensions().get::<ClientAddress>().copied();
    let body = axum::body::to_bytes(request.into_body(), super::super::MAX_BODY)
        .await
        .map_err(|err| Error::BadRequest(format!("could not read the form: {err}")))?;
    let form = Form::parse(&body);
    let name = form.get("name").unwrap_or_default().trim().to_string();
    let passphrase = form.get("passphrase").unwrap_or_default();
    let Some(ClientAddress(client)) = client else {
        return Err(
            Error::Task("the page server did not say where a login came from".into()).into(),
        );
    };
    let handle = crate::service::keystore::handle(&name).unwrap_or_default();
    let refused = |error: &str, status| login_form(&web, &name, error, status);
    match web.accounts.log_in(&handle, passphrase, client).await? {
        Ok(()) => {
            // Revoked since the account was made (perhaps with the node stopped): refused,
            // and the account goes.
            if web.shared.member_revoked(&handle).await? {
                web.accounts.remove(&handle).await?;
                tracing::info!(member = %handle, "login refused: the member was revoked");
                return refused(
                    "This account no longer works: the member was removed from the organisation.",
                    StatusCode::FORBIDDEN,
                );
            }
            tracing::info!(member = %handle, %client, "member logged in to the page");
            let session_id = web.sessions.start(Who::Member(handle))?;
            with_session_cookie(&web, &session_id, Redirect::to("/").into_response())
        }
        Err(Refusal::Wrong) => {
            tracing::info!(%client, "failed login to the page");
            refused(
                &format!(
                    "That name and passphrase do not match an account here. After {FAILURES_PER_ADDRESS} failed tries, logins from your computer wait 15 minutes. If you have forgotten your passphrase, ask an admin for a new invitation."
                ),
                StatusCode::UNAUTHORIZED,
            )
        }
        Err(Refusal::LockedOut { minutes }) => {
            tracing::warn!(%client, member = %handle, "login refused: locked out after repeated failures");
            refused(
                &format!(
                    "Too many failed logins. Try again in {minutes} minutes, or ask an admin for a new invitation."
                ),
                StatusCode::TOO_MANY_REQUESTS,
            )
        }
        Err(Refusal::Busy) => refused(
            "The node is busy checking other logins. Try again in a minute.",
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    }
}

/// `GET /welcome?code=…` (network only): choose a passphrase with an invitation.
pub async fn welcome(State(web): State<Web>, Query(query): Query<LoginQuery>) -> PageResult {
    let code = query.code.unwrap_or_default();
    welcome_form(&web, &code, "", StatusCode::OK)
}

fn welcome_form(web: &Web, code: &str, error: &str, status: StatusCode) -> PageResult {
    let (Surface::Network, Some(page)) = (web.surface, web.network.as_deref()) else {
        return Ok(message(
            StatusCode::NOT_FOUND,
            "Invitations open on the organisation's network",
            "Open the invitation link exactly as the admin gave it to you.",
        ));
    };
    let Some((_, member_name)) = web.accounts.invited(code) else {
        return Ok(message(
            StatusCode::UNAUTHORIZED,
            "This invitation no longer works",
            "Each invitation works once, for 7 days. Ask an admin for a new one.",
        ));
    };
    let org_name = web.shared.credential().claims().org_name.clone();
    render_as(
        status,
        &WelcomePage {
            org_name: &org_name,
            member_name: &member_name,
            code,
            fingerprint: page.fingerprint.as_deref().unwrap_or_default(),
            error,
            min_chars: *PASSPHRASE_CHARS.start(),
        },
    )
}

/// `POST /welcome`: sets the passphrase, spends the invitation and logs the member in.
pub async fn accept(State(web): State<Web>, request: Request) -> PageResult {
    if !matches!(web.surface, Surface::Network) {
        return welcome_form(&web, "", "", StatusCode::NOT_FOUND);
    }
    if let Some(refusal) = foreign_post(&web, &request) {
        return Ok(refusal);
    }
    let body = axum::body::to_bytes(request.into_body(), super::super::MAX_BODY)
        .await
        .map_err(|err| Error::BadRequest(format!("could not read the form: {err}")))?;
    let form = Form::parse(&body);
    let code = form.get("code").unwrap_or_default();
    let passphrase = form.get("passphrase").unwrap_or_default();
    if passphrase != form.get("again").unwrap_or_default() {
        return welcome_form(
            &web,
            code,
            "The two passphrases differ. Type the same one twice.",
            StatusCode::UNPROCESSABLE_ENTITY,
        );
    }
    // Revoked since the invitation (perhaps with the node stopped): the account goes.
    if let Some((handle, _)) = web.accounts.invited(code)
        && web.shared.member_revoked(&handle).await?
    {
        web.accounts.remove(&handle).await?;
        tracing::info!(member = %handle, "invitation refused: the member was revoked");
        return welcome_form(&web, code, "", StatusCode::UNAUTHORIZED);
    }
    let accepted = match web.accounts.accept(code, passphrase).await {
        Ok(accepted) => accepted,
        Err(Error::BadRequest(reason)) => {
            return welcome_form(&web, code, &reason, StatusCode::UNPROCESSABLE_ENTITY);
        }
        Err(err) => return Err(err.into()),
    };
    let Some(handle) = accepted else {
        return welcome_form(&web, code, "", StatusCode::UNAUTHORIZED);
    };
    tracing::info!(member = %handle, "member accepted an invitation to the page");
    // A new passphrase logs out whoever used the old one.
    web.sessions.end_member(&handle);
    let session_id = web.sessions.start(Who::Member(handle))?;
    with_session_cookie(&web, &session_id, Redirect::to("/").into_response())
}

fn with_session_cookie(web: &Web, session_id: &str, mut response: Response) -> PageResult {
    let cookie = format!(
        "{}={session_id}; {}; Max-Age={}",
        web.surface.cookie_name(),
        web.surface.cookie_attributes(),
        super::session::SESSION_LIFETIME.as_secs()
    );
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|err| Error::Task(err.to_string()))?,
    );
    Ok(response)
}

pub async fn logout(
    State(web): State<Web>,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> PageResult {
    posted_form(&session, &body)?;
    web.sessions.end(&session.csrf);
    let again = match web.surface {
        Surface::Loopback { .. } => "Run `cairn open` when you want to come back.",
        Surface::Network => {
            "Log in again with your name and passphrase when you want to come back."
        }
    };
    let mut response = message(StatusCode::OK, "Logged out", again);
    let cookie = format!(
        "{}=; {}; Max-Age=0",
        web.surface.cookie_name(),
        web.surface.cookie_attributes()
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}
