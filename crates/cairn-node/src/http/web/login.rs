//! `GET /login` (spending a one-time code from `cairn open`) and `POST /logout`.

use axum::body::Bytes;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use super::{Session, Web, message};
use crate::Error;

use super::page::{Form, PageResult, check_csrf};

/// `GET /login?code=…`: spends a one-time code from `cairn open` and starts a session.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    code: String,
}

pub async fn login(State(web): State<Web>, Query(query): Query<LoginQuery>) -> PageResult {
    let Some(session_id) = web.sessions.redeem(&query.code)? else {
        return Ok(message(
            StatusCode::UNAUTHORIZED,
            "This login link no longer works",
            "Each link works once, for 10 minutes. Run `cairn open` again for a new one.",
        ));
    };
    let cookie = format!(
        "{}={session_id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        web.sessions.cookie_name(),
        super::session::SESSION_LIFETIME.as_secs()
    );
    let mut response = Redirect::to("/").into_response();
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
    let form = Form::parse(&body);
    check_csrf(&session, &form)?;
    web.sessions.end(&session.csrf);
    let mut response = message(
        StatusCode::OK,
        "Logged out",
        "Run `cairn open` when you want to come back.",
    );
    let cookie = format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        web.sessions.cookie_name()
    );
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Ok(response)
}
