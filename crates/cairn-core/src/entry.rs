//! Entries: a signed header plus a detached body.
//!
//! The header names the author, their per-author sequence number and previous entry, the
//! creation time, the kind, the spaces, references to other entries, the body's length and
//! SHA-256, and the author's membership credential. The author signs
//! `ENTRY_DOMAIN || header bytes`; the *signed header* is `header bytes || signature(64)` and an
//! entry's id is the SHA-256 of the signed header. The body travels beside the header and is
//! checked against the hash, so a body can later be dropped (retraction) while the author's
//! chain stays verifiable.
//!
//! On the wire and on disk an entry is one *frame*:
//! `u32 LE header length | signed header | u8 body flag (0 or 1) | [u32 LE body length | body]`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::body::{Profile, Reply, Response, Retraction, Revocation};
use crate::codec::{self, Bytes};
use crate::credential::Credential;
use crate::keys::{EntryId, MemberId, SecretKey};
use crate::{Error, Story};

/// The first header format: its credential is signed by the key the organisation id is.
/// Written for every organisation that has never rotated its key, so older nodes read it.
pub const FORMAT_VERSION: u8 = 1;
/// The header format whose credential names the organisation key that signed it (see
/// [`crate::credential`]): written once an organisation's id is not its current key (it
/// rotated, or was incepted with a key event log). Nodes older than format 2 ignore these
/// entries without blaming the sender.
pub const KEY_LOG_FORMAT_VERSION: u8 = 2;
/// The newest header format this build reads.
pub const NEWEST_FORMAT_VERSION: u8 = KEY_LOG_FORMAT_VERSION;
/// The environment variable that makes this build read header formats only up to the
/// version it names, as a node of an older release would: for mixed-version tests.
pub const FORMAT_LIMIT_VARIABLE: &str = "CAIRN_TEST_FORMAT_LIMIT";
/// Signing domain for entry headers.
pub const ENTRY_DOMAIN: &[u8] = b"cairn/entry/v1\0";
/// The largest signed header (header bytes plus signature).
pub const MAX_SIGNED_HEADER_LEN: usize = 4_096;
/// The largest body.
pub const MAX_BODY_LEN: usize = 64 * 1_024;
/// The largest frame: both of the above plus the framing bytes.
pub const MAX_FRAME_LEN: usize = 4 + MAX_SIGNED_HEADER_LEN + 1 + 4 + MAX_BODY_LEN;
/// An entry belongs to at least one and at most this many spaces.
pub const MAX_SPACES: usize = 8;
/// The most references one entry may carry.
pub const MAX_REFS: usize = 16;
/// The longest space name, in bytes.
pub const MAX_SPACE_LEN: usize = 64;
/// How far in the future an entry's creation time may be.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(10 * 60);

/// Milliseconds since the Unix epoch, UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub u64);

impl Timestamp {
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }

    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }
}

/// What an entry is. Unknown codes are valid: they are stored and relayed unread, so new kinds
/// never need a format break.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Kind(pub u16);

impl Kind {
    pub const LEARNING: Kind = Kind(1);
    pub const FAILURE: Kind = Kind(2);
    pub const QUESTION: Kind = Kind(3);
    pub const REPLY: Kind = Kind(4);
    pub const RESPONSE: Kind = Kind(5);
    pub const AMEND: Kind = Kind(6);
    pub const RETRACT: Kind = Kind(7);
    pub const PROFILE: Kind = Kind(8);
    pub const MEMBERSHIP: Kind = Kind(9);
    pub const REVOKE: Kind = Kind(10);
    /// An event of the organisation's key event log (see [`crate::kel`]).
    pub const KEY_EVENT: Kind = Kind(11);

    const NAMES: [(Kind, &'static str); 11] = [
        (Kind::LEARNING, "learning"),
        (Kind::FAILURE, "failure"),
        (Kind::QUESTION, "question"),
        (Kind::REPLY, "reply"),
        (Kind::RESPONSE, "response"),
        (Kind::AMEND, "amend"),
        (Kind::RETRACT, "retract"),
        (Kind::PROFILE, "profile"),
        (Kind::MEMBERSHIP, "membership"),
        (Kind::REVOKE, "revoke"),
        (Kind::KEY_EVENT, "key-event"),
    ];

    /// The kind's name, or `None` for a code this build does not know.
    pub fn name(self) -> Option<&'static str> {
        Self::NAMES
            .iter()
            .find(|(kind, _)| *kind == self)
            .map(|(_, name)| *name)
    }

