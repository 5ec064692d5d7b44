//! The keys a node signs with, read from the home's `keys/` folder when needed: the member
//! key of the node's own member, the keys of members added with `cairn member add`
//! (`keys/members/NAME.key` and `.credential`), and the organisation's key for entries
//! published on its behalf and for revocations (with the organisation's credential for
//! itself, `keys/org.credential`, made on first use).
//!
//! The organisation's key event log is `keys/org.kel` (public, one hex event per line) and
//! the committed next key `keys/org.next.key` (0600), which the admin moves offline: it is the
//! only key that can rotate.
//!
//! Secret key files are 0600 and created once, never overwritten (a rotation replaces
//! `org.key` and `org.next.key` whole, by rename); a key file that other users can read is
//! refused with the command that fixes it.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cairn_core::kel::KeyEvent;
use cairn_core::{Credential, CredentialClaims, MemberId, OrgId, SecretKey, Timestamp};

use crate::Error;

/// A key and the credential that vouches for it.
#[derive(Debug, Clone)]
pub struct Signer {
    pub key: SecretKey,
    pub credential: Credential,
}

/// A member added to this home's keystore.
#[derive(Debug, Clone)]
pub struct MemberKey {
    /// The file name the member is kept under (their name in normal form).
    pub handle: String,
    pub member: MemberId,
    pub name: String,
}

/// The `keys/` folder of a home.
#[derive(Debug, Clone)]
pub struct Keystore {
    dir: PathBuf,
}

