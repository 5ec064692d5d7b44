//! The crate's error type. Each variant is one reason an entry or credential is refused, with a
//! short stable code (see [`Error::code`]) that peers and tests can match on, and a decision on
//! who is to blame when a peer sent it (see [`Error::blame`]).

use crate::keys::{EntryId, MemberId, OrgId};

/// Why an entry, a credential or a key was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error(
        "invalid: {what} is {len} bytes, over the limit of {max}; split it into smaller pieces"
    )]
    TooLarge {
        what: &'static str,
        len: usize,
        max: usize,
    },

    #[error("invalid: {what} ends early ({detail}); the data was cut off in transit or on disk")]
    Truncated { what: &'static str, detail: String },

    #[error("invalid: {what} has {extra} unexpected bytes after its end")]
    TrailingBytes { what: &'static str, extra: usize },

    #[error("invalid: {what} could not be decoded: {detail}")]
    Malformed { what: &'static str, detail: String },

    #[error(
        "invalid: format version {0} is not supported by this build (it reads version 1); upgrade Cairn"
    )]
    UnsupportedVersion(u8),

    #[error("duplicate: entry {0} is already stored")]
    Duplicate(EntryId),

    #[error("invalid: {0}")]
    BadChain(&'static str),

    #[error(
        "invalid: entry seq {seq} names previous entry {claimed}, but this store holds {held} at seq {held_seq} for the same author"
    )]
    ChainConflict {
        seq: u64,
        claimed: EntryId,
        held: EntryId,
        held_seq: u64,
    },

    #[error(
        "invalid: entry was created {ahead_ms} ms in the future, more than the {max_ms} ms allowed; check the author's clock"
    )]
    ClockSkew { ahead_ms: u64, max_ms: u64 },

    #[error("invalid: {field}: {reason}")]
    BadField { field: &'static str, reason: String },

    #[error(
        "invalid: the credential names member {credential_member}, but the entry's author is {author}"
    )]
    CredentialMismatch {
        credential_member: String,
        author: String,
    },

    #[error("invalid: the credential is not valid at the entry's creation time ({0})")]
    CredentialNotValid(&'static str),

    #[error(
        "invalid: the membership credential's signature does not verify against its organisation's key"
    )]
    BadCredentialSignature,

    #[error("invalid: public key {0} is not a usable ed25519 key")]
    BadKey(String),

    #[error("invalid: the entry signature does not verify against its author's key")]
    BadSignature,

    #[error("invalid: the body is {actual} bytes but the header says {expected}")]
    BodyLengthMismatch { expected: u32, actual: usize },

    #[error("invalid: the body's SHA-256 does not match the hash in the signed header")]
    BodyHashMismatch,

    #[error("invalid: the entry arrived without its body; fetch it again with the body")]
    BodyMissing,

    /// The organisation revoked the author's membership before this entry.
    #[error(
        "refused: member {member} was removed by their organisation; only their entries up to number {last_valid_seq} stay valid"
    )]
    Revoked {
        member: MemberId,
        last_valid_seq: u64,
    },

    /// This node blocked the entry's organisation.
    #[error("blocked: this node blocked organisation {org} ({reason})")]
    Blocked { org: OrgId, reason: String },

    /// This node accepts only organisations it follows, and does not follow this one.
    #[error(
        "blocked: this node accepts only organisations it follows, and not {0}; `cairn follow` it to accept its entries"
    )]
    NotFollowed(OrgId),

    /// This node already keeps as many entries from the organisation as it allows.
    #[error("blocked: this node keeps at most {max} entries from organisation {org}")]
    OverQuota { org: OrgId, max: u64 },

    /// The organisation is a stranger here (neither this node's own nor followed) and has
    /// used its budget.
    #[error(
        "blocked: this node keeps at most {entries} entries and {bytes} bytes from an organisation it does not follow, and {org} has that much here; `cairn follow` it to accept more"
    )]
    StrangerBudget {
        org: OrgId,
        entries: u64,
        bytes: u64,
    },

    /// Strangers together have used the node-wide budget for strangers.
    #[error(
        "blocked: entries from organisations this node does not follow already take {bytes} bytes here, its budget for them all; follow the ones that matter (`cairn follow`) or raise [store] strangers_mb"
    )]
    StrangersFull { bytes: u64 },

    /// The disk ceiling stops intake for now.
    #[error("blocked: intake is stopped: {0}")]
    NoRoom(String),

    /// The credential was signed by a key the organisation has retired, and the entry is past
    /// what the rotation kept valid.
    #[error(
        "refused: organisation {org} no longer signs with key {key} (only this author's entries up to number {last_valid_seq} stay valid under it); a node that has not yet seen the rotation may still relay it"
    )]
    KeyRetired {
        org: OrgId,
        key: MemberId,
        last_valid_seq: u64,
    },

    /// The entry's credential names a key of an organisation whose key log this node does not
    /// hold yet (it arrives by sync).
    #[error(
        "not yet: this node does not hold the key log of organisation {0} yet, so it cannot tell whether its key is current; it will take the entry once the log arrives"
    )]
    KeyLogUnknown(OrgId),

    /// The credential's signing key is not in the organisation's key log held here: it may
    /// be made current by a rotation this node has not received yet.
    #[error(
        "not yet: organisation {org}'s key log held here does not name key {key}; a rotation to it may not have arrived yet"
    )]
    KeyNotInLog { org: OrgId, key: MemberId },

    /// A key event further ahead than the next position in the log held.
    #[error(
        "not yet: organisation {org}'s key log is held up to event {held}; event {offered} waits for the ones between"
    )]
    KeyLogGap { org: OrgId, held: u64, offered: u64 },

    /// A key event that does not follow from the log held.
    #[error("refused: a key event of organisation {org}: {reason}")]
    KeyEventRefused { org: OrgId, reason: String },
}

