//! Login codes and browser sessions. Both live in memory only (a restarted node asks for a
//! new `cairn open`), both are bounded in number and lifetime, and all secrets are 256-bit
//! random values compared in constant time.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Session;
use crate::Error;

/// How long a login link works.
pub const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// How long a browser stays logged in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
const MAX_CODES: usize = 16;
const MAX_SESSIONS: usize = 64;

#[derive(Debug)]
pub(crate) struct Sessions {
    cookie_name: String,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Login code → when it expires.
    codes: HashMap<String, Instant>,
    /// Session id → (CSRF token, when it expires).
    sessions: HashMap<String, (String, Instant)>,
}

impl Sessions {
    pub fn new(port: u16) -> Self {
        Self {
            cookie_name: format!("cairn_session_{port}"),
            inner: Mutex::new(Inner::default()),
        }
    }

    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// A new one-time login code. The oldest code gives way when too many are outstanding.
    pub fn new_login_code(&self) -> Result<String, Error> {
        let code = random_secret()?;
        let now = Instant::now();
        let mut inner = self.lock();
        inner.codes.retain(|_, expires| *expires > now);
        if inner.codes.len() >= MAX_CODES
            && let Some(oldest) = oldest_key(&inner.codes)
        {
            inner.codes.remove(&oldest);
        }
        inner.codes.insert(code.clone(), now + CODE_LIFETIME);
        Ok(code)
    }

    /// Spends a login code: returns a new session id, or `None` if the code is unknown,
    /// used or expired. The oldest session gives way when there are too many.
    pub fn redeem(&self, code: &str) -> Result<Option<String>, Error> {
        let now = Instant::now();
        let (id, csrf) = (random_secret()?, random_secret()?);
        let mut inner = self.lock();
        let known = inner
            .codes
            .keys()
            .find(|known| constant_time_eq(known.as_bytes(), code.as_bytes()))
            .cloned();
        let Some(known) = known else {
            return Ok(None);
        };
        let expires = inner.codes.remove(&known);
        if expires.is_none_or(|expires| expires <= now) {
            return Ok(None);
        }
        inner.sessions.retain(|_, (_, expires)| *expires > now);
        if inner.sessions.len() >= MAX_SESSIONS {
            let oldest = inner
                .sessions
                .iter()
                .min_by_key(|(_, (_, expires))| *expires)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                inner.sessions.remove(&oldest);
            }
        }
        inner
            .sessions
            .insert(id.clone(), (csrf, now + SESSION_LIFETIME));
        Ok(Some(id))
    }

    /// The live session with this id.
    pub fn session(&self, id: &str) -> Option<Session> {
        let now = Instant::now();
        let inner = self.lock();
        inner
            .sessions
            .iter()
            .find(|(known, (_, expires))| {
                *expires > now && constant_time_eq(known.as_bytes(), id.as_bytes())
            })
            .map(|(_, (csrf, _))| Session { csrf: csrf.clone() })
    }

    /// Ends the session whose CSRF token this is.
    pub fn end(&self, csrf: &str) {
        self.lock().sessions.retain(|_, (known, _)| known != csrf);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Session {
    /// Whether a form carried this session's CSRF token.
    pub fn csrf_matches(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|token| constant_time_eq(token.as_bytes(), self.csrf.as_bytes()))
    }
}

fn oldest_key(map: &HashMap<String, Instant>) -> Option<String> {
    map.iter()
        .min_by_key(|(_, expires)| **expires)
        .map(|(key, _)| key.clone())
}

pub(crate) fn random_secret() -> Result<String, Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|err| Error::Task(format!("no randomness for a session secret: {err}")))?;
    Ok(hex::encode(bytes))
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_works_once_and_sessions_are_bounded() {
        let sessions = Sessions::new(1);
        let code = sessions.new_login_code().expect("code");
        let id = sessions.redeem(&code).expect("redeems").expect("a session");
        assert!(
            sessions.redeem(&code).expect("runs").is_none(),
            "codes are single use"
        );
        assert!(sessions.redeem("not-a-code").expect("runs").is_none());
        let session = sessions.session(&id).expect("live session");
        assert!(session.csrf_matches(Some(&session.csrf)));
        assert!(!session.csrf_matches(Some("wrong")));
        assert!(!session.csrf_matches(None));
        for _ in 0..MAX_SESSIONS + 5 {
            let code = sessions.new_login_code().expect("code");
            sessions.redeem(&code).expect("redeems");
        }
        assert!(sessions.lock().sessions.len() <= MAX_SESSIONS);
        for _ in 0..MAX_CODES + 5 {
            sessions.new_login_code().expect("code");
        }
        assert!(sessions.lock().codes.len() <= MAX_CODES);
        sessions.end(&session.csrf);
        assert!(sessions.session(&id).is_none());
    }
}
