//! A bit-exact port of Go's `math/rand` source (the additive lagged Fibonacci generator behind
//! `rand.New(rand.NewSource(seed))`), with the draws keep-core uses: `Int63`, `Uint32`,
//! `Float64` and `Shuffle` (through Go's unexported Lemire `int31n`). Matching it bit for bit is
//! what makes our leader choice and heartbeat draw agree with keep-core's.
//!
//! The algorithm follows the description in `go-math-rand.md` (shared reference); the one table
//! that cannot be derived, `rngCooked`, is Go's data (BSD-3-Clause, The Go Authors), shipped in
//! `data/go-rng-cooked.txt`.

use std::sync::OnceLock;

const LEN: usize = 607;
const TAP: usize = 273;
const MASK: u64 = (1 << 63) - 1;
const M: i64 = (1 << 31) - 1;

/// Go's `rngCooked`: the generator's state after 7.8e12 iterations.
fn cooked() -> &'static [i64; LEN] {
    static COOKED: OnceLock<[i64; LEN]> = OnceLock::new();
    COOKED.get_or_init(|| {
        let text = include_str!("../data/go-rng-cooked.txt");
        let values: Vec<i64> = text
            .lines()
            .map(|l| l.trim().parse().expect("go-rng-cooked.txt holds integers"))
            .collect();
        values
            .try_into()
            .expect("go-rng-cooked.txt holds 607 numbers")
    })
}

/// One step of the seeding LCG: x = 48271·x mod (2^31 − 1), without overflow (Schrage).
fn seedrand(x: i32) -> i32 {
    const A: i32 = 48271;
    const Q: i32 = 44488;
    const R: i32 = 3399;
    let hi = x / Q;
    let lo = x % Q;
    let mut x = A * lo - R * hi;
    if x < 0 {
        x += M as i32;
    }
    x
}

/// Go's `rand.New(rand.NewSource(seed))`.
#[derive(Clone)]
pub struct GoRng {
    tap: usize,
    feed: usize,
    vec: [i64; LEN],
}

impl GoRng {
    /// Seeds like `rand.NewSource(seed)`.
    pub fn new(seed: i64) -> Self {
        let mut seed = seed % M;
        if seed < 0 {
            seed += M;
        }
        if seed == 0 {
            seed = 89_482_311;
        }
        let mut x = seed as i32;
        let mut vec = [0i64; LEN];
        for i in -20..LEN as i64 {
            x = seedrand(x);
            if i >= 0 {
                let mut u = (x as i64).wrapping_shl(40);
                x = seedrand(x);
                u ^= (x as i64).wrapping_shl(20);
                x = seedrand(x);
                u ^= x as i64;
                u ^= cooked()[i as usize];
                vec[i as usize] = u;
            }
        }
        GoRng {
            tap: 0,
            feed: LEN - TAP,
            vec,
        }
    }

    /// The raw draw every other draw is built from.
    pub fn uint64(&mut self) -> u64 {
        self.tap = if self.tap == 0 { LEN - 1 } else { self.tap - 1 };
        self.feed = if self.feed == 0 {
            LEN - 1
        } else {
            self.feed - 1
        };
        let x = self.vec[self.feed].wrapping_add(self.vec[self.tap]);
        self.vec[self.feed] = x;
        x as u64
    }

    /// Non-negative 63-bit draw.
    pub fn int63(&mut self) -> i64 {
        (self.uint64() & MASK) as i64
    }

    /// The high 32 bits of an `Int63` draw.
    pub fn uint32(&mut self) -> u32 {
        (self.int63() >> 31) as u32
    }

    /// In [0, 1), as Go computes it (a draw that rounds to 1.0 is redrawn).
    pub fn float64(&mut self) -> f64 {
        loop {
            let f = self.int63() as f64 / (1u64 << 63) as f64;
            if f != 1.0 {
                return f;
            }
        }
    }

