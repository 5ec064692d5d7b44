//! Invite tickets: one pasteable line that carries an organisation's signed [`Invitation`] to
//! one of its nodes. Format: `cairn-invite2-` followed by lowercase base32 (no padding) of the
//! invitation's signed bytes and the first 4 bytes of their SHA-256, so a mangled paste is
//! told apart from a forged one. Tickets of the first format (`cairn-invite1-`, unsigned) are
//! refused with what to do instead.

use std::time::Duration;

use cairn_core::Timestamp;
use cairn_core::invitation::Invitation;
use data_encoding::BASE32_NOPAD;
use sha2::{Digest, Sha256};

use crate::Error;

const PREFIX: &str = "cairn-invite2-";
const UNSIGNED_PREFIX: &str = "cairn-invite1-";
/// Tickets longer than this are refused before decoding.
const MAX_TICKET_LEN: usize = 8 * 1024;
/// How long an invitation lasts unless `cairn invite --expires` says otherwise.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3_600);
/// The longest an invitation may last: a year (as `humantime` counts one, 365.25 days).
pub const MAX_LIFETIME: Duration = Duration::from_secs(31_557_600);

/// A decoded ticket: an invitation whose signature checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    pub invitation: Invitation,
}

impl Ticket {
    pub fn encode(&self) -> String {
        let mut bytes = self.invitation.as_bytes().to_vec();
        let checksum = Sha256::digest(&bytes);
        bytes.extend_from_slice(&checksum[..4]);
        format!("{PREFIX}{}", BASE32_NOPAD.encode(&bytes).to_lowercase())
    }

    /// Reads a ticket and checks its invitation's signature; whether it expired is checked
    /// where it is used ([`Ticket::check_current`]).
    pub fn decode(text: &str) -> Result<Self, Error> {
        let text = text.trim();
        if text.len() > MAX_TICKET_LEN {
            return Err(Error::Ticket(
                "it is far too long to be a Cairn invite".into(),
            ));
        }
        if text.starts_with(UNSIGNED_PREFIX) {
            return Err(Error::Ticket(
                "it comes from an older Cairn that did not sign its invites, so nothing shows who made it; ask the organisation to upgrade and run `cairn invite` again".into(),
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
        let (signed, checksum) = bytes.split_at(split);
        if Sha256::digest(signed)[..4] != *checksum {
            return Err(Error::Ticket(
                "its checksum does not match, so part of it was lost; copy it again".into(),
            ));
        }
        let invitation = Invitation::from_bytes(signed).map_err(|err| {
            Error::Ticket(format!(
                "it is not a genuine invitation ({err}); ask the organisation for a new one"
            ))
        })?;
        Ok(Self { invitation })
    }

    /// Refuses an invitation that expired by `now`, saying when and what to do.
    pub fn check_current(&self, now: Timestamp) -> Result<(), Error> {
        if self.invitation.expired(now) {
            let claims = self.invitation.claims();
            return Err(Error::Ticket(format!(
                "it expired on {}; ask {} for a new one (`cairn invite` on their node)",
                humantime::format_rfc3339_seconds(claims.expires.to_system_time()),
                cairn_core::display::printable(&claims.org_name, cairn_core::display::Lines::One)
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_core::SecretKey;
    use cairn_core::codec::Bytes;
    use cairn_core::invitation::InvitationClaims;

    fn ticket(org: &SecretKey) -> Ticket {
        let now = Timestamp::now();
        let claims = InvitationClaims {
            org: org.org_id(),
            org_key: org.public(),
            org_name: "Riverside Trust".into(),
            peer_id: Bytes(b"peer".to_vec()),
            addresses: vec!["/ip4/127.0.0.1/tcp/7411".into()],
            spaces: vec!["commons".into()],
            issued: now,
            expires: Timestamp(now.0 + 60_000),
            single_use: false,
            nonce: [1; 16],
        };
        Ticket {
            invitation: Invitation::issue(org, claims).expect("invitation"),
        }
    }

    #[test]
    fn tickets_round_trip_and_damage_old_formats_and_expiry_are_caught() {
        let org = SecretKey::from_seed([5; 32]);
        let ticket = ticket(&org);
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
        let old = Ticket::decode("cairn-invite1-abcdef").expect_err("unsigned");
        assert!(
            old.to_string().contains("run `cairn invite` again"),
            "{old}"
        );
        ticket.check_current(Timestamp::now()).expect("current");
        let later = Timestamp(Timestamp::now().0 + 120_000);
        let expired = ticket.check_current(later).expect_err("expired");
        assert!(expired.to_string().contains("expired on"), "{expired}");
    }
}