    pub fn from_name(name: &str) -> Option<Kind> {
        Self::NAMES
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(kind, _)| *kind)
    }

    /// Whether this is a story of its own: learning, failure or question (what timelines list).
    pub fn has_story(self) -> bool {
        matches!(self, Kind::LEARNING | Kind::FAILURE | Kind::QUESTION)
    }

    /// Whether the body is a [`Story`]: a story, or an amendment (a story's new revision).
    pub fn carries_story(self) -> bool {
        self.has_story() || self == Kind::AMEND
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "kind-{}", self.0),
        }
    }
}

impl fmt::Debug for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Kind({self})")
    }
}

/// How an entry relates to the entry it references. Unknown codes are kept, like unknown kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RefKind(pub u16);

impl RefKind {
    pub const REPLY_TO: RefKind = RefKind(1);
    pub const RESPONDS_TO: RefKind = RefKind(2);
    pub const AMENDS: RefKind = RefKind(3);
    pub const RETRACTS: RefKind = RefKind(4);
    pub const BUILDS_ON: RefKind = RefKind(5);
    pub const CONTRADICTS: RefKind = RefKind(6);
    pub const TRIED_TOO: RefKind = RefKind(7);

    const NAMES: [(RefKind, &'static str); 7] = [
        (RefKind::REPLY_TO, "reply-to"),
        (RefKind::RESPONDS_TO, "responds-to"),
        (RefKind::AMENDS, "amends"),
        (RefKind::RETRACTS, "retracts"),
        (RefKind::BUILDS_ON, "builds-on"),
        (RefKind::CONTRADICTS, "contradicts"),
        (RefKind::TRIED_TOO, "tried-too"),
    ];

    /// The reference kind's name, or `None` for a code this build does not know.
    pub fn name(self) -> Option<&'static str> {
        Self::NAMES
            .iter()
            .find(|(kind, _)| *kind == self)
            .map(|(_, name)| *name)
    }

    pub fn from_name(name: &str) -> Option<RefKind> {
        Self::NAMES
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(kind, _)| *kind)
    }

    /// The links an author may add to a story when publishing.
    pub fn is_story_link(self) -> bool {
        matches!(
            self,
            RefKind::BUILDS_ON | RefKind::CONTRADICTS | RefKind::TRIED_TOO
        )
    }
}

/// A typed reference to another entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ref {
    pub kind: RefKind,
    pub target: EntryId,
}

/// A space: a named community or field such as `commons` or `mental-health`. Lowercase ASCII
/// letters, digits and inner `-`, 1 to 64 bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Space(String);

impl Space {
    pub const DEFAULT: &'static str = "commons";

    pub fn new(name: &str) -> Result<Self, Error> {
        let name = name.trim().to_ascii_lowercase();
        check_space(&name)?;
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Space {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub(crate) fn check_space(name: &str) -> Result<(), Error> {
    let valid = !name.is_empty()
        && name.len() <= MAX_SPACE_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(Error::BadField {
            field: "space",
            reason: format!(
                "{name:?} is not a space name: use 1-64 lowercase letters, digits and inner '-', like mental-health"
            ),
        })
    }
}

/// SHA-256 of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BodyHash(pub [u8; 32]);

impl BodyHash {
    pub fn of(body: &[u8]) -> Self {
        Self(Sha256::digest(body).into())
    }
}

/// The signed part of an entry. Field order is the wire order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// [`FORMAT_VERSION`] or [`KEY_LOG_FORMAT_VERSION`], as the credential's format; the first
    /// byte of the encoding, read before anything else.
    pub version: u8,
    pub kind: Kind,
    pub author: MemberId,
    /// 1, 2, 3… per author.
    pub seq: u64,
    /// The author's entry at `seq - 1`; `None` exactly when `seq == 1`.
    pub prev: Option<EntryId>,
    pub created: Timestamp,
    /// Sorted, unique, 1 to [`MAX_SPACES`].
    pub spaces: Vec<Space>,
    pub refs: Vec<Ref>,
    pub body_len: u32,
    pub body_hash: BodyHash,
    /// The author's membership credential, as its exact signed bytes.
    pub credential: Bytes,
}

/// What an author wants to publish; [`Entry::sign`] turns it into an entry.
#[derive(Debug, Clone)]
pub struct Draft {
    pub kind: Kind,
    pub spaces: Vec<Space>,
    pub refs: Vec<Ref>,
    pub body: Vec<u8>,
    pub created: Timestamp,
}

impl Draft {
    /// A story entry (learning, failure or question).
    pub fn story(
        kind: Kind,
        story: &Story,
        spaces: Vec<Space>,
        created: Timestamp,
    ) -> Result<Self, Error> {
        Ok(Self {
            kind,
            spaces,
            refs: Vec::new(),
            body: story.encode()?,
            created,
        })
    }