    /// Go's unexported `int31n` (Lemire's method), used by `Shuffle`.
    fn int31n(&mut self, n: i32) -> i32 {
        let n = n as u32;
        let mut prod = self.uint32() as u64 * n as u64;
        let mut low = prod as u32;
        if low < n {
            let thresh = n.wrapping_neg() % n;
            while low < thresh {
                prod = self.uint32() as u64 * n as u64;
                low = prod as u32;
            }
        }
        (prod >> 32) as i32
    }

    /// Go's `Shuffle` (Fisher–Yates from the end, for slices shorter than 2^31).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        assert!(
            items.len() < (1 << 31),
            "Go's Shuffle takes fewer than 2^31 items"
        );
        for i in (1..items.len()).rev() {
            let j = self.int31n(i as i32 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    #[test]
    fn the_cooked_table_is_gos() {
        let joined = cooked()
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(
            hex::encode(Sha256::digest(joined.as_bytes())),
            "43adc05b4370b284c32cf50d0fb392452975b4d190e6bb281b5be386b3b4c7e4"
        );
    }

    #[test]
    fn seed_zero_reproduces_gos_regression_values() {
        let mut r = GoRng::new(0);
        let got: Vec<i64> = (0..5).map(|_| r.int63()).collect();
        assert_eq!(
            got,
            [
                8717895732742165505,
                2259404117704393152,
                6050128673802995827,
                501233450539197794,
                3390393562759376202
            ]
        );
        let mut r = GoRng::new(0);
        let got: Vec<u32> = (0..3).map(|_| r.uint32()).collect();
        assert_eq!(got, [4059586549, 1052117029, 2817310706]);
        let mut r = GoRng::new(0);
        let got: Vec<f64> = (0..3).map(|_| r.float64()).collect();
        assert_eq!(
            got,
            [
                0.945_196_149_294_116_4,
                0.244_965_085_293_779_75,
                0.655_956_265_195_405_2
            ]
        );
        let mut r = GoRng::new(0);
        let mut v: Vec<u32> = (0..10).collect();
        r.shuffle(&mut v);
        assert_eq!(v, [3, 7, 4, 6, 1, 8, 0, 5, 2, 9]);
        // Seed 0 is replaced by 89482311: the same stream.
        let (mut a, mut b) = (GoRng::new(0), GoRng::new(89_482_311));
        assert!((0..100).all(|_| a.uint64() == b.uint64()));
    }

    #[test]
    fn seed_one_reproduces_gos_regression_values() {
        let mut r = GoRng::new(1);
        let got: Vec<i64> = (0..5).map(|_| r.int63()).collect();
        assert_eq!(
            got,
            [
                5577006791947779410,
                8674665223082153551,
                6129484611666145821,
                4037200794235010051,
                3916589616287113937
            ]
        );
        let mut r = GoRng::new(1);
        let mut v: Vec<u32> = (0..10).collect();
        r.shuffle(&mut v);
        assert_eq!(v, [1, 7, 4, 0, 9, 2, 3, 5, 8, 6]);
    }

    #[test]
    fn negative_and_large_seeds_reduce_like_go() {
        // Go: seed % M with the dividend's sign, then + M when negative.
        let (mut a, mut b) = (GoRng::new(-1), GoRng::new(M - 1));
        assert!((0..50).all(|_| a.uint64() == b.uint64()));
        let (mut a, mut b) = (GoRng::new(M + 5), GoRng::new(5));
        assert!((0..50).all(|_| a.uint64() == b.uint64()));
        let (mut a, mut b) = (GoRng::new(M), GoRng::new(0));
        assert!((0..50).all(|_| a.uint64() == b.uint64()));
    }

    #[test]
    fn int31n_stays_in_range() {
        let mut r = GoRng::new(42);
        for n in [1, 2, 3, 7, 100, 1 << 30] {
            for _ in 0..200 {
                let v = r.int31n(n);
                assert!((0..n).contains(&v));
            }
        }
    }
}
