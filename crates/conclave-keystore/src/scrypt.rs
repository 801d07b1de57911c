//! scrypt (RFC 7914) as Web3 Secret Storage uses it. Unlike RFC 7914 it allows N ≥ 2^(16·r):
//! the format's own scrypt test vector has N = 2^18 with r = 1, and geth accepts it. The cost is
//! bounded by the caller ([`super::Limits`]).

use hmac::Hmac;
use sha2::Sha256;
use zeroize::Zeroize;

fn salsa20_8(b: &mut [u32; 16]) {
    let mut x = *b;
    let quarter = |x: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize| {
        x[b] ^= x[a].wrapping_add(x[d]).rotate_left(7);
        x[c] ^= x[b].wrapping_add(x[a]).rotate_left(9);
        x[d] ^= x[c].wrapping_add(x[b]).rotate_left(13);
        x[a] ^= x[d].wrapping_add(x[c]).rotate_left(18);
    };
    for _ in 0..4 {
        // Columns, then rows.
        quarter(&mut x, 0, 4, 8, 12);
        quarter(&mut x, 5, 9, 13, 1);
        quarter(&mut x, 10, 14, 2, 6);
        quarter(&mut x, 15, 3, 7, 11);
        quarter(&mut x, 0, 1, 2, 3);
        quarter(&mut x, 5, 6, 7, 4);
        quarter(&mut x, 10, 11, 8, 9);
        quarter(&mut x, 15, 12, 13, 14);
    }
    for (out, add) in b.iter_mut().zip(x) {
        *out = out.wrapping_add(add);
    }
}

/// BlockMix over `2r` 16-word blocks of `input`, into `output`.
fn block_mix(input: &[u32], output: &mut [u32], r: usize) {
    let mut x = [0u32; 16];
    x.copy_from_slice(&input[(2 * r - 1) * 16..]);
    for i in 0..2 * r {
        for (w, v) in x.iter_mut().zip(&input[i * 16..(i + 1) * 16]) {
            *w ^= v;
        }
        salsa20_8(&mut x);
        // Even blocks first, then odd ones.
        let at = if i % 2 == 0 { i / 2 } else { r + i / 2 };
        output[at * 16..(at + 1) * 16].copy_from_slice(&x);
    }
}

fn ro_mix(block: &mut [u8], n: usize, r: usize) {
    let words = 32 * r;
    let mut x: Vec<u32> = block
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    let mut v = vec![0u32; n * words];
    let mut y = vec![0u32; words];
    for i in 0..n {
        v[i * words..(i + 1) * words].copy_from_slice(&x);
        block_mix(&x, &mut y, r);
        std::mem::swap(&mut x, &mut y);
    }
    for _ in 0..n {
        let last = (2 * r - 1) * 16;
        let j = ((u64::from(x[last + 1]) << 32 | u64::from(x[last])) % n as u64) as usize;
        for (w, vj) in x.iter_mut().zip(&v[j * words..(j + 1) * words]) {
            *w ^= vj;
        }
        block_mix(&x, &mut y, r);
        std::mem::swap(&mut x, &mut y);
    }
    for (c, w) in block.chunks_exact_mut(4).zip(&x) {
        c.copy_from_slice(&w.to_le_bytes());
    }
    v.zeroize();
    x.zeroize();
    y.zeroize();
}

/// scrypt(password, salt, N = `n`, r, p) into `out`. `n` must be a power of two above 1.
pub fn derive(password: &[u8], salt: &[u8], n: usize, r: usize, p: usize, out: &mut [u8]) {
    let mut b = vec![0u8; p * 128 * r];
    pbkdf2::pbkdf2::<Hmac<Sha256>>(password, salt, 1, &mut b);
    for chunk in b.chunks_exact_mut(128 * r) {
        ro_mix(chunk, n, r);
    }
    pbkdf2::pbkdf2::<Hmac<Sha256>>(password, &b, 1, out);
    b.zeroize();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7914 § 12's vectors (the two that run quickly).
    #[test]
    fn rfc_7914_vectors() {
        let mut out = [0u8; 64];
        derive(b"", b"", 16, 1, 1, &mut out);
        assert_eq!(hex::encode(out), "77d6576238657b203b19ca42c18a0497f16b4844e3074ae8dfdffa3fede21442fcd0069ded0948f8326a753a0fc81f17e8d3e0fb2e0d3628cf35e20c38d18906");
        derive(b"password", b"NaCl", 1024, 8, 16, &mut out);
        assert_eq!(hex::encode(out), "fdbabe1c9d3472007856e7190d01e9fe7c6ad7cbc8237830e77376634b3731622eaf30d92e22a3886ff109279d9830dac727afb94a83ee6d8360cbdfa2cc0640");
    }
}