    /// A reply to `target`.
    pub fn reply(
        target: EntryId,
        reply: &Reply,
        spaces: Vec<Space>,
        created: Timestamp,
    ) -> Result<Self, Error> {
        Ok(Self {
            kind: Kind::REPLY,
            spaces,
            refs: vec![Ref {
                kind: RefKind::REPLY_TO,
                target,
            }],
            body: reply.encode()?,
            created,
        })
    }

    /// A new revision of the story `target` (the original entry), by the same author.
    pub fn amendment(
        target: EntryId,
        story: &Story,
        spaces: Vec<Space>,
        created: Timestamp,
    ) -> Result<Self, Error> {
        Ok(Self {
            kind: Kind::AMEND,
            spaces,
            refs: vec![Ref {
                kind: RefKind::AMENDS,
                target,
            }],
            body: story.encode()?,
            created,
        })
    }

    /// Withdraws `target`, which must be the same author's.
    pub fn retraction(
        target: EntryId,
        retraction: &Retraction,
        spaces: Vec<Space>,
        created: Timestamp,
    ) -> Result<Self, Error> {
        Ok(Self {
            kind: Kind::RETRACT,
            spaces,
            refs: vec![Ref {
                kind: RefKind::RETRACTS,
                target,
            }],
            body: retraction.encode()?,
            created,
        })
    }

    /// A profile of the signer: the organisation (signed with its own key) or a member.
    pub fn profile(
        profile: &Profile,
        spaces: Vec<Space>,
        created: Timestamp,
    ) -> Result<Self, Error> {
        Ok(Self {
            kind: Kind::PROFILE,
            spaces,
            refs: Vec::new(),
            body: profile.encode()?,
            created,
        })
    }

    /// The organisation's removal of a member (sign it with the org key).
    pub fn revocation(
        revocation: &Revocation,
        spaces: Vec<Space>,
        created: Timestamp,
    ) -> Result<Self, Error> {
        Ok(Self {
            kind: Kind::REVOKE,
            spaces,
            refs: Vec::new(),
            body: revocation.encode()?,
            created,
        })
    }

    /// An event of the organisation's key log (sign it with the key the event names, under a
    /// credential that key issued).
    pub fn key_event(event: &crate::kel::KeyEvent, spaces: Vec<Space>, created: Timestamp) -> Self {
        Self {
            kind: Kind::KEY_EVENT,
            spaces,
            refs: Vec::new(),
            body: event.as_bytes().to_vec(),
            created,
        }
    }

    /// A typed response to `target`.
    pub fn response(
        target: EntryId,
        response: &Response,
        spaces: Vec<Space>,
        created: Timestamp,
    ) -> Result<Self, Error> {
        Ok(Self {
            kind: Kind::RESPONSE,
            spaces,
            refs: vec![Ref {
                kind: RefKind::RESPONDS_TO,
                target,
            }],
            body: response.encode()?,
            created,
        })
    }
}

/// A decoded entry: its id, exact signed header bytes, decoded header and credential, and body
/// if present. Decoding checks form only; [`crate::Verifier`] checks meaning and signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    id: EntryId,
    signed_header: Vec<u8>,
    header: Header,
    credential: Credential,
    body: Option<Vec<u8>>,
}

impl Entry {
    /// Signs a draft as entry `seq` of the author's chain, after `prev`.
    pub fn sign(
        author: &SecretKey,
        credential: &Credential,
        seq: u64,
        prev: Option<EntryId>,
        draft: Draft,
    ) -> Result<Self, Error> {
        let mut spaces = draft.spaces;
        spaces.sort();
        spaces.dedup();
        let header = Header {
            version: credential.header_version(),
            kind: draft.kind,
            author: author.member_id(),
            seq,
            prev,
            created: draft.created,
            spaces,
            refs: draft.refs,
            body_len: u32::try_from(draft.body.len()).map_err(|_| Error::TooLarge {
                what: "body",
                len: draft.body.len(),
                max: MAX_BODY_LEN,
            })?,
            body_hash: BodyHash::of(&draft.body),
            credential: Bytes(credential.as_bytes().to_vec()),
        };
        // What is signed here passes the checks every peer makes of a header (at the time
        // it names), so a node never signs an entry that peers, or its own store, refuse.
        crate::verify::check_header(&header, header.created)?;
        Self::sign_header(author, &header, Some(draft.body))
    }

