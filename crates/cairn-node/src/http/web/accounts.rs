//! Members' accounts on the page served to the organisation's network: who may log in from
//! another computer, with which role, their passphrase (an argon2id hash, never the
//! passphrase) and their one-time invitation (a SHA-256 of its code, never the code). Kept in
//! `web/accounts.json` (0600), replaced whole on each change.
//!
//! Also owns the login limits: failed logins are counted per client address (IPv6 by /64) and
//! per account, each locking out for [`LOCKOUT`] after too many; hashing runs on at most
//! [`HASHING_AT_ONCE`] blocking threads, so a burst of logins cannot take the node's memory.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::session::random_secret;
use crate::Error;

/// How long an invitation link works.
pub const INVITATION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Failed logins from one address, within [`LOCKOUT`], before it is locked out.
pub const FAILURES_PER_ADDRESS: u32 = 5;
/// Failed logins to one account, from anywhere, within [`LOCKOUT`], before it is locked out.
pub const FAILURES_PER_ACCOUNT: u32 = 10;
/// How long a lockout lasts, and the window failures are counted in.
pub const LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// Passphrase hashes computed at once; each takes [`MEMORY_KIB`] of memory.
pub const HASHING_AT_ONCE: usize = 2;
/// The shortest and longest passphrase accepted, in characters.
pub const PASSPHRASE_CHARS: std::ops::RangeInclusive<usize> = 10..=256;
/// argon2id's memory per hash, and its passes (OWASP's recommended minimum: 19 MiB, 2).
const MEMORY_KIB: u32 = 19 * 1024;
const PASSES: u32 = 2;
/// Client addresses, and names tried, whose failures are remembered at once (each).
const MAX_TRACKED: usize = 4096;

/// What a logged-in person may do on the page.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads, writes, replies and responds as themselves.
    Member,
    /// Also manages members, follows, blocks, policy and spaces.
    Admin,
}

impl Role {
    pub fn parse(text: &str) -> Result<Self, Error> {
        match text {
            "member" => Ok(Self::Member),
            "admin" => Ok(Self::Admin),
            other => Err(Error::BadRequest(format!(
                "{other:?} is not a role; use \"member\" or \"admin\""
            ))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Admin => "admin",
        }
    }
}

/// One member's account, as kept on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Account {
    /// The member's name, as in their credential.
    name: String,
    role: Role,
    /// Whether they may also publish on behalf of the organisation.
    on_behalf: bool,
    /// argon2id, in the PHC string format; `None` until they accept an invitation.
    passphrase: Option<String>,
    invitation: Option<Invitation>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Invitation {
    /// SHA-256 of the code, in hex.
    code_sha256: String,
    /// Seconds since the Unix epoch.
    expires: u64,
}

/// What the page shows of an account.
#[derive(Debug, Clone)]
pub struct AccountView {
    pub handle: String,
    pub role: Role,
    pub on_behalf: bool,
    pub can_log_in: bool,
    /// When the outstanding invitation expires, if there is one.
    pub invited_until: Option<SystemTime>,
}

/// What a live account may do now: looked up on every request, so a change or a revocation
/// applies at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub name: String,
    pub role: Role,
    pub on_behalf: bool,
}

/// A new invitation: the code to put in the link (shown once, kept only as a hash).
#[derive(Debug, Clone)]
pub struct NewInvitation {
    pub code: String,
    pub expires: SystemTime,
}

/// Why a login was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Wrong name or passphrase (never says which).
    Wrong,
    /// Too many failures: from this address, or to this account.
    LockedOut { minutes: u64 },
    /// Every hashing slot stayed busy.
    Busy,
}

#[derive(Debug)]
pub struct Accounts {
    path: PathBuf,
    inner: Mutex<Inner>,
    /// Held across each change: the file is written (off the async threads) and the new
    /// accounts put in place in one step, so changes never interleave.
    changing: tokio::sync::Mutex<()>,
    hashing: tokio::sync::Semaphore,
}

#[derive(Debug, Default)]
struct Inner {
    accounts: BTreeMap<String, Account>,
    by_address: HashMap<IpAddr, Strikes>,
    /// By the name tried, whether or not it has an account: locking only real accounts
    /// would tell a guesser which names exist.
    by_account: HashMap<String, Strikes>,
}