/// Who is at fault when a peer sent an entry that this node refused. It decides whether the
/// sender is penalised, so it must never blame a peer that could be honest: one running an
/// older or newer version, one whose clock disagrees, one that has not yet seen a retraction or
/// revocation, or one whose policy differs from this node's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// An honest peer could have sent it: drop it quietly and relay nothing.
    Nobody,
    /// Only a forger or a broken implementation sends it: drop it and penalise the sender.
    Sender,
}

impl Error {
    /// Who is to blame for this refusal when a peer sent the entry. The match names every
    /// variant on purpose: a new variant does not compile until someone decides.
    pub fn blame(&self) -> Blame {
        match self {
            // Peers relay what they hold; the same entry reaching us twice is normal.
            Error::Duplicate(_) => Blame::Nobody,
            // A newer peer may speak a newer format.
            Error::UnsupportedVersion(_) => Blame::Nobody,
            // Clocks disagree between honest machines.
            Error::ClockSkew { .. } => Blame::Nobody,
            // The author forked their chain; the relaying peer cannot know which branch we hold.
            Error::ChainConflict { .. } => Blame::Nobody,
            // The entry may have been retracted and the retraction not yet arrived.
            Error::BodyMissing => Blame::Nobody,
            // Peers that have not seen the revocation relay the member's entries.
            Error::Revoked { .. } => Blame::Nobody,
            // This node's own policy refused it; the sender did nothing wrong.
            Error::Blocked { .. }
            | Error::NotFollowed(_)
            | Error::OverQuota { .. }
            | Error::StrangerBudget { .. }
            | Error::StrangersFull { .. }
            | Error::NoRoom(_) => Blame::Nobody,
            // Key logs reach nodes at different times, and a duplicitous organisation leaves
            // honest nodes holding different histories.
            Error::KeyRetired { .. }
            | Error::KeyLogUnknown(_)
            | Error::KeyNotInLog { .. }
            | Error::KeyLogGap { .. }
            | Error::KeyEventRefused { .. } => Blame::Nobody,
            // Forged, damaged or built against the format: an honest peer verifies before it
            // relays, so it never sends these.
            Error::TooLarge { .. }
            | Error::Truncated { .. }
            | Error::TrailingBytes { .. }
            | Error::Malformed { .. }
            | Error::BadChain(_)
            | Error::BadField { .. }
            | Error::CredentialMismatch { .. }
            | Error::CredentialNotValid(_)
            | Error::BadCredentialSignature
            | Error::BadKey(_)
            | Error::BadSignature
            | Error::BodyLengthMismatch { .. }
            | Error::BodyHashMismatch => Blame::Sender,
        }
    }

    /// A short, stable code for this reason, prefixed by its class like Nostr's
    /// `invalid:` / `duplicate:` / `blocked:` machine-readable prefixes.
    pub fn code(&self) -> &'static str {
        match self {
            Error::TooLarge { .. } => "invalid:too-large",
            Error::Truncated { .. } => "invalid:truncated",
            Error::TrailingBytes { .. } => "invalid:trailing-bytes",
            Error::Malformed { .. } => "invalid:malformed",
            Error::UnsupportedVersion(_) => "invalid:version",
            Error::Duplicate(_) => "duplicate:id",
            Error::BadChain(_) => "invalid:chain",
            Error::ChainConflict { .. } => "invalid:chain-conflict",
            Error::ClockSkew { .. } => "invalid:clock-skew",
            Error::BadField { .. } => "invalid:field",
            Error::CredentialMismatch { .. } => "invalid:credential-mismatch",
            Error::CredentialNotValid(_) => "invalid:credential-time",
            Error::BadCredentialSignature => "invalid:credential-signature",
            Error::BadKey(_) => "invalid:key",
            Error::BadSignature => "invalid:signature",
            Error::BodyLengthMismatch { .. } => "invalid:body-length",
            Error::BodyHashMismatch => "invalid:body-hash",
            Error::BodyMissing => "invalid:body-missing",
            Error::Revoked { .. } => "revoked:member",
            Error::Blocked { .. } => "blocked:org",
            Error::NotFollowed(_) => "blocked:not-followed",
            Error::OverQuota { .. } => "blocked:quota",
            Error::StrangerBudget { .. } => "blocked:stranger-budget",
            Error::StrangersFull { .. } => "blocked:strangers-budget",
            Error::NoRoom(_) => "blocked:disk",
            Error::KeyRetired { .. } => "revoked:key",
            Error::KeyLogUnknown(_) => "pending:key-log",
            Error::KeyLogGap { .. } => "pending:key-log-gap",
            Error::KeyNotInLog { .. } => "pending:key",
            Error::KeyEventRefused { .. } => "refused:key-event",
        }
    }
}