    /// Signs an arbitrary header as given, without any checks. Tests use it to build entries
    /// that are well signed but wrong in other ways.
    pub fn sign_header(
        author: &SecretKey,
        header: &Header,
        body: Option<Vec<u8>>,
    ) -> Result<Self, Error> {
        let mut signed_header = codec::encode("header", header)?;
        let signature = author.sign(ENTRY_DOMAIN, &signed_header);
        signed_header.extend_from_slice(&signature);
        Self::from_parts(signed_header, body)
    }

    /// Decodes a frame (see the module docs).
    pub fn decode(frame: &[u8]) -> Result<Self, Error> {
        if frame.len() > MAX_FRAME_LEN {
            return Err(Error::TooLarge {
                what: "entry frame",
                len: frame.len(),
                max: MAX_FRAME_LEN,
            });
        }
        let mut reader = FrameReader { rest: frame };
        let signed_header = reader.signed_header()?;
        let body = match reader.take("body flag", 1)?[0] {
            0 => None,
            1 => Some(
                reader
                    .length_prefixed("body length", "body", MAX_BODY_LEN)?
                    .to_vec(),
            ),
            flag => {
                return Err(Error::Malformed {
                    what: "entry frame",
                    detail: format!("body flag is {flag}, not 0 or 1"),
                });
            }
        };
        if !reader.rest.is_empty() {
            return Err(Error::TrailingBytes {
                what: "entry frame",
                extra: reader.rest.len(),
            });
        }
        Self::from_parts(signed_header.to_vec(), body)
    }

    /// Rebuilds an entry from a signed header and an optional body, as kept by a store.
    pub fn from_parts(signed_header: Vec<u8>, body: Option<Vec<u8>>) -> Result<Self, Error> {
        if signed_header.len() > MAX_SIGNED_HEADER_LEN {
            return Err(Error::TooLarge {
                what: "signed header",
                len: signed_header.len(),
                max: MAX_SIGNED_HEADER_LEN,
            });
        }
        if let Some(body) = &body
            && body.len() > MAX_BODY_LEN
        {
            return Err(Error::TooLarge {
                what: "body",
                len: body.len(),
                max: MAX_BODY_LEN,
            });
        }
        let header = decode_header(&signed_header)?;
        let credential = Credential::decode(header.version, &header.credential.0)?;
        let id = EntryId(Sha256::digest(&signed_header).into());
        Ok(Self {
            id,
            signed_header,
            header,
            credential,
            body,
        })
    }

    /// The frame that carries this entry (with its body, if held).
    pub fn encode(&self) -> Vec<u8> {
        frame(&self.signed_header, self.body.as_deref())
    }

