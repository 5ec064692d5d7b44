//! Ed25519 signature checks under Cairn's one validity rule, one at a time or in batches.
//!
//! A signature `(R, s)` by key `A` on message `M` is valid when:
//! - `A` is a canonical encoding of a curve point that is not of small order (checked once per
//!   key, in [`PublicKey::parse`]);
//! - `R` is a canonical encoding of a curve point that is not of small order;
//! - `s` is a canonical scalar (below the group order);
//! - `[8](s·B − k·A − R)` is the identity, where `k = SHA-512(R ‖ A ‖ M)`: the *cofactored*
//!   equation.
//!
//! The cofactored equation is what makes batches safe: a batch check is
//! `[8](Σ zᵢ(sᵢ·B − kᵢ·Aᵢ − Rᵢ)) = identity` with 128-bit coefficients `zᵢ`, which holds for
//! every batch of individually valid signatures and fails, except with probability about
//! 2⁻¹²⁸, when any one is invalid. With the cofactorless equation (`verify_strict`'s) those
//! two checks can disagree on signatures whose `R` carries a small-order component, and a node
//! that accepted an entry in a batch could be blocked by a peer that checked it alone. Only the
//! key's holder can make such a signature, and under this rule it is valid everywhere.
//! Everything `verify_strict` accepts is accepted here, and the small-order and canonical
//! checks above are the ones it makes.

use std::collections::HashMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::{Digest, Sha512};

/// Separates the batch coefficients' hash from every other use of SHA-512 here.
const BATCH_DOMAIN: &[u8] = b"cairn/signature-batch/v1\0";

/// A public key that passed the key checks, decoded once and kept for its next signatures.
#[derive(Debug, Clone, Copy)]
pub struct PublicKey {
    bytes: [u8; 32],
    /// `−A`: both checks subtract `k·A`.
    negated: EdwardsPoint,
}

impl PublicKey {
    /// The key, or `None` if the bytes are not a canonical encoding of a point outside the
    /// small-order subgroup (so each key has one encoding and no key is weak).
    pub fn parse(bytes: &[u8; 32]) -> Option<Self> {
        Some(Self {
            bytes: *bytes,
            negated: -canonical_point(bytes)?,
        })
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}

/// One signature to check: `signature` over `domain ‖ message` by `key`.
#[derive(Debug, Clone, Copy)]
pub struct Signed<'a> {
    pub key: PublicKey,
    pub domain: &'a [u8],
    pub message: &'a [u8],
    pub signature: &'a [u8],
}

/// A signature's parts, decoded and checked for canonical form and small order.
struct Parts {
    r: EdwardsPoint,
    s: Scalar,
    /// `k = SHA-512(R ‖ A ‖ domain ‖ message)`.
    k: Scalar,
}

impl Signed<'_> {
    fn parts(&self) -> Option<Parts> {
        let (r_bytes, s_bytes) = self.signature.split_first_chunk::<32>()?;
        let s_bytes: &[u8; 32] = s_bytes.try_into().ok()?;
        let s = Option::from(Scalar::from_canonical_bytes(*s_bytes))?;
        let r = canonical_point(r_bytes)?;
        let hash = Sha512::new()
            .chain_update(r_bytes)
            .chain_update(self.key.bytes)
            .chain_update(self.domain)
            .chain_update(self.message)
            .finalize();
        Some(Parts {
            r,
            s,
            k: wide_scalar(&hash),
        })
    }
}

/// A 64-byte hash reduced modulo the group order.
fn wide_scalar(hash: &[u8]) -> Scalar {
    let mut wide = [0u8; 64];
    wide.copy_from_slice(hash);
    Scalar::from_bytes_mod_order_wide(&wide)
}

/// Whether one signature is valid.
pub fn verify_one(signed: &Signed<'_>) -> bool {
    let Some(Parts { r, s, k }) = signed.parts() else {
        return false;
    };
    // s·B − k·A, then compare with R up to a small-order difference.
    let expected_r = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &signed.key.negated, &s);
    (expected_r - r).mul_by_cofactor().is_identity()
}

