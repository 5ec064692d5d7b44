//! Cost per signature of Cairn's signature rule: one at a time, and in batches of the sizes
//! sync uses, beside ed25519-dalek's `verify_strict` measured in the same run.
//!
//! Run with `cargo bench -p cairn-core --bench signatures`.

use std::time::{Duration, Instant};

use cairn_core::signature::{self, PublicKey, Signed};
use ed25519_dalek::{Signer, SigningKey};

const SIGNATURES: usize = 4_096;
const AUTHORS: u8 = 50;
const DOMAIN: &[u8] = b"cairn/entry/v1\0";

fn main() {
    let keys: Vec<SigningKey> = (0..AUTHORS)
        .map(|seed| SigningKey::from_bytes(&[seed + 1; 32]))
        .collect();
    // Header-sized messages (a few hundred bytes), authors interleaved as in a sync batch.
    let messages: Vec<Vec<u8>> = (0..SIGNATURES)
        .map(|i| format!("entry {i} ").repeat(30).into_bytes())
        .collect();
    let signatures: Vec<ed25519_dalek::Signature> = messages
        .iter()
        .enumerate()
        .map(|(i, message)| keys[i % keys.len()].sign(&[DOMAIN, message].concat()))
        .collect();
    let signature_bytes: Vec<[u8; 64]> = signatures.iter().map(|s| s.to_bytes()).collect();
    let public: Vec<PublicKey> = keys
        .iter()
        .map(|key| PublicKey::parse(key.verifying_key().as_bytes()).expect("key"))
        .collect();
    let signed: Vec<Signed<'_>> = messages
        .iter()
        .zip(&signature_bytes)
        .enumerate()
        .map(|(i, (message, signature))| Signed {
            key: public[i % public.len()],
            domain: DOMAIN,
            message,
            signature,
        })
        .collect();

    let strict = per_signature(|| {
        for (i, message) in messages.iter().enumerate() {
            let whole = [DOMAIN, message].concat();
            keys[i % keys.len()]
                .verifying_key()
                .verify_strict(&whole, &signatures[i])
                .expect("valid");
        }
    });
    println!("verify_strict (ed25519-dalek), one at a time: {strict:>6.2} µs per signature");
    let one = per_signature(|| assert!(signed.iter().all(signature::verify_one)));
    println!(
        "Cairn rule, one at a time:                    {one:>6.2} µs ({:.2}x verify_strict)",
        one / strict
    );
    for size in [16, 64, 128, 256, 1_024] {
        let batch = per_signature(|| {
            assert!(signed.chunks(size).all(signature::verify_batch));
        });
        println!(
            "Cairn rule, batches of {size:>5}:                {batch:>6.2} µs ({:.2}x verify_strict)",
            batch / strict
        );
    }
}

/// Microseconds per signature for a run over all of them: the best of three runs.
fn per_signature(mut run: impl FnMut()) -> f64 {
    (0..3)
        .map(|_| {
            let started = Instant::now();
            run();
            started.elapsed()
        })
        .min()
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
        * 1e6
        / SIGNATURES as f64
}