impl Keystore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn members_dir(&self) -> PathBuf {
        self.dir.join("members")
    }

    /// The organisation `org`'s current key, signing as the organisation itself.
    pub fn organisation(&self, org: OrgId, org_name: &str) -> Result<Signer, Error> {
        let key = read_key(&self.dir.join("org.key"))?;
        let path = self.dir.join("org.credential");
        if path.exists() {
            let credential = read_credential(&path)?;
            let claims = credential.claims();
            if claims.org_name == org_name
                && claims.org == org
                && credential.org_key() == key.member_id()
            {
                return Ok(Signer { key, credential });
            }
            // Renamed or rotated since: issue a new one below.
            fs::remove_file(&path).map_err(|source| Error::File {
                action: "replace",
                path: path.clone(),
                source,
            })?;
        }
        let credential = Credential::issue(
            &key,
            CredentialClaims {
                org,
                org_name: org_name.to_string(),
                member: key.member_id(),
                member_name: org_name.to_string(),
                issued: Timestamp::now(),
                expires: None,
            },
        )?;
        write_new(&path, &credential_text(&credential), 0o644)?;
        Ok(Signer { key, credential })
    }

    /// A member added with [`Keystore::add_member`], by name (any letter case).
    pub fn member(&self, name: &str) -> Result<Signer, Error> {
        let handle = handle(name)?;
        let key_path = self.members_dir().join(format!("{handle}.key"));
        if !key_path.exists() {
            return Err(Error::BadRequest(format!(
                "no member {name:?} in this home; add them with `cairn member add \"{name}\"` or see `cairn member list`"
            )));
        }
        let key = read_key(&key_path)?;
        let credential = read_credential(&key_path.with_extension("credential"))?;
        if credential.claims().member != key.member_id() {
            return Err(Error::BadRequest(format!(
                "{} does not belong to the key beside it; restore keys/members from a backup",
                key_path.with_extension("credential").display()
            )));
        }
        Ok(Signer { key, credential })
    }

    /// Creates a member key with its credential, signed by organisation `org`'s current key.
    pub fn add_member(&self, name: &str, org: OrgId, org_name: &str) -> Result<Signer, Error> {
        let name = name.trim();
        let handle = handle(name)?;
        let dir = self.members_dir();
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| Error::File {
                action: "create",
                path: dir.clone(),
                source,
            })?;
        let key_path = dir.join(format!("{handle}.key"));
        if key_path.exists() {
            return Err(Error::BadRequest(format!(
                "a member {name:?} already exists in this home; choose another name"
            )));
        }
        let org_key = read_key(&self.dir.join("org.key"))?;
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|err| Error::Task(format!("no randomness for a new key: {err}")))?;
        let key = SecretKey::from_seed(seed);
        let credential = Credential::issue(
            &org_key,
            CredentialClaims {
                org,
                org_name: org_name.to_string(),
                member: key.member_id(),
                member_name: name.to_string(),
                issued: Timestamp::now(),
                expires: None,
            },
        )?;
        write_new(
            &key_path,
            &format!(
                "# Cairn secret key of member {name:?}.\n# Whoever holds this file can publish as them: keep it private.\n{}\n",
                hex::encode(key.seed())
            ),
            0o600,
        )?;
        write_new(
            &key_path.with_extension("credential"),
            &credential_text(&credential),
            0o644,
        )?;
        Ok(Signer { key, credential })
    }

    /// The organisation's key event log as this home keeps it: empty if it has none (an
    /// organisation from before key logs that has not adopted one).
    pub fn key_log(&self) -> Result<Vec<KeyEvent>, Error> {
        let path = self.dir.join("org.kel");
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::File {
                    action: "read",
                    path,
                    source,
                });
            }
        };
        text.lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(|line| {
                hex::decode(line)
                    .ok()
                    .and_then(|bytes| KeyEvent::decode(&bytes).ok())
                    .ok_or_else(|| {
                        Error::BadRequest(format!(
                            "{} is damaged; restore it from a backup",
                            path.display()
                        ))
                    })
            })
            .collect()
    }

    /// Replaces the key log file with `events`.
    pub fn save_key_log(&self, events: &[KeyEvent]) -> Result<(), Error> {
        let mut text = String::from(
            "# The organisation's key event log: public, one event per line, oldest first.\n",
        );
        for event in events {
            text.push_str(&hex::encode(event.as_bytes()));
            text.push('\n');
        }
        replace_file(&self.dir.join("org.kel"), &text, 0o644)
    }

    /// The organisation's id: what its log's inception founds, else (no log) its key.
    pub fn org_id(&self) -> Result<OrgId, Error> {
        match self.key_log()?.first().and_then(KeyEvent::founds) {
            Some(org) => Ok(org),
            None => Ok(read_key(&self.dir.join("org.key"))?.org_id()),
        }
    }

    /// Where the committed next key is written.
    pub fn next_key_path(&self) -> PathBuf {
        self.dir.join("org.next.key")
    }

    /// Writes `next` as the committed next key of `org`, readable as a recovery sheet.
    pub fn save_next_key(&self, next: &SecretKey, org: OrgId, org_name: &str) -> Result<(), Error> {
        replace_file(
            &self.next_key_path(),
            &next_key_sheet(next, org, org_name),
            0o600,
        )
    }

    /// Replaces the organisation's current key (after a rotation).
    pub fn replace_org_key(&self, key: &SecretKey, org_name: &str) -> Result<(), Error> {
        replace_file(
            &self.dir.join("org.key"),
            &format!(
                "# Cairn secret key of the organisation {org_name:?}.\n# Whoever holds this file can publish as its owner: keep it private and back it up.\n{}\n",
                hex::encode(key.seed())
            ),
            0o600,
        )?;
        // Its credential for itself was the old key's.
        let _ = fs::remove_file(self.dir.join("org.credential"));
        Ok(())
    }

    /// Credentials again, signed by `org_key`, for the node's own member and every added
    /// member, keeping their names (after a rotation). Returns the node's own member's.
    pub fn reissue_credentials(&self, org_key: &SecretKey) -> Result<Credential, Error> {
        let own = self.dir.join("member.credential");
        let mut paths = vec![own.clone()];
        if let Ok(listing) = fs::read_dir(self.members_dir()) {
            paths.extend(
                listing
                    .filter_map(Result::ok)
                    .map(|item| item.path())
                    .filter(|path| path.extension().is_some_and(|ext| ext == "credential")),
            );
        }
        let mut own_credential = None;
        for path in paths {
            let old = read_credential(&path)?;
            let mut claims = old.claims().clone();
            claims.issued = Timestamp::now();
            let credential = Credential::issue(org_key, claims)?;
            replace_file(&path, &credential_text(&credential), 0o644)?;
            if path == own {
                own_credential = Some(credential);
            }
        }
        own_credential.ok_or_else(|| Error::BadRequest("this home has no member credential".into()))
    }

    /// Every member added to this home, by handle.
    pub fn members(&self) -> Result<Vec<MemberKey>, Error> {
        let dir = self.members_dir();
        let listing = match fs::read_dir(&dir) {
            Ok(listing) => listing,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(Error::File {
                    action: "read",
                    path: dir,
                    source,
                });
            }
        };
        let mut members = Vec::new();
        for item in listing {
            let path = item
                .map_err(|source| Error::File {
                    action: "read",
                    path: dir.clone(),
                    source,
                })?
                .path();
            if path.extension().is_some_and(|ext| ext == "credential") {
                let credential = read_credential(&path)?;
                let claims = credential.claims();
                members.push(MemberKey {
                    handle: path
                        .file_stem()
                        .map(|stem| stem.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    member: claims.member,
                    name: claims.member_name.clone(),
                });
            }
        }
        members.sort_by(|a, b| a.handle.cmp(&b.handle));
        Ok(members)
    }
}