    pub fn id(&self) -> EntryId {
        self.id
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn credential(&self) -> &Credential {
        &self.credential
    }

    /// The exact signed header bytes: header encoding followed by the signature.
    pub fn signed_header(&self) -> &[u8] {
        &self.signed_header
    }

    pub fn body(&self) -> Option<&[u8]> {
        self.body.as_deref()
    }

    /// The header bytes and the signature over them.
    pub(crate) fn split_signed(&self) -> (&[u8], &[u8]) {
        self.signed_header.split_at(self.signed_header.len() - 64)
    }

    /// The target of this entry's first reference of kind `kind`, if it has one.
    pub fn target(&self, kind: RefKind) -> Option<EntryId> {
        self.header
            .refs
            .iter()
            .find(|reference| reference.kind == kind)
            .map(|reference| reference.target)
    }

    /// For a revision (`amend`), the story it revises: every revision names the original
    /// entry, never an earlier revision. `None` for every other kind.
    pub fn original(&self) -> Option<EntryId> {
        (self.header.kind == Kind::AMEND)
            .then(|| self.target(RefKind::AMENDS))
            .flatten()
    }

    /// Whether the organisation's own key signed this entry: it was published on behalf of the
    /// organisation, and the person who wrote it is withheld from readers.
    pub fn on_behalf_of_org(&self) -> bool {
        self.header.author == self.credential.org_key()
    }

    /// The name readers see as the author: the organisation's for an entry published on its
    /// behalf, else the member's.
    pub fn author_name(&self) -> &str {
        let claims = self.credential.claims();
        if self.on_behalf_of_org() {
            &claims.org_name
        } else {
            &claims.member_name
        }
    }

    /// The story, for kinds that carry one and entries whose body is held.
    pub fn story(&self) -> Option<Result<Story, Error>> {
        if !self.header.kind.carries_story() {
            return None;
        }
        self.body.as_deref().map(Story::decode)
    }
}

/// The id of the entry a frame carries, read without decoding the header: SHA-256 of the
/// signed header bytes. `None` if the frame is too short to hold the header it declares. Used
/// as the gossip message id, so it must be cheap; full validation happens later.
pub fn frame_id(frame: &[u8]) -> Option<EntryId> {
    let signed_header = FrameReader { rest: frame }.signed_header().ok()?;
    Some(EntryId(Sha256::digest(signed_header).into()))
}

/// The header of the entry a frame carries, decoded alone: the body is not copied, the
/// credential not parsed and the id not computed. For checks that need only the header (which
/// spaces a streamed entry is in) before the store validates the whole entry.
pub fn frame_header(frame: &[u8]) -> Result<Header, Error> {
    decode_header(FrameReader { rest: frame }.signed_header()?)
}

/// Decodes the header in a signed header (the header's bytes, then a 64-byte signature).
fn decode_header(signed_header: &[u8]) -> Result<Header, Error> {
    let Some(header_len) = signed_header.len().checked_sub(64).filter(|len| *len > 0) else {
        return Err(Error::Truncated {
            what: "signed header",
            detail: "shorter than a header and its 64-byte signature".into(),
        });
    };
    if !(FORMAT_VERSION..=readable_format_limit()).contains(&signed_header[0]) {
        return Err(Error::UnsupportedVersion(signed_header[0]));
    }
    codec::decode("header", &signed_header[..header_len])
}

/// The newest header version this process reads: [`NEWEST_FORMAT_VERSION`], or less when
/// [`FORMAT_LIMIT_VARIABLE`] says so (read once).
pub fn readable_format_limit() -> u8 {
    static LIMIT: std::sync::OnceLock<u8> = std::sync::OnceLock::new();
    *LIMIT.get_or_init(|| {
        std::env::var(FORMAT_LIMIT_VARIABLE)
            .ok()
            .and_then(|limit| limit.trim().parse::<u8>().ok())
            .map_or(NEWEST_FORMAT_VERSION, |limit| {
                limit.clamp(FORMAT_VERSION, NEWEST_FORMAT_VERSION)
            })
    })
}

/// Signs a header exactly as given, with no checks, returning the signed header bytes. Tests
/// use it to build entries that are well signed but wrong in other ways.
pub fn sign_header(author: &SecretKey, header: &Header) -> Result<Vec<u8>, Error> {
    let mut signed_header = codec::encode("header", header)?;
    let signature = author.sign(ENTRY_DOMAIN, &signed_header);
    signed_header.extend_from_slice(&signature);
    Ok(signed_header)
}

/// Frames a signed header and an optional body (see the module docs). Lengths are written as
/// u32; callers keep them within the limits, which are far below `u32::MAX`.
pub fn frame(signed_header: &[u8], body: Option<&[u8]>) -> Vec<u8> {
    let body_len = body.map_or(0, |body| 4 + body.len());
    let mut frame = Vec::with_capacity(4 + signed_header.len() + 1 + body_len);
    frame.extend_from_slice(&(signed_header.len() as u32).to_le_bytes());
    frame.extend_from_slice(signed_header);
    match body {
        None => frame.push(0),
        Some(body) => {
            frame.push(1);
            frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
            frame.extend_from_slice(body);
        }
    }
    frame
}

/// Reads the frame's length-prefixed parts, reporting where a short frame ended.
struct FrameReader<'a> {
    rest: &'a [u8],
}

impl<'a> FrameReader<'a> {
    fn take(&mut self, what: &'static str, len: usize) -> Result<&'a [u8], Error> {
        if self.rest.len() < len {
            return Err(Error::Truncated {
                what: "entry frame",
                detail: format!("{what} needs {len} bytes, {} remain", self.rest.len()),
            });
        }
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, Error> {
        let bytes = self.take(what, 4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    /// The signed header that starts a frame.
    fn signed_header(&mut self) -> Result<&'a [u8], Error> {
        self.length_prefixed("header length", "signed header", MAX_SIGNED_HEADER_LEN)
    }

    /// A part written as its u32 length (named `length` in errors) and then its bytes; a
    /// length over `max` is refused before anything is taken.
    fn length_prefixed(
        &mut self,
        length: &'static str,
        what: &'static str,
        max: usize,
    ) -> Result<&'a [u8], Error> {
        let len = self.u32(length)? as usize;
        if len > max {
            return Err(Error::TooLarge { what, len, max });
        }
        self.take(what, len)
    }
}
