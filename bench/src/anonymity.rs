//! The anonymity scenario (#17): 15 member processes post anonymously at random while one and
//! three curious members (colluding) record where each message first reached them and name the
//! author with the simplest estimators (first-spy; for colluders, the earliest of them and the
//! majority). Precision beside a random guess 1/(N − c), and publish → all-delivered latency,
//! with the stem on and off in the same run. It runs `conclave devnet --scenario anonymity`
//! (nodes as separate processes) and reads the report the devnet writes.

use anyhow::bail;
use conclave_api::{random_guess, AnonymityReport, DevnetReport, FirstSights};
use serde::Serialize;

use crate::coordination::repeat_devnet;
use crate::stats::Spread;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct AnonymityParams {
    pub members: usize,
    pub spies: usize,
    /// Messages per repetition.
    pub messages: usize,
    /// The stem epoch the nodes run (s): short, so a repetition averages over many choices of
    /// successors.
    pub stem_epoch_s: u64,
}

/// One estimator for one set of colluders, over every repetition: messages pooled.
#[derive(Debug, Clone, Serialize)]
pub struct Precision {
    pub estimator: String,
    pub colluders: usize,
    pub judged: usize,
    pub correct: usize,
    pub precision: f64,
    pub random_guess: f64,
}

#[derive(Serialize)]
pub struct AnonymityRow {
    pub params: AnonymityParams,
    pub stem: bool,
    pub conclave_bin: String,
    pub runs: Vec<AnonymityReport>,
    pub precision: Vec<Precision>,
    /// The first spy's first sights, summed over the repetitions.
    pub first_sights: FirstSights,
    pub latency_p50_ms: Spread,
    pub latency_p99_ms: Spread,
}

fn read(report: &DevnetReport) -> anyhow::Result<AnonymityReport> {
    match report {
        DevnetReport::Anonymity(r) => Ok(r.clone()),
        other => bail!("expected the devnet's anonymity report, got {other:?}"),
    }
}

pub async fn measure(p: AnonymityParams, stem: bool, reps: usize) -> anyhow::Result<AnonymityRow> {
    let args = [
        "--scenario".to_owned(),
        "anonymity".into(),
        "--nodes".into(),
        p.members.to_string(),
        "--spies".into(),
        p.spies.to_string(),
        "--messages".into(),
        p.messages.to_string(),
        "--stem".into(),
        stem.to_string(),
        "--stem-epoch".into(),
        format!("{}s", p.stem_epoch_s),
    ];
    let (bin, runs) = repeat_devnet(reps, &args, read, |r, a: &AnonymityReport| {
        let named: Vec<String> = a
            .guesses
            .iter()
            .map(|g| format!("{} c={} {:.3}", g.estimator, g.colluders, g.precision()))
            .collect();
        eprintln!(
            "  anonymity        n={} stem {} rep {r}: {}; latency p50 {} ms p99 {} ms",
            p.members,
            if stem { "on " } else { "off" },
            named.join(", "),
            a.latency_p50_ms(),
            a.latency_p99_ms()
        )
    })
    .await?;
    let mut precision: Vec<Precision> = Vec::new();
    let mut first_sights = FirstSights::default();
    for run in &runs {
        for g in &run.guesses {
            match precision
                .iter_mut()
                .find(|x| x.estimator == g.estimator && x.colluders == g.colluders)
            {
                Some(x) => {
                    x.judged += g.judged;
                    x.correct += g.correct;
                }
                None => precision.push(Precision {
                    estimator: g.estimator.clone(),
                    colluders: g.colluders,
                    judged: g.judged,
                    correct: g.correct,
                    precision: 0.0,
                    random_guess: random_guess(p.members, g.colluders),
                }),
            }
        }
        let s = run.first_sights;
        first_sights.stem_from_author += s.stem_from_author;
        first_sights.stem_from_relay += s.stem_from_relay;
        first_sights.gossip_from_author += s.gossip_from_author;
        first_sights.gossip_from_relay += s.gossip_from_relay;
        first_sights.unseen += s.unseen;
    }
    for x in &mut precision {
        x.precision = x.correct as f64 / x.judged.max(1) as f64;
    }
    Ok(AnonymityRow {
        params: p,
        stem,
        conclave_bin: bin.display().to_string(),
        latency_p50_ms: Spread::of(runs.iter().map(|r| r.latency_p50_ms() as f64)),
        latency_p99_ms: Spread::of(runs.iter().map(|r| r.latency_p99_ms() as f64)),
        precision,
        first_sights,
        runs,
    })
}

/// The Markdown section: both stem settings side by side.
pub fn markdown(rows: &[AnonymityRow], f: impl Fn(&Spread) -> String) -> String {
    let Some(first) = rows.first() else {
        return String::new();
    };
    let p = first.params;
    let mut s = format!(
        "\n## Anonymity (`conclave devnet --scenario anonymity`, {} members, {} curious, {} messages × {} repetition(s), stem epoch {} s)\n\n\
         Precision: the fraction of other members' messages the curious members attribute to their author (messages pooled over the repetitions).\n\n\
         | stem | estimator | colluders | precision | random guess | × random | latency p50 ms | p99 ms |\n|---|---|---|---|---|---|---|---|\n",
        p.members,
        p.spies,
        p.messages,
        first.runs.len(),
        p.stem_epoch_s
    );
    for row in rows {
        for x in &row.precision {
            s.push_str(&format!(
                "| {} | {} | {} | {:.3} ({} of {}) | {:.3} | {:.2} | {} | {} |\n",
                if row.stem { "on" } else { "off" },
                x.estimator,
                x.colluders,
                x.precision,
                x.correct,
                x.judged,
                x.random_guess,
                x.precision / x.random_guess,
                f(&row.latency_p50_ms),
                f(&row.latency_p99_ms),
            ));
        }
    }
    for row in rows {
        let fs = row.first_sights;
        s.push_str(&format!(
            "\nStem {}: the first spy first saw others' messages on the stem from the author {}, from a relay {}; in gossip from the author {}, from a relay {}.\n",
            if row.stem { "on" } else { "off" },
            fs.stem_from_author,
            fs.stem_from_relay,
            fs.gossip_from_author,
            fs.gossip_from_relay
        ));
    }
    s
}
