//! The messages of `/cairn/sync/1` and their encoding: canonical bincode (through
//! `cairn_core::codec`), each side refusing messages over its limit before decoding.

use cairn_core::{EntryId, codec};
use serde::{Deserialize, Serialize};

pub use cairn_core::codec::Bytes;

use crate::{Error, MAX_REQUEST_LEN, MAX_RESPONSE_LEN};

/// A request from the pulling side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// A round of reconciliation for a space. `count` is how many entries of the space the
    /// sender holds, so the responder can choose to stream instead. With `newer_than` (the
    /// newest `created` the sender holds, in its first round), the answer also carries the
    /// responder's first entries created after it: what a node back from downtime lacks.
    Reconcile {
        space: String,
        count: u64,
        message: Bytes,
        newer_than: Option<u64>,
    },
    /// Entries by id, at most [`crate::FETCH_BATCH`].
    Fetch { ids: Vec<EntryId> },
    /// A page of a space in (created, id) order, after the given position.
    Range {
        space: String,
        after: Option<(u64, EntryId)>,
        limit: u32,
    },
}

/// The serving side's answer. The pulling side decodes the frames of `Entries` in place, as
/// slices of the message (`Response<&[u8]>`); both forms have the same encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response<F = Bytes> {
    /// The next negentropy message, and the first entries newer than the request's
    /// `newer_than` in (created, id) order (none if it had none).
    Reconcile { message: Bytes, newer: Vec<F> },
    /// Reconciling is declined because the responder holds far more: page through the space.
    UseRange { count: u64 },
    /// Frames, each a complete entry. `next` continues a range; `truncated` says a fetch was
    /// cut short by the size limit and the remaining ids should be asked for again.
    Entries {
        frames: Vec<F>,
        next: Option<(u64, EntryId)>,
        truncated: bool,
    },
    /// The request could not be served.
    Refused { reason: String },
}

impl Request {
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        Ok(codec::encode_message("sync request", self)?)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_REQUEST_LEN {
            return Err(cairn_core::Error::TooLarge {
                what: "sync request",
                len: bytes.len(),
                max: MAX_REQUEST_LEN,
            }
            .into());
        }
        Ok(codec::decode_message("sync request", bytes)?)
    }
}

impl<F: Serialize> Response<F> {
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        Ok(codec::encode_message("sync response", self)?)
    }

    pub(crate) fn name(&self) -> &'static str {
        match self {
            Response::Reconcile { .. } => "reconcile",
            Response::UseRange { .. } => "use-range",
            Response::Entries { .. } => "entries",
            Response::Refused { .. } => "refused",
        }
    }
}

impl<'a, F: Deserialize<'a>> Response<F> {
    pub fn decode(bytes: &'a [u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_RESPONSE_LEN {
            return Err(cairn_core::Error::TooLarge {
                what: "sync response",
                len: bytes.len(),
                max: MAX_RESPONSE_LEN,
            }
            .into());
        }
        Ok(codec::decode_message("sync response", bytes)?)
    }
}
