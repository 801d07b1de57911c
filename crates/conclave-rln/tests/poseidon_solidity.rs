//! The registry contract checks a revealed RLN secret against a registered leaf, so it needs
//! Poseidon exactly as zerokit computes it. This test generates `contracts/Poseidon.sol` from
//! zerokit's own parameters (round constants and MDS matrices) and fails if the committed file
//! differs; run it with `CONCLAVE_WRITE_SOLIDITY=1` to rewrite the file. It also replays the
//! generated round structure in Rust against zerokit's hash, so the Solidity loop is known to be
//! the same algorithm; the anvil tests in conclave-registry then compare the deployed contract.

// A failed unwrap here is a failed test (the crate denies unwrap in library code).
#![allow(clippy::unwrap_used)]

use std::fmt::Write as _;
use std::path::PathBuf;

use ark_ff::{AdditiveGroup, Field};
use conclave_rln::{fr_to_hex, rate_commitment, Fr, RlnIdentity};
use zerokit_utils::poseidon::Poseidon;

/// (t, full rounds, partial rounds, skip_matrices) as rln 3.0.0 configures them for one and two
/// inputs (its `ROUND_PARAMS`); the replay below proves these are the ones it uses.
const PARAMS: [(usize, usize, usize, usize); 2] = [(2, 8, 56, 0), (3, 8, 57, 0)];

const MODULUS: &str = "0x30644e72e131a029b85045b68181585d2833e84879b9709143e1f593f0000001";

struct Shape {
    t: usize,
    full: usize,
    partial: usize,
    c: Vec<Fr>,
    m: Vec<Vec<Fr>>,
}

fn shapes() -> Vec<Shape> {
    let p = Poseidon::<Fr>::from(&PARAMS);
    p.get_parameters()
        .iter()
        .map(|r| Shape {
            t: r.t,
            full: r.n_rounds_f,
            partial: r.n_rounds_p,
            c: r.c[..r.t * (r.n_rounds_f + r.n_rounds_p)].to_vec(),
            m: r.m.clone(),
        })
        .collect()
}

/// The generated contract's algorithm, in Rust: per round add the constants, raise to the fifth
/// power (every lane in full rounds, lane 0 in partial ones), multiply by the MDS matrix.
fn replay(s: &Shape, inputs: &[Fr]) -> Fr {
    let mut state = vec![Fr::ZERO; s.t];
    state[1..].copy_from_slice(inputs);
    for i in 0..s.full + s.partial {
        for (j, x) in state.iter_mut().enumerate() {
            *x += s.c[i * s.t + j];
        }
        let full = i < s.full / 2 || i >= s.full / 2 + s.partial;
        for x in state.iter_mut().take(if full { s.t } else { 1 }) {
            *x = x.pow([5u64]);
        }
        state = (0..s.t)
            .map(|r| (0..s.t).map(|k| s.m[r][k] * state[k]).sum())
            .collect();
    }
    state[0]
}

fn lit(x: &Fr) -> String {
    format!("0x{}", fr_to_hex(x))
}

