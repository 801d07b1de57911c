//! Groth16 proofs checked together: every anonymous message carries a proof under the same
//! verifying key, so a relay that has several waiting checks them with one multi-pairing and one
//! final exponentiation instead of one of each per proof.
//!
//! One proof (A, B, C) with public inputs x verifies when
//! e(A, B) = e(α, β) · e(L(x), γ) · e(C, δ), where L(x) = IC₀ + Σⱼ xⱼ·ICⱼ. For n proofs and
//! random 128-bit rᵢ the batch checks
//!
//! ```text
//! Πᵢ e(rᵢ·Aᵢ, Bᵢ) · e(Σᵢ rᵢ·L(xᵢ), −γ) · e(Σᵢ rᵢ·Cᵢ, −δ) = e(α, β)^(Σᵢ rᵢ)
//! ```
//!
//! with Σᵢ rᵢ·L(xᵢ) = (Σᵢ rᵢ)·IC₀ + Σⱼ (Σᵢ rᵢ·xᵢⱼ)·ICⱼ, so the public inputs cost a handful of
//! scalar multiplications for the whole batch. A batch holding an invalid proof passes with
//! probability at most about 2⁻¹²⁸ (the rᵢ are drawn after the proofs are fixed); proofs decoded
//! by [`crate::RlnMessage::decode`] are on the curve and in the subgroups, which the argument
//! needs. When the batch fails, the caller checks each proof alone to find the bad ones
//! ([`crate::ProofPool`] does).

use ark_ec::pairing::{Pairing, PairingOutput};
use ark_ec::{AffineRepr, CurveGroup, VariableBaseMSM};
use ark_ff::Zero;
use rand::RngCore;
use rln::prelude::{Curve, Fr, G1Affine, G1Projective, Proof, RLNProofValues, VerifyingKey};

type G2Prepared = <Curve as Pairing>::G2Prepared;

/// The verifying key, prepared once for batches.
pub struct BatchVerifier {
    /// IC₀ … ICₖ: the bases of the public inputs.
    inputs: Vec<G1Affine>,
    alpha_beta: PairingOutput<Curve>,
    neg_gamma: G2Prepared,
    neg_delta: G2Prepared,
}

/// The circuit's public inputs in the order the verifying key expects them (zerokit's RLN
/// circuits: y, root, nullifier, x, external nullifier; the multi-message circuit has one y and
/// one nullifier per slot and the slot selectors last).
pub fn public_inputs(values: &RLNProofValues) -> Vec<Fr> {
    match (values.y(), values.nullifier()) {
        (Some(y), Some(nullifier)) => vec![
            y,
            values.root(),
            nullifier,
            values.x(),
            values.external_nullifier(),
        ],
        _ => {
            let (ys, nullifiers) = (
                values.ys().unwrap_or_default(),
                values.nullifiers().unwrap_or_default(),
            );
            let selectors = values.selector_used().unwrap_or_default();
            let mut inputs = Vec::with_capacity(ys.len() + nullifiers.len() + selectors.len() + 3);
            inputs.extend_from_slice(ys);
            inputs.push(values.root());
            inputs.extend_from_slice(nullifiers);
            inputs.push(values.x());
            inputs.push(values.external_nullifier());
            inputs.extend(selectors.iter().map(|&used| Fr::from(used)));
            inputs
        }
    }
}

impl BatchVerifier {
    /// Prepares `vk` (zerokit's default single-message key for the channel).
    pub fn new(vk: &VerifyingKey) -> Self {
        BatchVerifier {
            inputs: vk.gamma_abc_g1.clone(),
            alpha_beta: Curve::pairing(vk.alpha_g1, vk.beta_g2),
            neg_gamma: (-vk.gamma_g2.into_group()).into_affine().into(),
            neg_delta: (-vk.delta_g2.into_group()).into_affine().into(),
        }
    }

    /// The verifier of the key zerokit proves the channel's messages with.
    pub fn for_channel() -> Self {
        Self::new(&rln::prelude::default_zkey_single().0.vk)
    }

    /// True when every proof verifies against its values (with overwhelming probability); false
    /// when at least one does not, or when values do not fit the key. An empty batch is true.
    pub fn verify(&self, batch: &[(&Proof, &RLNProofValues)], rng: &mut impl RngCore) -> bool {
        if batch.is_empty() {
            return true;
        }
        let mut weights = Vec::with_capacity(batch.len());
        let mut input_sums = vec![Fr::zero(); self.inputs.len()];
        let mut weight_sum = Fr::zero();
        for (_, values) in batch {
            let inputs = public_inputs(values);
            if inputs.len() + 1 != self.inputs.len() {
                return false;
            }
            let r = Fr::from(nonzero_weight(rng));
            weight_sum += r;
            input_sums[0] += r;
            for (sum, x) in input_sums[1..].iter_mut().zip(&inputs) {
                *sum += r * x;
            }
            weights.push(r);
        }
        let combined_inputs = G1Projective::msm_unchecked(&self.inputs, &input_sums);
        let cs: Vec<G1Affine> = batch.iter().map(|(p, _)| p.c).collect();
        let combined_c = G1Projective::msm_unchecked(&cs, &weights);
        let mut lefts: Vec<G1Projective> = batch
            .iter()
            .zip(&weights)
            .map(|((p, _), r)| p.a * r)
            .collect();
        lefts.push(combined_inputs);
        lefts.push(combined_c);
        let lefts = G1Projective::normalize_batch(&lefts);
        let mut rights: Vec<G2Prepared> = batch.iter().map(|(p, _)| p.b.into()).collect();
        rights.push(self.neg_gamma.clone());
        rights.push(self.neg_delta.clone());
        let product = Curve::multi_miller_loop(lefts, rights);
        match Curve::final_exponentiation(product) {
            Some(result) => result == self.alpha_beta * weight_sum,
            None => false,
        }
    }
}

/// A random 128-bit weight, never zero (a zero weight would leave its proof unchecked).
fn nonzero_weight(rng: &mut impl RngCore) -> u128 {
    loop {
        let w = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
        if w != 0 {
            return w;
        }
    }
}