/// Whether every signature in the batch is valid. Agrees with [`verify_one`] on each of them
/// (see the module docs); when it says no, check them one at a time to find the bad ones.
/// Per signature it costs about half of checking one alone in batches of 64, and under a third
/// from 256 up (`cargo bench -p cairn-core --bench signatures`).
pub fn verify_batch(batch: &[Signed<'_>]) -> bool {
    match batch {
        [] => true,
        [one] => verify_one(one),
        _ => verify_many(batch),
    }
}

fn verify_many(batch: &[Signed<'_>]) -> bool {
    let mut parts = Vec::with_capacity(batch.len());
    for signed in batch {
        let Some(decoded) = signed.parts() else {
            return false;
        };
        parts.push(decoded);
    }
    // The coefficients come from a hash of everything being checked, so a signer cannot
    // choose signatures that cancel out.
    let mut transcript = Sha512::new().chain_update(BATCH_DOMAIN);
    for (signed, decoded) in batch.iter().zip(&parts) {
        transcript.update(signed.signature);
        transcript.update(signed.key.bytes);
        transcript.update(decoded.k.as_bytes());
    }
    let seed = transcript.finalize();
    let coefficient = |index: usize| {
        let hash = Sha512::new()
            .chain_update(seed)
            .chain_update((index as u64).to_le_bytes())
            .finalize();
        let mut low = [0u8; 16];
        low.copy_from_slice(&hash[..16]);
        Scalar::from(u128::from_le_bytes(low))
    };
    // Σ zᵢsᵢ·B − Σ_A (Σ_{i: Aᵢ = A} zᵢkᵢ)·A − Σ zᵢ·Rᵢ: one term per distinct key.
    let mut basepoint = Scalar::ZERO;
    let mut key_terms: Vec<(EdwardsPoint, Scalar)> = Vec::new();
    let mut key_index: HashMap<[u8; 32], usize> = HashMap::new();
    let mut scalars = Vec::with_capacity(batch.len() + 8);
    let mut points = Vec::with_capacity(batch.len() + 8);
    for (index, (signed, decoded)) in batch.iter().zip(&parts).enumerate() {
        let z = coefficient(index);
        basepoint += z * decoded.s;
        let term = *key_index.entry(signed.key.bytes).or_insert_with(|| {
            key_terms.push((signed.key.negated, Scalar::ZERO));
            key_terms.len() - 1
        });
        key_terms[term].1 += z * decoded.k;
        scalars.push(-z);
        points.push(decoded.r);
    }
    scalars.push(basepoint);
    points.push(ED25519_BASEPOINT_POINT);
    for (negated_key, scalar) in key_terms {
        scalars.push(scalar);
        points.push(negated_key);
    }
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

/// The point a canonical encoding names, if it is one and not of small order.
fn canonical_point(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    if !is_canonical_y(bytes) {
        return None;
    }
    let point = CompressedEdwardsY(*bytes).decompress()?;
    // The points with x = 0 (where a set sign bit would be a second encoding) are of small
    // order, so this also refuses the only other non-canonical encodings.
    (!point.is_small_order()).then_some(point)
}

/// Whether the encoded y coordinate (the low 255 bits) is below p = 2²⁵⁵ − 19.
fn is_canonical_y(bytes: &[u8; 32]) -> bool {
    let top = bytes[31] & 0x7f;
    // y ≥ p only when every bit from 255 down to 5 is set and the low byte is at least 0xed.
    !(top == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[0] >= 0xed)
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::{Signer, SigningKey};

    use super::*;

    const DOMAIN: &[u8] = b"cairn/test/v1\0";

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn public(signing: &SigningKey) -> PublicKey {
        PublicKey::parse(signing.verifying_key().as_bytes()).expect("a real key")
    }

    fn sign(signing: &SigningKey, message: &[u8]) -> Vec<u8> {
        let mut signed = DOMAIN.to_vec();
        signed.extend_from_slice(message);
        signing.sign(&signed).to_bytes().to_vec()
    }

    /// A point of order 8, from its well-known encoding.
    fn eight_torsion() -> EdwardsPoint {
        let bytes: [u8; 32] =
            hex::decode("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05")
                .expect("hex")
                .try_into()
                .expect("32 bytes");
        let point = CompressedEdwardsY(bytes).decompress().expect("a point");
        assert!(point.is_small_order() && !(point + point + point + point).is_identity());
        point
    }

    /// Signs with a chosen nonce point offset: R = r·B + offset. Only the key's holder can.
    fn sign_with_r_offset(signing: &SigningKey, message: &[u8], offset: EdwardsPoint) -> Vec<u8> {
        let secret = signing.to_scalar();
        let nonce = Scalar::from(0x1234_5678_9abc_def0_u64) * Scalar::from(977_u64);
        let r = EdwardsPoint::mul_base(&nonce) + offset;
        let r_bytes = r.compress().to_bytes();
        let hash = Sha512::new()
            .chain_update(r_bytes)
            .chain_update(signing.verifying_key().as_bytes())
            .chain_update(DOMAIN)
            .chain_update(message)
            .finalize();
        let k = wide_scalar(&hash);
        let s = nonce + k * secret;
        [r_bytes, s.to_bytes()].concat()
    }

    #[test]
    fn valid_signatures_pass_alone_and_in_batches_and_verify_strict_agrees() {
        let keys: Vec<SigningKey> = (1..=5).map(key).collect();
        let messages: Vec<Vec<u8>> = (0..40u32)
            .map(|i| i.to_be_bytes().repeat(i as usize))
            .collect();
        let signatures: Vec<Vec<u8>> = messages
            .iter()
            .enumerate()
            .map(|(i, message)| sign(&keys[i % keys.len()], message))
            .collect();
        let batch: Vec<Signed<'_>> = messages
            .iter()
            .zip(&signatures)
            .enumerate()
            .map(|(i, (message, signature))| Signed {
                key: public(&keys[i % keys.len()]),
                domain: DOMAIN,
                message,
                signature,
            })
            .collect();
        for (i, signed) in batch.iter().enumerate() {
            assert!(verify_one(signed));
            let mut whole = DOMAIN.to_vec();
            whole.extend_from_slice(signed.message);
            let signature = ed25519_dalek::Signature::from_slice(signed.signature).expect("64");
            keys[i % keys.len()]
                .verifying_key()
                .verify_strict(&whole, &signature)
                .expect("verify_strict accepts it too");
        }
        assert!(verify_batch(&batch));
        assert!(verify_batch(&batch[..1]));
        assert!(verify_batch(&[]));
    }

    #[test]
    fn one_bad_signature_fails_the_batch_and_only_it_fails_alone() {
        let signing = key(7);
        let messages: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 100]).collect();
        let mut signatures: Vec<Vec<u8>> = messages.iter().map(|m| sign(&signing, m)).collect();
        // A signature over a different message, and a flipped bit in another's s.
        signatures[10] = sign(&signing, b"something else");
        signatures[50][40] ^= 1;
        let batch: Vec<Signed<'_>> = messages
            .iter()
            .zip(&signatures)
            .map(|(message, signature)| Signed {
                key: public(&signing),
                domain: DOMAIN,
                message,
                signature,
            })
            .collect();
        assert!(!verify_batch(&batch));
        let bad: Vec<usize> = (0..batch.len())
            .filter(|&i| !verify_one(&batch[i]))
            .collect();
        assert_eq!(bad, [10, 50]);
        // Without them the rest passes together.
        let good: Vec<Signed<'_>> = batch
            .iter()
            .enumerate()
            .filter(|(i, _)| !bad.contains(i))
            .map(|(_, signed)| *signed)
            .collect();
        assert!(verify_batch(&good));
    }

    #[test]
    fn malformed_signatures_fail_alone_and_in_batches() {
        let signing = key(9);
        let message = b"the message";
        let valid = sign(&signing, message);
        // The group order l, little-endian.
        let order = hex::decode("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
            .expect("hex");
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        // s + l: the same point equation, but a second encoding of s.
        let s =
            Scalar::from_canonical_bytes(valid[32..].try_into().expect("32")).expect("canonical s");
        let mut s_plus_l = [0u8; 32];
        let mut carry = 0u16;
        for (i, byte) in s_plus_l.iter_mut().enumerate() {
            let sum = u16::from(s.as_bytes()[i]) + u16::from(order[i]) + carry;
            *byte = sum as u8;
            carry = sum >> 8;
        }
        cases.push(("non-canonical s", [&valid[..32], &s_plus_l[..]].concat()));
        // R of small order (the identity), and R with y = p (a second encoding of y = 0).
        let mut identity = [0u8; 32];
        identity[0] = 1;
        cases.push(("small-order R", [&identity[..], &valid[32..]].concat()));
        let mut y_is_p = [0xffu8; 32];
        y_is_p[0] = 0xed;
        y_is_p[31] = 0x7f;
        cases.push(("non-canonical R", [&y_is_p[..], &valid[32..]].concat()));
        cases.push(("short", valid[..63].to_vec()));
        // A small-order component in R: valid under the cofactored rule, but only if the
        // nonce offset is small-order; an offset by B is simply wrong.
        cases.push((
            "R off by the basepoint",
            sign_with_r_offset(&signing, message, ED25519_BASEPOINT_POINT),
        ));
        let good = Signed {
            key: public(&signing),
            domain: DOMAIN,
            message,
            signature: &valid,
        };
        for (what, signature) in &cases {
            let signed = Signed { signature, ..good };
            assert!(!verify_one(&signed), "{what} passed alone");
            assert!(
                !verify_batch(&[good, signed, good]),
                "{what} passed in a batch"
            );
        }
    }

    #[test]
    fn a_small_order_component_in_r_is_judged_the_same_alone_and_in_batches() {
        // Only the key's holder can make such a signature. verify_strict refuses it; a
        // cofactored batch check cannot tell it apart, so Cairn's rule accepts it everywhere.
        let signing = key(11);
        let message = b"torsion";
        let torsion = sign_with_r_offset(&signing, message, eight_torsion());
        let plain = sign_with_r_offset(&signing, message, EdwardsPoint::default());
        let mut whole = DOMAIN.to_vec();
        whole.extend_from_slice(message);
        let strict = |signature: &[u8]| {
            signing
                .verifying_key()
                .verify_strict(
                    &whole,
                    &ed25519_dalek::Signature::from_slice(signature).expect("64"),
                )
                .is_ok()
        };
        assert!(strict(&plain) && !strict(&torsion));
        let signed = |signature| Signed {
            key: public(&signing),
            domain: DOMAIN,
            message,
            signature,
        };
        let other = sign(&signing, b"another");
        let other = Signed {
            message: b"another",
            signature: &other,
            ..signed(&plain)
        };
        assert!(verify_one(&signed(&torsion)));
        assert!(verify_batch(&[other, signed(&torsion), signed(&plain)]));
        assert!(verify_batch(&[signed(&torsion), signed(&torsion)]));
    }

    #[test]
    fn weak_and_non_canonical_keys_are_refused() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(PublicKey::parse(&identity).is_none());
        let order_8 = eight_torsion().compress().to_bytes();
        assert!(PublicKey::parse(&order_8).is_none());
        // y = p + 1 names the same point as y = 1 (the identity) but is not canonical.
        let mut y_is_p_plus_1 = [0xffu8; 32];
        y_is_p_plus_1[0] = 0xee;
        y_is_p_plus_1[31] = 0x7f;
        assert!(PublicKey::parse(&y_is_p_plus_1).is_none());
        assert!(PublicKey::parse(key(3).verifying_key().as_bytes()).is_some());
    }
}