fn function(s: &Shape) -> String {
    let n = s.t - 1;
    let args: Vec<String> = (1..s.t).map(|k| format!("uint256 a{k}")).collect();
    let blob: String = s.c.iter().map(fr_to_hex).collect();
    let mut f = String::new();
    let _ = writeln!(
        f,
        "    /// @notice Poseidon over {n} input{}, as zerokit's RLN hashes them.",
        if n == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        f,
        "    function hash{n}({}) external pure returns (uint256 r) {{",
        args.join(", ")
    );
    for k in 1..s.t {
        let _ = writeln!(f, "        if (a{k} >= Q) revert NotAFieldElement(a{k});");
    }
    let _ = writeln!(
        f,
        "        // Round constants: {} rounds x {} lanes, 32 bytes each, round-major.",
        s.full + s.partial,
        s.t
    );
    let _ = writeln!(f, "        bytes memory c = hex\"{blob}\";");
    let _ = writeln!(f, "        assembly (\"memory-safe\") {{");
    let _ = writeln!(f, "            let q := {MODULUS}");
    let _ = writeln!(f, "            let s0 := 0");
    for k in 1..s.t {
        let _ = writeln!(f, "            let s{k} := a{k}");
    }
    let _ = writeln!(f, "            let p := add(c, 32)");
    let _ = writeln!(
        f,
        "            for {{ let i := 0 }} lt(i, {}) {{ i := add(i, 1) }} {{",
        s.full + s.partial
    );
    for k in 0..s.t {
        let _ = writeln!(
            f,
            "                s{k} := addmod(s{k}, mload(add(p, {})), q)",
            32 * k
        );
    }
    let _ = writeln!(f, "                p := add(p, {})", 32 * s.t);
    let _ = writeln!(f, "                let x := mulmod(s0, s0, q)");
    let _ = writeln!(f, "                s0 := mulmod(mulmod(x, x, q), s0, q)");
    let _ = writeln!(
        f,
        "                if or(lt(i, {}), gt(i, {})) {{",
        s.full / 2,
        s.full / 2 + s.partial - 1
    );
    for k in 1..s.t {
        let _ = writeln!(f, "                    x := mulmod(s{k}, s{k}, q)");
        let _ = writeln!(
            f,
            "                    s{k} := mulmod(mulmod(x, x, q), s{k}, q)"
        );
    }
    let _ = writeln!(f, "                }}");
    for r in 0..s.t {
        let terms: Vec<String> = (0..s.t)
            .map(|k| format!("mulmod({}, s{k}, q)", lit(&s.m[r][k])))
            .collect();
        let mut sum = terms[0].clone();
        for t in &terms[1..] {
            sum = format!("addmod({sum}, {t}, q)");
        }
        let _ = writeln!(f, "                let n{r} := {sum}");
    }
    for r in 0..s.t {
        let _ = writeln!(f, "                s{r} := n{r}");
    }
    let _ = writeln!(f, "            }}");
    let _ = writeln!(f, "            r := s0");
    let _ = writeln!(f, "        }}");
    let _ = writeln!(f, "    }}");
    f
}

fn solidity() -> String {
    let shapes = shapes();
    let mut out = String::new();
    out.push_str("// SPDX-License-Identifier: Apache-2.0\n");
    out.push_str(
        "// GENERATED by crates/conclave-rln/tests/poseidon_solidity.rs from zerokit's Poseidon\n\
         // parameters (rln 3.0.0). Do not edit: change the generator, then run\n\
         // CONCLAVE_WRITE_SOLIDITY=1 cargo nextest run -p conclave-rln --test poseidon_solidity\n",
    );
    out.push_str("pragma solidity 0.8.30;\n\n");
    out.push_str(
        "/// @title Poseidon\n\
         /// @notice Poseidon over the BN254 scalar field with zerokit's parameters, so the registry\n\
         ///         can check that a revealed RLN secret opens a registered rate commitment.\n\
         contract Poseidon {\n",
    );
    let _ = writeln!(
        out,
        "    /// @notice The BN254 scalar field modulus: inputs must be below it.\n    uint256 public constant Q = {MODULUS};\n"
    );
    out.push_str("    error NotAFieldElement(uint256 value);\n");
    for s in &shapes {
        out.push('\n');
        out.push_str(&function(s));
    }
    out.push_str("}\n");
    out
}

fn contract_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts/Poseidon.sol")
}

#[test]
fn the_generated_round_structure_is_zerokits_poseidon() {
    let shapes = shapes();
    assert_eq!(shapes.len(), 2);
    let mut rng = rand::thread_rng();
    for _ in 0..8 {
        let id = RlnIdentity::generate();
        let secret = conclave_rln::fr_from_bytes(&id.secret_bytes()).unwrap();
        let idc = id.id_commitment();
        assert_eq!(replay(&shapes[0], &[secret]), idc, "one input");
        let limit = rand::Rng::gen_range(&mut rng, 1..1000u32);
        assert_eq!(
            replay(&shapes[1], &[idc, Fr::from(u64::from(limit))]),
            rate_commitment(idc, limit),
            "two inputs"
        );
    }
}

#[test]
fn the_committed_solidity_matches_the_generator() {
    let text = solidity();
    let path = contract_path();
    if std::env::var_os("CONCLAVE_WRITE_SOLIDITY").is_some() {
        std::fs::write(&path, &text).expect("write contracts/Poseidon.sol");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "contracts/Poseidon.sol is not what the generator produces from zerokit's parameters; \
         run CONCLAVE_WRITE_SOLIDITY=1 cargo nextest run -p conclave-rln --test poseidon_solidity, \
         then node scripts/build-contracts.mjs"
    );
}