/// Failures counted in a window, and the lockout they led to.
#[derive(Debug, Clone, Copy)]
struct Strikes {
    count: u32,
    since: Instant,
    locked_until: Option<Instant>,
}

impl Accounts {
    /// Reads the accounts file, or starts with none if there is no file yet.
    pub fn open(path: PathBuf) -> Result<Self, Error> {
        let accounts = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| {
                Error::BadRequest(format!(
                    "{} is damaged ({err}); restore it from a backup, or move it aside and invite the members again",
                    path.display()
                ))
            })?,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => {
                return Err(Error::File {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        Ok(Self {
            path,
            inner: Mutex::new(Inner {
                accounts,
                ..Inner::default()
            }),
            changing: tokio::sync::Mutex::new(()),
            hashing: tokio::sync::Semaphore::new(HASHING_AT_ONCE),
        })
    }

    /// Every account, by handle.
    pub fn list(&self) -> Vec<AccountView> {
        let inner = self.lock();
        inner
            .accounts
            .iter()
            .map(|(handle, account)| AccountView {
                handle: handle.clone(),
                role: account.role,
                on_behalf: account.on_behalf,
                can_log_in: account.passphrase.is_some(),
                invited_until: account
                    .invitation
                    .as_ref()
                    .filter(|invitation| invitation.expires > unix_now())
                    .map(|invitation| UNIX_EPOCH + Duration::from_secs(invitation.expires)),
            })
            .collect()
    }

    /// The standing of a live account.
    pub fn standing(&self, handle: &str) -> Option<Standing> {
        self.lock().accounts.get(handle).map(|account| Standing {
            name: account.name.clone(),
            role: account.role,
            on_behalf: account.on_behalf,
        })
    }

    /// Invites member `handle` (named `name`) with `role`: a new one-time code that replaces
    /// any earlier invitation, and the passphrase set before stops working (the caller ends
    /// the member's sessions). That is also how a forgotten or leaked passphrase is reset.
    pub async fn invite(
        &self,
        handle: &str,
        name: &str,
        role: Role,
        on_behalf: bool,
    ) -> Result<NewInvitation, Error> {
        let code = random_secret()?;
        let expires = unix_now() + INVITATION_LIFETIME.as_secs();
        let code_sha256 = sha256_hex(&code);
        self.change(|accounts| {
            accounts.insert(
                handle.to_string(),
                Account {
                    name: name.to_string(),
                    role,
                    on_behalf,
                    passphrase: None,
                    invitation: Some(Invitation {
                        code_sha256,
                        expires,
                    }),
                },
            );
            Ok(())
        })
        .await?;
        Ok(NewInvitation {
            code,
            expires: UNIX_EPOCH + Duration::from_secs(expires),
        })
    }

    /// The account an invitation code is for (handle and name), if it is live.
    pub fn invited(&self, code: &str) -> Option<(String, String)> {
        invited_in(&self.lock().accounts, code)
            .map(|(handle, account)| (handle.to_string(), account.name.clone()))
    }

    /// Spends invitation `code`, setting the passphrase: returns the account's handle, or
    /// `None` if the code is unknown, used or expired (checked again as it is spent, so one
    /// code starts one account only).
    pub async fn accept(&self, code: &str, passphrase: &str) -> Result<Option<String>, Error> {
        check_passphrase(passphrase)?;
        if self.invited(code).is_none() {
            return Ok(None);
        }
        let hash = self.hash(passphrase.to_string()).await?;
        let spent = self
            .change(|accounts| {
                let Some(handle) = invited_in(accounts, code).map(|(handle, _)| handle.to_string())
                else {
                    return Ok(None);
                };
                if let Some(account) = accounts.get_mut(&handle) {
                    account.passphrase = Some(hash);
                    account.invitation = None;
                }
                Ok(Some(handle))
            })
            .await?;
        if let Some(handle) = &spent {
            self.lock().by_account.remove(handle);
        }
        Ok(spent)
    }

    /// Checks a login by `handle` from `client`. The attempt counts as a failure toward both
    /// lockouts before the passphrase is checked (so attempts at once cannot pass a limit
    /// together), and is taken back if it was right.
    pub async fn log_in(
        &self,
        handle: &str,
        passphrase: &str,
        client: IpAddr,
    ) -> Result<Result<(), Refusal>, Error> {
        let client = client_key(client);
        let stored = {
            let mut inner = self.lock();
            let now = Instant::now();
            if let Some(minutes) = locked_out(&inner, client, handle, now) {
                return Ok(Err(Refusal::LockedOut { minutes }));
            }
            strike(&mut inner.by_address, client, FAILURES_PER_ADDRESS, now);
            strike(
                &mut inner.by_account,
                handle.to_string(),
                FAILURES_PER_ACCOUNT,
                now,
            );
            forget_oldest(&mut inner.by_address, now);
            forget_oldest(&mut inner.by_account, now);
            inner
                .accounts
                .get(handle)
                .and_then(|account| account.passphrase.clone())
        };
        let Ok(Ok(permit)) =
            tokio::time::timeout(Duration::from_secs(10), self.hashing.acquire()).await
        else {
            self.take_back(client, handle, false);
            return Ok(Err(Refusal::Busy));
        };
        let candidate = passphrase.to_string();
        // Unknown names cost the same hash as known ones, so timing does not tell them apart.
        let right = tokio::task::spawn_blocking(move || verify(stored.as_deref(), &candidate))
            .await
            .map_err(|err| Error::Task(format!("checking a passphrase failed: {err}")))?;
        drop(permit);
        if right {
            self.take_back(client, handle, true);
            Ok(Ok(()))
        } else {
            Ok(Err(Refusal::Wrong))
        }
    }

    /// Takes back the strike an attempt counted in advance; a right passphrase also clears
    /// the account's count.
    fn take_back(&self, client: IpAddr, handle: &str, right: bool) {
        let mut inner = self.lock();
        if let Some(strikes) = inner.by_address.get_mut(&client) {
            strikes.count = strikes.count.saturating_sub(1);
            if strikes.count < FAILURES_PER_ADDRESS {
                strikes.locked_until = None;
            }
        }
        if right {
            inner.by_account.remove(handle);
        } else if let Some(strikes) = inner.by_account.get_mut(handle) {
            strikes.count = strikes.count.saturating_sub(1);
            if strikes.count < FAILURES_PER_ACCOUNT {
                strikes.locked_until = None;
            }
        }
    }

    /// Removes member `handle`'s account (revoked): they cannot log in again.
    pub async fn remove(&self, handle: &str) -> Result<bool, Error> {
        self.change(|accounts| Ok(accounts.remove(handle).is_some()))
            .await
    }

    /// Removes the accounts of members no longer allowed (revoked while the node was
    /// stopped, say): the handles `allowed` does not accept.
    pub async fn keep_only(&self, allowed: impl Fn(&str) -> bool) -> Result<Vec<String>, Error> {
        self.change(|accounts| {
            let gone: Vec<String> = accounts
                .keys()
                .filter(|handle| !allowed(handle))
                .cloned()
                .collect();
            for handle in &gone {
                accounts.remove(handle);
            }
            Ok(gone)
        })
        .await
    }

    /// Applies `change` to a copy of the accounts, writes the file (on a blocking thread),
    /// then puts the copy in place. Nothing changes if writing fails.
    async fn change<T>(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, Account>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let _changing = self.changing.lock().await;
        let mut accounts = self.lock().accounts.clone();
        let answer = change(&mut accounts)?;
        let text = serde_json::to_string_pretty(&accounts)
            .map_err(|err| Error::Task(format!("could not write the accounts: {err}")))?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || write_private(&path, &text))
            .await
            .map_err(|err| Error::Task(format!("writing the accounts failed: {err}")))??;
        self.lock().accounts = accounts;
        Ok(answer)
    }

    async fn hash(&self, passphrase: String) -> Result<String, Error> {
        let _permit = self.hashing.acquire().await.map_err(|_| Error::Stopping)?;
        let mut salt = [0u8; 16];
        getrandom::fill(&mut salt)
            .map_err(|err| Error::Task(format!("no randomness for a salt: {err}")))?;
        tokio::task::spawn_blocking(move || {
            let salt = SaltString::encode_b64(&salt)
                .map_err(|err| Error::Task(format!("could not encode a salt: {err}")))?;
            hasher()
                .hash_password(passphrase.as_bytes(), &salt)
                .map(|hash| hash.to_string())
                .map_err(|err| Error::Task(format!("could not hash a passphrase: {err}")))
        })
        .await
        .map_err(|err| Error::Task(format!("hashing a passphrase failed: {err}")))?
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The account whose live invitation has this code.
fn invited_in<'a>(
    accounts: &'a BTreeMap<String, Account>,
    code: &str,
) -> Option<(&'a str, &'a Account)> {
    let wanted = sha256_hex(code);
    let now = unix_now();
    accounts
        .iter()
        .find(|(_, account)| {
            account.invitation.as_ref().is_some_and(|invitation| {
                invitation.expires > now
                    && super::session::constant_time_eq(
                        invitation.code_sha256.as_bytes(),
                        wanted.as_bytes(),
                    )
            })
        })
        .map(|(handle, account)| (handle.as_str(), account))
}

/// Minutes left of a lockout on this address or this account.
fn locked_out(inner: &Inner, client: IpAddr, handle: &str, now: Instant) -> Option<u64> {
    [inner.by_address.get(&client), inner.by_account.get(handle)]
        .into_iter()
        .flatten()
        .filter_map(|strikes| strikes.locked_until)
        .filter(|until| *until > now)
        .max()
        .map(|until| (until - now).as_secs().div_ceil(60))
}

/// Refuses passphrases too short to resist guessing, or too long to hash cheaply.
pub fn check_passphrase(passphrase: &str) -> Result<(), Error> {
    let chars = passphrase.chars().count();
    if PASSPHRASE_CHARS.contains(&chars) {
        Ok(())
    } else {
        Err(Error::BadRequest(format!(
            "choose a passphrase of {} to {} characters; a few ordinary words together make a good one",
            PASSPHRASE_CHARS.start(),
            PASSPHRASE_CHARS.end()
        )))
    }
}

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, 1, None).expect("argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Whether `candidate` matches `stored`; with nothing stored, a hash of the same cost is
/// still computed, and fails.
fn verify(stored: Option<&str>, candidate: &str) -> bool {
    const NOBODY: &str = "$argon2id$v=19$m=19456,t=2,p=1$bm9ib2R5bm9ib2R5$Yt2ZQ8tuh4a6dUTkUcqiCpa5aCaUIR0CZ1T8n71bbVM";
    let hash = stored.and_then(|text| PasswordHash::new(text).ok());
    match hash {
        Some(hash) => hasher()
            .verify_password(candidate.as_bytes(), &hash)
            .is_ok(),
        None => {
            if let Ok(nobody) = PasswordHash::new(NOBODY) {
                let _ = hasher().verify_password(candidate.as_bytes(), &nobody);
            }
            false
        }
    }
}

fn strike<K: std::hash::Hash + Eq>(
    map: &mut HashMap<K, Strikes>,
    key: K,
    limit: u32,
    now: Instant,
) {
    let strikes = map.entry(key).or_insert(Strikes {
        count: 0,
        since: now,
        locked_until: None,
    });
    if now.duration_since(strikes.since) > LOCKOUT {
        *strikes = Strikes {
            count: 0,
            since: now,
            locked_until: None,
        };
    }
    strikes.count += 1;
    if strikes.count >= limit {
        strikes.locked_until = Some(now + LOCKOUT);
    }
}

/// Drops expired records, then the oldest, to keep a map of strikes bounded.
fn forget_oldest<K: std::hash::Hash + Eq + Clone>(map: &mut HashMap<K, Strikes>, now: Instant) {
    if map.len() <= MAX_TRACKED {
        return;
    }
    map.retain(|_, strikes| {
        now.duration_since(strikes.since) <= LOCKOUT
            || strikes.locked_until.is_some_and(|until| until > now)
    });
    while map.len() > MAX_TRACKED {
        let Some(oldest) = map
            .iter()
            .min_by_key(|(_, strikes)| strikes.since)
            .map(|(key, _)| key.clone())
        else {
            break;
        };
        map.remove(&oldest);
    }
}

/// A client's address as limits count it: IPv6 by its /64, which one household or office
/// usually holds whole.
pub(crate) fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::from(octets)
            }
        },
    }
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Writes `text` to `path` whole (0600, its folder 0700), and syncs the folder so the
/// replacement itself survives a power cut.
pub(crate) fn write_private(path: &Path, text: &str) -> Result<(), Error> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let folder_error = |action, source| Error::File {
        action,
        path: dir.to_path_buf(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| folder_error("create", source))?;
    crate::service::keystore::replace_file(path, text, 0o600)?;
    fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(|source| folder_error("sync", source))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accounts() -> (tempfile::TempDir, Accounts) {
        let dir = tempfile::tempdir().expect("temp dir");
        let accounts = Accounts::open(dir.path().join("web/accounts.json")).expect("opens");
        (dir, accounts)
    }

    #[tokio::test]
    async fn an_invitation_sets_a_passphrase_once_and_survives_a_restart() {
        let (dir, accounts) = accounts();
        let invitation = accounts
            .invite("dana", "Dana", Role::Member, false)
            .await
            .expect("invites");
        assert_eq!(
            accounts.invited(&invitation.code),
            Some(("dana".into(), "Dana".into()))
        );
        assert!(
            accounts.accept(&invitation.code, "short").await.is_err(),
            "too short"
        );
        let client: IpAddr = "192.0.2.1".parse().expect("address");
        assert_eq!(
            accounts
                .accept(&invitation.code, "correct horse battery")
                .await
                .expect("accepts"),
            Some("dana".into())
        );
        assert_eq!(
            accounts
                .accept(&invitation.code, "another passphrase")
                .await
                .expect("runs"),
            None,
            "an invitation works once"
        );
        let reopened = Accounts::open(dir.path().join("web/accounts.json")).expect("reopens");
        assert_eq!(
            reopened
                .log_in("dana", "correct horse battery", client)
                .await
                .expect("runs"),
            Ok(())
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &fs::metadata(dir.path().join("web/accounts.json"))
                .expect("file")
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        assert!(reopened.remove("dana").await.expect("removes"));
        assert_eq!(
            reopened
                .log_in("dana", "correct horse battery", client)
                .await
                .expect("runs"),
            Err(Refusal::Wrong),
            "a removed account cannot log in"
        );
    }

    #[tokio::test]
    async fn repeated_failures_lock_out_the_address_and_then_the_account() {
        let (_dir, accounts) = accounts();
        let invitation = accounts
            .invite("dana", "Dana", Role::Admin, false)
            .await
            .expect("invites");
        accounts
            .accept(&invitation.code, "correct horse battery")
            .await
            .expect("accepts");
        let guesser: IpAddr = "192.0.2.9".parse().expect("address");
        for _ in 0..FAILURES_PER_ADDRESS {
            assert_eq!(
                accounts
                    .log_in("dana", "guess guess guess", guesser)
                    .await
                    .expect("runs"),
                Err(Refusal::Wrong)
            );
        }
        assert_eq!(
            accounts
                .log_in("dana", "correct horse battery", guesser)
                .await
                .expect("runs"),
            Err(Refusal::LockedOut { minutes: 15 }),
            "the guessing address is locked out, even with the right passphrase"
        );
        let member: IpAddr = "192.0.2.20".parse().expect("address");
        assert_eq!(
            accounts
                .log_in("dana", "correct horse battery", member)
                .await
                .expect("runs"),
            Ok(()),
            "the member's own address is not"
        );
        // Guessing spread over many addresses locks the account.
        for n in 0..FAILURES_PER_ACCOUNT {
            let from = IpAddr::from([198, 51, 100, n as u8]);
            let _ = accounts.log_in("dana", "guess guess guess", from).await;
        }
        assert!(matches!(
            accounts
                .log_in("dana", "correct horse battery", member)
                .await
                .expect("runs"),
            Err(Refusal::LockedOut { .. })
        ));
        // One /64 counts as one address.
        let a: IpAddr = "2001:db8::1".parse().expect("address");
        let b: IpAddr = "2001:db8::ffff".parse().expect("address");
        assert_eq!(client_key(a), client_key(b));
    }
}
