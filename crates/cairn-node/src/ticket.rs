//! Invite tickets: one pasteable line that tells another node how to reach this one and which
//! spaces it shares. Format: `cairn-invite1-` followed by lowercase base32 (no padding) of the
//! JSON payload and the first 4 bytes of its SHA-256, so a mangled paste is caught.

use data_encoding::BASE32_NOPAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Error;

const PREFIX: &str = "cairn-invite1-";
/// Tickets longer than this are refused before decoding.
const MAX_TICKET_LEN: usize = 8 * 1024;

/// What a ticket carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub peer_id: String,
    pub addresses: Vec<String>,
    pub org: String,
    pub org_name: String,
    pub spaces: Vec<String>,
}

impl Ticket {
    pub fn encode(&self) -> String {
        // Serialising plain strings cannot fail.
        let mut bytes = serde_json::to_vec(self).unwrap_or_default();
        let checksum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&checksum[..4]);
        format!("{PREFIX}{}", BASE32_NOPAD.encode(&bytes).to_lowercase())
    }

    pub fn decode(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if text.len() > MAX_TICKET_LEN {
            return Err(Error::Ticket(
                "it is far too long to be a Cairn invite".into(),
            ));
        }
        let body = text.strip_prefix(PREFIX).ok_or_else(|| {
            Error::Ticket(format!(
                "it does not start with {PREFIX}; copy the whole line `cairn invite` printed"
            ))
        })?;
        let bytes = BASE32_NOPAD
            .decode(body.to_uppercase().as_bytes())
            .map_err(|_| {
                Error::Ticket("it contains characters a ticket never has; copy it again".into())
            })?;
        let Some(split) = bytes.len().checked_sub(4) else {
            return Err(Error::Ticket("it is too short; copy the whole line".into()));
        };
        let (payload, checksum) = bytes.split_at(split);
        if Sha256::digest(payload)[..4] != *checksum {
            return Err(Error::Ticket(
                "its checksum does not match, so part of it was lost; copy it again".into(),
            ));
        }
        serde_json::from_slice(payload)
            .map_err(|err| Error::Ticket(format!("its contents are not readable: {err}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_round_trip_and_damage_is_caught() {
        let ticket = Ticket {
            peer_id: "12D3KooW".into(),
            addresses: vec!["/ip4/127.0.0.1/tcp/7411".into()],
            org: "ab".repeat(32),
            org_name: "Riverside Trust".into(),
            spaces: vec!["commons".into()],
        };
        let text = ticket.encode();
        assert!(text.starts_with(PREFIX));
        assert_eq!(
            Ticket::decode(&format!("  {text}\n")).expect("decodes"),
            ticket
        );
        let mut damaged = text.clone();
        damaged.replace_range(20..21, if &text[20..21] == "a" { "b" } else { "a" });
        assert!(Ticket::decode(&damaged).is_err());
        assert!(Ticket::decode(&text[..text.len() - 3]).is_err());
        assert!(Ticket::decode("hello").is_err());
    }
}
