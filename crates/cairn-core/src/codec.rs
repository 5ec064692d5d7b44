//! Canonical encoding: the only module that names bincode.
//!
//! The configuration is fixed: little-endian, fixed-width integers, collection lengths as u64,
//! and a hard limit on how many bytes one decode may consume. Decoding rejects trailing bytes,
//! so every accepted value has exactly one encoding.

use bincode::config::{Configuration, Fixint, Limit, LittleEndian};
use bincode::error::DecodeError;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::Error;

/// The most bytes any single decode may read. Callers check their own, tighter, limits first.
pub const DECODE_LIMIT: usize = 1 << 20;

/// The most bytes one protocol message (such as a sync response) may hold.
pub const MESSAGE_LIMIT: usize = 16 << 20;

/// The one configuration, with a decode limit of `LIMIT` bytes.
fn config<const LIMIT: usize>() -> Configuration<LittleEndian, Fixint, Limit<LIMIT>> {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<LIMIT>()
}

fn encode_within<const LIMIT: usize, T: Serialize>(
    what: &'static str,
    value: &T,
) -> Result<Vec<u8>, Error> {
    let bytes = bincode::serde::encode_to_vec(value, config::<LIMIT>()).map_err(|err| {
        Error::Malformed {
            what,
            detail: err.to_string(),
        }
    })?;
    if bytes.len() > LIMIT {
        return Err(Error::TooLarge {
            what,
            len: bytes.len(),
            max: LIMIT,
        });
    }
    Ok(bytes)
}

fn decode_within<'a, const LIMIT: usize, T: Deserialize<'a>>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<T, Error> {
    if bytes.len() > LIMIT {
        return Err(Error::TooLarge {
            what,
            len: bytes.len(),
            max: LIMIT,
        });
    }
    let (value, used) = bincode::serde::borrow_decode_from_slice::<T, _>(bytes, config::<LIMIT>())
        .map_err(|err| decode_error(what, err, LIMIT))?;
    if used != bytes.len() {
        return Err(Error::TrailingBytes {
            what,
            extra: bytes.len() - used,
        });
    }
    Ok(value)
}

/// Encodes a value canonically. Fails only for values over [`DECODE_LIMIT`].
pub fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, Error> {
    encode_within::<DECODE_LIMIT, T>(what, value)
}

/// Decodes exactly one value that must fill `bytes` completely.
pub fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, Error> {
    decode_within::<DECODE_LIMIT, T>(what, bytes)
}

/// [`decode`] for a value that borrows its strings from `bytes` instead of copying them: for
/// reading a field or two of something already validated.
pub fn decode_borrowed<'a, T: Deserialize<'a>>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<T, Error> {
    decode_within::<DECODE_LIMIT, T>(what, bytes)
}

/// Encodes a protocol message, which may be larger than an entry.
pub fn encode_message<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, Error> {
    encode_within::<MESSAGE_LIMIT, T>(what, value)
}

/// Decodes a protocol message that must fill `bytes` completely (it may borrow from them);
/// callers check their own, tighter, size limit first.
pub fn decode_message<'a, T: Deserialize<'a>>(
    what: &'static str,
    bytes: &'a [u8],
) -> Result<T, Error> {
    decode_within::<MESSAGE_LIMIT, T>(what, bytes)
}

fn decode_error(what: &'static str, err: DecodeError, limit: usize) -> Error {
    match err {
        DecodeError::UnexpectedEnd { additional } => Error::Truncated {
            what,
            detail: format!("{additional} more bytes were expected"),
        },
        DecodeError::LimitExceeded => Error::TooLarge {
            what,
            len: usize::MAX,
            max: limit,
        },
        other => Error::Malformed {
            what,
            detail: other.to_string(),
        },
    }
}

/// A byte string that encodes as a u64 length followed by the raw bytes (the same bytes as a
/// `Vec<u8>`), decoded in one copy rather than byte by byte.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bytes(pub Vec<u8>);

impl std::fmt::Debug for Bytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Bytes({} bytes)", self.0.len())
    }
}

impl Serialize for Bytes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Bytes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes(v.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes(v))
            }
        }
        deserializer.deserialize_byte_buf(Visitor)
    }
}
