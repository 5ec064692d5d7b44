//! The keys a node signs with, read from the home's `keys/` folder when needed: the member
//! key of the node's own member, the keys of members added with `cairn member add`
//! (`keys/members/NAME.key` and `.credential`), and the organisation's key for entries
//! published on its behalf and for revocations (with the organisation's credential for
//! itself, `keys/org.credential`, made on first use).
//!
//! Secret key files are 0600 and created once, never overwritten; a key file that other
//! users can read is refused with the command that fixes it.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use cairn_core::{Credential, CredentialClaims, MemberId, SecretKey, Timestamp};

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

    /// The organisation's key, signing as the organisation itself.
    pub fn organisation(&self, org_name: &str) -> Result<Signer, Error> {
        let key = read_key(&self.dir.join("org.key"))?;
        let path = self.dir.join("org.credential");
        if path.exists() {
            let credential = read_credential(&path)?;
            if credential.claims().org_name == org_name {
                return Ok(Signer { key, credential });
            }
            // Renamed since: issue a new one below.
            fs::remove_file(&path).map_err(|source| Error::File {
                action: "replace",
                path: path.clone(),
                source,
            })?;
        }
        let credential = Credential::issue(
            &key,
            CredentialClaims {
                org: key.org_id(),
                org_name: org_name.to_string(),
                member: key.member_id(),
                member_name: org_name.to_string(),
                issued: Timestamp::now(),
                expires: None,
            },
        )?;
        write_new(
            &path,
            &format!("{}\n", hex::encode(credential.as_bytes())),
            0o644,
        )?;
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

    /// Creates a member key with its credential, signed by the organisation's key.
    pub fn add_member(&self, name: &str, org_name: &str) -> Result<Signer, Error> {
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
                org: org_key.org_id(),
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
            &format!("{}\n", hex::encode(credential.as_bytes())),
            0o644,
        )?;
        Ok(Signer { key, credential })
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
fn handle(name: &str) -> Result<String, Error> {
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

fn read_credential(path: &Path) -> Result<Credential, Error> {
    let text = fs::read_to_string(path).map_err(|source| Error::File {
        action: "read",
        path: path.to_path_buf(),
        source,
    })?;
    hex::decode(text.trim())
        .ok()
        .and_then(|bytes| Credential::from_bytes(&bytes).ok())
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "{} is damaged; restore it from a backup",
                path.display()
            ))
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
