//! Backups of a home: `cairn backup` writes its identity (the organisation's and members'
//! keys and credentials), its configuration and its node state into one file encrypted with a
//! passphrase in the age format (scrypt); `cairn restore` reads one into a new home.
//!
//! Left out on purpose: the store (peers hold the entries, and sync brings them back) and the
//! node key (a restored node makes a new one, so the old laptop and the new one are never
//! the same node). A restored home holds publishing until a catch-up sync brought its own
//! entries back (or the admin confirms no other node holds them): a chain continued from a
//! stale backup would fork.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use age::secrecy::SecretString;
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use cairn_node::service::state::State;

use crate::home::Home;

/// The archive's format name; a reader refuses any other.
const FORMAT: &str = "cairn-backup-1";
/// The largest backup read, and the largest file put in one.
const MAX_BACKUP_LEN: u64 = 16 << 20;
const MAX_FILE_LEN: u64 = 1 << 20;
/// The shortest passphrase accepted for a new backup.
const MIN_PASSPHRASE_CHARS: usize = 12;
/// The node's own network key, never put in a backup: a restored node makes a new one.
const NODE_KEY: &str = "keys/node.key";

/// What a backup holds, before encryption.
#[derive(Debug, Serialize, Deserialize)]
struct Archive {
    format: String,
    /// When it was made, RFC 3339.
    created: String,
    /// The organisation's id, to say whose backup it is.
    org: String,
    /// Each file by its path in the home (`keys/org.key`, `config.toml`...) and its text.
    files: BTreeMap<String, String>,
    /// Each of the home's chains (member id) and its newest entry number when the backup was
    /// made: a restored home publishes only once it holds at least these again.
    #[serde(default)]
    heads: BTreeMap<String, u64>,
}

/// The files a backup must hold to make a whole identity.
const IDENTITY_FILES: [&str; 3] = ["keys/org.key", "keys/member.key", "keys/member.credential"];

/// Where a passphrase comes from: a file's first line, or the terminal.
pub fn passphrase(file: Option<&Path>, confirm: bool) -> Result<SecretString> {
    let text = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("could not read the passphrase from {}", path.display())
            })?;
            text.lines().next().unwrap_or_default().to_string()
        }
        None if std::io::stdin().is_terminal() => {
            let first = rpassword::prompt_password("Passphrase: ")?;
            if confirm && rpassword::prompt_password("The same passphrase again: ")? != first {
                bail!("the two passphrases differ; run the command again");
            }
            first
        }
        None => bail!(
            "no passphrase: pass --passphrase-file FILE, or run this in a terminal to type one"
        ),
    };
    if text.is_empty() {
        bail!("the passphrase is empty");
    }
    Ok(SecretString::from(text))
}

/// Writes an encrypted backup of `home` to `out` (created new, 0600).
pub fn backup(home: &Home, out: &Path, passphrase: SecretString) -> Result<usize> {
    use age::secrecy::ExposeSecret;
    if passphrase.expose_secret().chars().count() < MIN_PASSPHRASE_CHARS {
        bail!(
            "a backup passphrase needs at least {MIN_PASSPHRASE_CHARS} characters; a few unrelated words are easy to remember and hard to guess"
        );
    }
    let identity = home.load()?;
    let mut files = BTreeMap::new();
    collect(home.root(), home.root(), &mut files)?;
    if let Some(missing) = IDENTITY_FILES
        .iter()
        .find(|path| !files.contains_key(**path))
    {
        bail!(
            "{missing} is not a plain file in {}, so the backup would not hold the identity; copy the real file there and try again",
            home.root().display()
        );
    }
    let claims = identity.credential.claims();
    let archive = Archive {
        format: FORMAT.into(),
        created: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        org: claims.org.to_string(),
        files,
        heads: chain_heads(home, claims, identity.credential.org_key())?,
    };
    let plain = serde_json::to_vec(&archive)?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(out)
        .with_context(|| {
            format!(
                "could not create {}; it must not exist yet (a backup never overwrites a file)",
                out.display()
            )
        })?;
    let mut writer = age::Encryptor::with_user_passphrase(passphrase)
        .wrap_output(&mut file)
        .context("could not start the encryption")?;
    writer.write_all(&plain)?;
    writer.finish()?;
    file.sync_all()
        .with_context(|| format!("could not write {}", out.display()))?;
    Ok(archive.files.len())
}

/// The newest entry number of each of the home's chains (its member, the organisation's own,
/// and the members added here), through the running node if there is one.
fn chain_heads(
    home: &Home,
    claims: &cairn_core::CredentialClaims,
    org_key: cairn_core::MemberId,
) -> Result<BTreeMap<String, u64>> {
    let backend = crate::backend::open(home)?;
    let mut authors = vec![claims.member.to_string(), org_key.to_string()];
    authors.extend(backend.members()?.into_iter().map(|member| member.member));
    let mut heads = BTreeMap::new();
    for author in authors {
        let query = cairn_api::ListQuery {
            author: Some(author.clone()),
            limit: Some(1),
            ..cairn_api::ListQuery::default()
        };
        if let Some(newest) = backend.list(&query)?.entries.first() {
            heads.insert(author, newest.header().seq);
        }
    }
    Ok(heads)
}

