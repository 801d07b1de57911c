//! Latency statistics and the median-of-repetitions aggregation every reported figure goes through.

use serde::Serialize;

/// One run's delivery latencies (µs) and how many deliveries were expected.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    pub latencies_us: Vec<u64>,
    pub expected: u64,
}

/// The figures of one run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RunFigures {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub delivery_ratio: f64,
}

/// The nearest-rank percentile of sorted values (NaN when there are none).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

impl Samples {
    pub fn figures(mut self) -> RunFigures {
        self.latencies_us.sort_unstable();
        let l: Vec<f64> = self
            .latencies_us
            .iter()
            .map(|v| *v as f64 / 1000.0)
            .collect();
        RunFigures {
            p50_ms: percentile(&l, 0.5),
            p95_ms: percentile(&l, 0.95),
            p99_ms: percentile(&l, 0.99),
            max_ms: l.last().copied().unwrap_or(f64::NAN),
            delivery_ratio: if self.expected == 0 {
                0.0
            } else {
                l.len() as f64 / self.expected as f64
            },
        }
    }
}

/// A figure over repetitions: the median, with the range.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: impl IntoIterator<Item = f64>) -> Spread {
        let mut v: Vec<f64> = values.into_iter().collect();
        v.sort_by(f64::total_cmp);
        Spread {
            median: v.get(v.len() / 2).copied().unwrap_or(f64::NAN),
            min: v.first().copied().unwrap_or(f64::NAN),
            max: v.last().copied().unwrap_or(f64::NAN),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_ratio() {
        let s = Samples {
            latencies_us: (1..=100).rev().map(|v| v * 1000).collect(),
            expected: 200,
        };
        let f = s.figures();
        assert_eq!(f.p50_ms, 51.0);
        assert_eq!(f.p99_ms, 99.0);
        assert_eq!(f.max_ms, 100.0);
        assert_eq!(f.delivery_ratio, 0.5);
        let sp = Spread::of([3.0, 1.0, 2.0]);
        assert_eq!((sp.median, sp.min, sp.max), (2.0, 1.0, 3.0));
    }
}
