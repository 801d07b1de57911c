//! Latency statistics and the median-of-repetitions aggregation every reported figure goes through.

use serde::{Deserialize, Serialize};

/// One run's delivery latencies (µs), how many deliveries were expected, and the CPU time the
/// nodes used meanwhile (see [`crate::cluster::Cluster::cpu_us`]).
#[derive(Debug, Clone, Default)]
pub struct Samples {
    pub latencies_us: Vec<u64>,
    pub expected: u64,
    pub cpu_us: u64,
}

/// What a process has cost so far.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Usage {
    /// User + system CPU time (µs).
    pub cpu_us: u64,
    /// Peak resident set (KiB).
    pub peak_rss_kib: u64,
}

/// This process's usage so far (getrusage; Linux reports the peak RSS in KiB).
pub fn own_usage() -> Usage {
    use nix::sys::resource::{getrusage, UsageWho};
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(u) => {
            let us =
                |t: nix::sys::time::TimeVal| t.tv_sec() as u64 * 1_000_000 + t.tv_usec() as u64;
            Usage {
                cpu_us: us(u.user_time()) + us(u.system_time()),
                peak_rss_kib: u.max_rss() as u64,
            }
        }
        Err(_) => Usage::default(),
    }
}

/// CLOCK_MONOTONIC (ns): one clock for every process on this machine, so a publish stamped in
/// one process and its delivery stamped in another subtract to the latency.
pub fn mono_ns() -> u64 {
    use nix::time::{clock_gettime, ClockId};
    let t = clock_gettime(ClockId::CLOCK_MONOTONIC).expect("CLOCK_MONOTONIC is always there");
    t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64
}

/// The figures of one run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RunFigures {
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub delivery_ratio: f64,
    /// CPU time per delivered message (µs): the cost of a delivery, whatever the latency.
    pub cpu_us_per_delivery: f64,
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
            cpu_us_per_delivery: if l.is_empty() {
                f64::NAN
            } else {
                self.cpu_us as f64 / l.len() as f64
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
            cpu_us: 5000,
        };
        let f = s.figures();
        assert_eq!(f.p50_ms, 51.0);
        assert_eq!(f.p99_ms, 99.0);
        assert_eq!(f.max_ms, 100.0);
        assert_eq!(f.delivery_ratio, 0.5);
        assert_eq!(f.cpu_us_per_delivery, 50.0);
        let sp = Spread::of([3.0, 1.0, 2.0]);
        assert_eq!((sp.median, sp.min, sp.max), (2.0, 1.0, 3.0));
    }
}
