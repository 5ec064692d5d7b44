//! Login codes and browser sessions. Both live in memory only (a restarted node asks members
//! to log in again), both are bounded in number and lifetime, and all secrets are 256-bit
//! random values compared in constant time. A session is either the node's own member's (from
//! a `cairn open` link on loopback) or a member account's (a passphrase login on the
//! organisation's network); ending a member's sessions is how revocation takes effect at once.

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
const MAX_SESSIONS: usize = 256;
/// Sessions one person (the node's own member, or one account) holds at once: logging in
/// again and again gives way to their own oldest, never to someone else's.
const MAX_SESSIONS_EACH: usize = 8;

/// Whose session it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// The node's own member, who holds the API token (an admin).
    Node,
    /// A member account, by handle.
    Member(String),
}

#[derive(Debug)]
pub(crate) struct Sessions {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Login code → when it expires.
    codes: HashMap<String, Instant>,
    /// Session id → its record.
    sessions: HashMap<String, Record>,
}

#[derive(Debug)]
struct Record {
    csrf: String,
    expires: Instant,
    who: Who,
}

impl Sessions {
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
        }
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

    /// Spends a login code: returns a new session id for the node's own member, or `None` if
    /// the code is unknown, used or expired.
    pub fn redeem(&self, code: &str) -> Result<Option<String>, Error> {
        let now = Instant::now();
        let known = {
            let mut inner = self.lock();
            let known = inner
                .codes
                .keys()
                .find(|known| constant_time_eq(known.as_bytes(), code.as_bytes()))
                .cloned();
            known.and_then(|known| inner.codes.remove(&known))
        };
        if known.is_none_or(|expires| expires <= now) {
            return Ok(None);
        }
        self.start(Who::Node).map(Some)
    }

    /// Starts a session for `who`: returns its id. The oldest session gives way when there
    /// are too many.
    pub fn start(&self, who: Who) -> Result<String, Error> {
        let now = Instant::now();
        let (id, csrf) = (random_secret()?, random_secret()?);
        let mut inner = self.lock();
        inner.sessions.retain(|_, record| record.expires > now);
        let theirs = inner
            .sessions
            .values()
            .filter(|record| record.who == who)
            .count();
        let oldest = |inner: &Inner, only_theirs: bool| {
            inner
                .sessions
                .iter()
                .filter(|(_, record)| !only_theirs || record.who == who)
                .min_by_key(|(_, record)| record.expires)
                .map(|(id, _)| id.clone())
        };
        let give_way = if theirs >= MAX_SESSIONS_EACH {
            oldest(&inner, true)
        } else if inner.sessions.len() >= MAX_SESSIONS {
            oldest(&inner, false)
        } else {
            None
        };
        if let Some(id) = give_way {
            inner.sessions.remove(&id);
        }
        inner.sessions.insert(
            id.clone(),
            Record {
                csrf,
                expires: now + SESSION_LIFETIME,
                who,
            },
        );
        Ok(id)
    }

    /// The live session with this id: its CSRF token and whose it is.
    pub fn session(&self, id: &str) -> Option<(String, Who)> {
        let now = Instant::now();
        let inner = self.lock();
        inner
            .sessions
            .iter()
            .find(|(known, record)| {
                record.expires > now && constant_time_eq(known.as_bytes(), id.as_bytes())
            })
            .map(|(_, record)| (record.csrf.clone(), record.who.clone()))
    }

    /// Ends the session whose CSRF token this is.
    pub fn end(&self, csrf: &str) {
        self.lock().sessions.retain(|_, record| record.csrf != csrf);
    }

    /// Ends every session of member account `handle`.
    pub fn end_member(&self, handle: &str) {
        self.lock()
            .sessions
            .retain(|_, record| record.who != Who::Member(handle.to_string()));
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
        let sessions = Sessions::new();
        let code = sessions.new_login_code().expect("code");
        let id = sessions.redeem(&code).expect("redeems").expect("a session");
        assert!(
            sessions.redeem(&code).expect("runs").is_none(),
            "codes are single use"
        );
        assert!(sessions.redeem("not-a-code").expect("runs").is_none());
        let (csrf, who) = sessions.session(&id).expect("live session");
        assert_eq!(who, Who::Node);
        let member = sessions.start(Who::Member("dana".into())).expect("starts");
        assert!(sessions.session(&member).is_some());
        sessions.end_member("dana");
        assert!(sessions.session(&member).is_none(), "revocation ends it");
        assert!(sessions.session(&id).is_some(), "and only that member's");
        sessions.end(&csrf);
        assert!(sessions.session(&id).is_none(), "logging out ends it");
        for n in 0..MAX_SESSIONS + 5 {
            sessions
                .start(Who::Member(format!("member-{n}")))
                .expect("starts");
        }
        assert!(sessions.lock().sessions.len() <= MAX_SESSIONS);
        for _ in 0..MAX_CODES + 5 {
            sessions.new_login_code().expect("code");
        }
        assert!(sessions.lock().codes.len() <= MAX_CODES);
        for _ in 0..MAX_SESSIONS_EACH * 3 {
            sessions.start(Who::Member("eli".into())).expect("starts");
        }
        let elis = sessions
            .lock()
            .sessions
            .values()
            .filter(|record| record.who == Who::Member("eli".into()))
            .count();
        assert_eq!(
            elis, MAX_SESSIONS_EACH,
            "one person's logins give way to their own"
        );
    }
}