/// Whether a backup may hold this file: the identity (without the node key), the
/// configuration and the node state.
fn belongs(path: &str) -> bool {
    (path.starts_with("keys/") && path != NODE_KEY)
        || path == "config.toml"
        || path == "node-state.json"
}

/// Every file under `dir` that belongs in a backup, by its path relative to `root`.
fn collect(root: &Path, dir: &Path, files: &mut BTreeMap<String, String>) -> Result<()> {
    for item in
        std::fs::read_dir(dir).with_context(|| format!("could not read {}", dir.display()))?
    {
        let path = item?.path();
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        if relative == NODE_KEY {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.is_dir() && (relative == "keys" || relative.starts_with("keys/")) {
            collect(root, &path, files)?;
        } else if meta.is_file() && belongs(&relative) {
            if meta.len() > MAX_FILE_LEN {
                bail!("{} is too large to back up", path.display());
            }
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("could not read {}", path.display()))?;
            files.insert(relative, text);
        }
    }
    Ok(())
}

/// Restores a backup into `home`, which must hold no identity yet; returns the organisation
/// id. Nothing is written unless the passphrase opens the backup and it is whole.
pub fn restore(home: &Home, from: &Path, passphrase: SecretString) -> Result<String> {
    if home.is_initialised() {
        bail!(
            "{} already holds a Cairn identity; restore into a new home (--home DIR) so nothing is overwritten",
            home.root().display()
        );
    }
    let file = std::fs::File::open(from)
        .with_context(|| format!("could not open the backup {}", from.display()))?;
    if file.metadata()?.len() > MAX_BACKUP_LEN {
        bail!("{} is too large to be a Cairn backup", from.display());
    }
    let decryptor = age::Decryptor::new(std::io::BufReader::new(file))
        .map_err(|err| anyhow::anyhow!("{} is not a Cairn backup ({err})", from.display()))?;
    let identity = age::scrypt::Identity::new(passphrase);
    let mut reader = decryptor
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .map_err(|err| match err {
            age::DecryptError::DecryptionFailed | age::DecryptError::NoMatchingKeys => {
                anyhow::anyhow!("the passphrase does not open this backup; check it and try again")
            }
            other => anyhow::anyhow!("could not decrypt {}: {other}", from.display()),
        })?;
    let mut plain = Vec::new();
    reader
        .by_ref()
        .take(MAX_BACKUP_LEN)
        .read_to_end(&mut plain)
        .context("the backup is damaged: its contents do not decrypt whole")?;
    let archive: Archive = serde_json::from_slice(&plain)
        .context("the backup decrypts but its contents are not readable")?;
    if archive.format != FORMAT {
        bail!(
            "the backup has format {:?}, which this cairn cannot read; upgrade Cairn",
            archive.format
        );
    }
    for path in archive.files.keys() {
        if !safe_relative(path) || !belongs(path) {
            bail!(
                "the backup names a file a backup never holds ({path:?}); it is not a Cairn backup"
            );
        }
    }
    if let Some(missing) = IDENTITY_FILES
        .iter()
        .find(|path| !archive.files.contains_key(**path))
    {
        bail!("the backup lacks {missing}, so it cannot restore the identity");
    }
    if home.store_path().exists() {
        bail!(
            "{} already has a store; restore into a new home (--home DIR), and peers will send the entries again",
            home.root().display()
        );
    }
    // The hold on publishing goes first and the organisation's key last (it is what makes
    // the home count as initialised): a restore cut short never leaves a home that could
    // publish from a stale chain.
    write_held_state(home, archive.files.get("node-state.json"), &archive.heads)?;
    for (path, text) in &archive.files {
        if path != "node-state.json" && path != IDENTITY_FILES[0] {
            write_restored(home, path, text)?;
        }
    }
    write_restored(home, IDENTITY_FILES[0], &archive.files[IDENTITY_FILES[0]])?;
    home.restored()?;
    Ok(archive.org)
}

/// Writes the restored node state: the backup's (or a new one), with publishing held until
/// the home holds at least `heads` again.
fn write_held_state(
    home: &Home,
    backed_up: Option<&String>,
    heads: &BTreeMap<String, u64>,
) -> Result<()> {
    let mut state = match backed_up {
        Some(text) => serde_json::from_str::<State>(text)
            .context("the backup's node-state.json is not readable")?,
        None => State {
            spaces: ["commons".to_string()].into(),
            ..State::default()
        },
    };
    state.hold_until_synced = true;
    state.restore_heads = heads.clone();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(home.root())
        .with_context(|| format!("could not create {}", home.root().display()))?;
    Ok(state.save(&home.node_files().state)?)
}

/// Writes one restored file (0600, never over another) with its folders (0700).
fn write_restored(home: &Home, path: &str, text: &str) -> Result<()> {
    let target = home.root().join(path);
    if let Some(parent) = target.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .with_context(|| format!("could not create {}", parent.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&target)
        .with_context(|| format!("could not create {}", target.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
        .with_context(|| format!("could not write {}", target.display()))
}

/// A path inside the home: relative, with no `..` or root.
fn safe_relative(path: &str) -> bool {
    let path = PathBuf::from(path);
    !path.as_os_str().is_empty()
        && path
            .components()
            .all(|component| matches!(component, Component::Normal(_)))
}