/// A member's name in the form used for their key files: lowercase letters, digits and `-`.
pub(crate) fn handle(name: &str) -> Result<String, Error> {
    let handle: String = name
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    if handle.is_empty() || handle.len() > 64 {
        return Err(Error::BadRequest(format!(
            "{name:?} is not a usable member name; use 1 to 64 letters or digits"
        )));
    }
    Ok(handle)
}

/// Reads a secret key file (a comment and 64 hex digits), refusing one others can read.
pub fn read_key(path: &Path) -> Result<SecretKey, Error> {
    let file_error = |source| Error::File {
        action: "read",
        path: path.to_path_buf(),
        source,
    };
    let mode = fs::metadata(path).map_err(file_error)?.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::BadRequest(format!(
            "the secret key {} can be read by other users (mode {mode:o}); run `chmod 600 {}` and try again",
            path.display(),
            path.display()
        )));
    }
    let text = fs::read_to_string(path).map_err(file_error)?;
    let line = text
        .lines()
        .map(str::trim)
        .find(|line| !line.is_empty() && !line.starts_with('#'))
        .unwrap_or("");
    let mut seed = [0u8; 32];
    hex::decode_to_slice(line, &mut seed).map_err(|_| {
        Error::BadRequest(format!(
            "{} is damaged (no 64-digit key found); restore it from a backup",
            path.display()
        ))
    })?;
    Ok(SecretKey::from_seed(seed))
}

/// A credential file's text: its hex, after `2:` for a format 2 credential.
pub fn credential_text(credential: &Credential) -> String {
    match credential.header_version() {
        cairn_core::FORMAT_VERSION => format!("{}\n", hex::encode(credential.as_bytes())),
        version => format!("{version}:{}\n", hex::encode(credential.as_bytes())),
    }
}

/// Reads a credential file written by [`credential_text`].
pub fn read_credential(path: &Path) -> Result<Credential, Error> {
    let text = fs::read_to_string(path).map_err(|source| Error::File {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    let text = text.trim();
    let (version, hex_text) = match text.split_once(':') {
        Some((version, rest)) => (version.parse::<u8>().ok(), rest),
        None => (Some(cairn_core::FORMAT_VERSION), text),
    };
    version
        .zip(hex::decode(hex_text).ok())
        .and_then(|(version, bytes)| Credential::decode(version, &bytes).ok())
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "{} is damaged; restore it from a backup",
                path.display()
            ))
        })
}

/// The committed next key's file: a printable recovery sheet.
fn next_key_sheet(next: &SecretKey, org: OrgId, org_name: &str) -> String {
    format!(
        "# Cairn NEXT KEY of the organisation {org_name:?}\n\
         # organisation id {org}\n\
         # written {}\n\
         #\n\
         # This is the only key that can rotate the organisation's key if the current one is\n\
         # lost or stolen. Print this sheet or copy it to offline storage, then delete it from\n\
         # this computer. To rotate: cairn org rotate --next-key THIS-FILE\n\
         {}\n",
        humantime::format_rfc3339_seconds(std::time::SystemTime::now()),
        hex::encode(next.seed())
    )
}

/// Writes `contents` to `path` whole: a temporary file beside it, synced, then renamed over.
pub(crate) fn replace_file(path: &Path, contents: &str, mode: u32) -> Result<(), Error> {
    let temporary = path.with_extension("tmp");
    let _ = fs::remove_file(&temporary);
    write_new(&temporary, contents, mode)?;
    fs::rename(&temporary, path).map_err(|source| Error::File {
        action: "replace",
        path: path.to_path_buf(),
        source,
    })
}

fn write_new(path: &Path, contents: &str, mode: u32) -> Result<(), Error> {
    let file_error = |source| Error::File {
        action: "create",
        path: path.to_path_buf(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(file_error)?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(file_error)
}
