//! The signed statements that travel beside entries: member credentials (both formats),
//! node bindings (in a peer's hello), invitations (in tickets and on the invite protocol) and
//! key events (an organisation's key log). Each decodes to the exact bytes it came from, and
//! its claims have exactly one encoding, so a signature covers one meaning only.
#![no_main]

use cairn_core::binding::Binding;
use cairn_core::codec;
use cairn_core::invitation::Invitation;
use cairn_core::kel::{KeyEvent, KeyState};
use cairn_core::{Credential, entry::FORMAT_VERSION};
use cairn_fuzz::NOW;
use libfuzzer_sys::fuzz_target;

/// The claims are the signed bytes minus the 64-byte signature, in their one encoding.
fn assert_canonical(claims: &impl serde::Serialize, bytes: &[u8], what: &'static str) {
    let encoded = codec::encode(what, claims).expect("decoded claims encode");
    assert_eq!(
        encoded,
        bytes[..bytes.len() - 64],
        "{what} claims have one encoding"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 | 1 => {
            let version = FORMAT_VERSION + which % 2;
            if let Ok(credential) = Credential::decode(version, bytes) {
                assert_eq!(credential.as_bytes(), bytes);
                assert_eq!(credential.header_version(), version);
            }
        }
        2 => {
            if let Ok(binding) = Binding::from_bytes(bytes) {
                assert_eq!(binding.as_bytes(), bytes);
                assert_canonical(binding.claims(), bytes, "binding");
                let peer = binding.claims().peer_id.0.clone();
                let _ = binding.verify(&peer);
            }
        }
        3 => {
            if let Ok(invitation) = Invitation::from_bytes(bytes) {
                assert_eq!(invitation.as_bytes(), bytes);
                assert_canonical(invitation.claims(), bytes, "invitation");
                let _ = invitation.expired(NOW);
            }
        }
        _ => {
            if let Ok(event) = KeyEvent::decode(bytes) {
                assert_eq!(event.as_bytes(), bytes);
                assert_canonical(event.claims(), bytes, "key event");
                if let Some(org) = event.founds() {
                    let mut state = KeyState::incept(org, &event).expect("an inception founds");
                    assert_eq!(state.seq(), 0);
                    // The same event again is not a step forward.
                    let _ = state.apply(&event);
                }
            }
        }
    }
});
