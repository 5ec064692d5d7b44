//! The Cairn entry format, with no I/O: keys and ids, membership credentials, the signed
//! entry header with its detached body, the canonical encoding, and validation.
//!
//! Module map:
//! - [`display`]: text from the network made safe to show (controls shown, bidi balanced).
//! - [`codec`]: the one place that names bincode; fixed configuration, size limits, no trailing
//!   bytes.
//! - [`keys`]: ids for organisations, members and entries, and secret keys.
//! - [`credential`]: the org-signed membership credential every entry carries.
//! - [`kel`]: key event logs: organisation ids that outlive their keys, with pre-rotation.
//! - [`body`]: entry bodies: stories (learning, failure, question), replies and responses.
//! - [`entry`]: header, kinds, references, the entry frame and signing.
//! - [`verify`]: the validation pipeline, cheapest check first, with caches for keys and
//!   credentials.
//! - [`error`]: the crate's one error type; every rejection has its own reason code.
//!
//! Invariant: everything that is signed or hashed is kept and passed on as the exact bytes that
//! were received. Structures are decoded from bytes for reading, never re-encoded to be checked.

pub mod binding;
pub mod body;
pub mod codec;
pub mod credential;
pub mod display;
pub mod entry;
pub mod error;
pub mod invitation;
pub mod kel;
pub mod keys;
pub mod signature;
pub mod testkit;
pub mod verify;

pub use body::{Profile, Reply, Response, ResponseType, Retraction, Revocation, Story};
pub use credential::{Credential, CredentialClaims};
pub use entry::{
    BodyHash, Draft, Entry, FORMAT_VERSION, Header, Kind, Ref, RefKind, Space, Timestamp,
};
pub use error::{Blame, Error};
pub use keys::{EntryId, MemberId, OrgId, SecretKey};
pub use verify::Verifier;
