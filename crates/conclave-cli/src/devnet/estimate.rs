//! The curious members' estimators, sans IO: given where each anonymous message first reached
//! each colluder, name its author. The simple ones the Dandelion++ analysis is phrased in:
//! first-spy (the member the earliest colluder heard it from) and, for several colluders, the
//! majority of their first predecessors.

use std::collections::BTreeMap;

use conclave_api::{EstimatorScore, FirstSights};

/// One colluder's first sight of a message: the member it came from, when, and whether on the
/// stem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sight {
    pub from: String,
    pub at_ms: u64,
    pub stem: bool,
}

/// A message as the colluders saw it: its author (the truth) and each colluder's first sight
/// (`None`: that colluder never saw it).
#[derive(Debug, Clone)]
pub struct Case {
    pub author: String,
    pub sights: Vec<Option<Sight>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Estimator {
    FirstSpy,
    Majority,
}

impl Estimator {
    pub fn name(self) -> &'static str {
        match self {
            Estimator::FirstSpy => "first-spy",
            Estimator::Majority => "majority",
        }
    }

    /// The guessed author from the colluders' sights.
    pub fn guess<'a>(self, sights: &[&'a Sight]) -> Option<&'a str> {
        let earliest = sights.iter().min_by_key(|s| s.at_ms)?;
        match self {
            Estimator::FirstSpy => Some(&earliest.from),
            Estimator::Majority => {
                let mut votes: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
                for s in sights {
                    let v = votes.entry(&s.from).or_insert((0, u64::MAX));
                    v.0 += 1;
                    v.1 = v.1.min(s.at_ms);
                }
                // Most votes; among equals, the one seen earliest.
                votes
                    .into_iter()
                    .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then(b.1 .1.cmp(&a.1 .1)))
                    .map(|(from, _)| from)
            }
        }
    }
}

/// How the first spy first saw the messages of other members: on the stem or in gossip, and
/// from their author or from someone else (what makes first-spy right or wrong).
pub fn first_sights(cases: &[Case], spies: &[String]) -> FirstSights {
    let mut f = FirstSights::default();
    for case in cases.iter().filter(|c| Some(&c.author) != spies.first()) {
        match case.sights.first().and_then(|s| s.as_ref()) {
            None => f.unseen += 1,
            Some(s) => {
                let slot = match (s.stem, s.from == case.author) {
                    (true, true) => &mut f.stem_from_author,
                    (true, false) => &mut f.stem_from_relay,
                    (false, true) => &mut f.gossip_from_author,
                    (false, false) => &mut f.gossip_from_relay,
                };
                *slot += 1;
            }
        }
    }
    f
}

/// How `estimator` does when the first `colluders` spies pool what they saw; `spies[i]` is spy
/// `i`'s own PeerId (their own messages are not judged).
pub fn score(
    cases: &[Case],
    spies: &[String],
    colluders: usize,
    estimator: Estimator,
) -> EstimatorScore {
    let team = &spies[..colluders.min(spies.len())];
    let (mut judged, mut correct) = (0, 0);
    for case in cases {
        if team.contains(&case.author) {
            continue;
        }
        judged += 1;
        let sights: Vec<&Sight> = case.sights[..team.len()].iter().flatten().collect();
        if estimator.guess(&sights) == Some(case.author.as_str()) {
            correct += 1;
        }
    }
    EstimatorScore {
        estimator: estimator.name().into(),
        colluders: team.len(),
        judged,
        correct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sight(from: &str, at_ms: u64) -> Option<Sight> {
        Some(Sight {
            from: from.into(),
            at_ms,
            stem: true,
        })
    }

    fn heard(from: &str, at_ms: u64) -> Sight {
        Sight {
            from: from.into(),
            at_ms,
            stem: false,
        }
    }

    fn case(author: &str, sights: Vec<Option<Sight>>) -> Case {
        Case {
            author: author.into(),
            sights,
        }
    }

    #[test]
    fn first_spy_names_whom_the_earliest_colluder_heard_it_from() {
        let spies = vec!["s0".to_string(), "s1".into()];
        let cases = [
            case("a", vec![sight("b", 20), sight("a", 10)]),
            case("b", vec![sight("c", 5), sight("b", 9)]),
            case("c", vec![None, sight("c", 1)]),
        ];
        let alone = score(&cases, &spies, 1, Estimator::FirstSpy);
        assert_eq!((alone.judged, alone.correct), (3, 0));
        let pooled = score(&cases, &spies, 2, Estimator::FirstSpy);
        assert_eq!((pooled.judged, pooled.correct), (3, 2));
    }

    #[test]
    fn the_colluders_own_messages_are_not_judged() {
        let spies = vec!["s0".to_string(), "s1".into()];
        let cases = [
            case("s1", vec![sight("s1", 1), None]),
            case("a", vec![sight("a", 1), None]),
        ];
        assert_eq!(score(&cases, &spies, 1, Estimator::FirstSpy).judged, 2);
        let s = score(&cases, &spies, 2, Estimator::FirstSpy);
        assert_eq!((s.judged, s.correct, s.precision()), (1, 1, 1.0));
    }

    #[test]
    fn majority_takes_the_most_named_predecessor_and_breaks_ties_by_time() {
        let (b9, a1, b7) = (heard("b", 9), heard("a", 1), heard("b", 7));
        let two_b = [&b9, &a1, &b7];
        assert_eq!(Estimator::Majority.guess(&two_b), Some("b"));
        assert_eq!(Estimator::FirstSpy.guess(&two_b), Some("a"));
        let a3 = heard("a", 3);
        let tie = [&b9, &a3];
        assert_eq!(Estimator::Majority.guess(&tie), Some("a"));
        assert_eq!(Estimator::Majority.guess(&[]), None);
    }

    #[test]
    fn first_sights_sort_the_first_spys_view_by_path_and_sender() {
        let spies = vec!["s0".to_string()];
        let mut gossip_from_a = sight("a", 1);
        gossip_from_a.as_mut().unwrap().stem = false;
        let cases = [
            case("a", vec![sight("a", 1)]),
            case("a", vec![gossip_from_a]),
            case("b", vec![sight("c", 1)]),
            case("b", vec![None]),
            case("s0", vec![sight("s0", 1)]),
        ];
        let f = first_sights(&cases, &spies);
        assert_eq!(
            (
                f.stem_from_author,
                f.gossip_from_author,
                f.stem_from_relay,
                f.gossip_from_relay,
                f.unseen
            ),
            (1, 1, 1, 0, 1)
        );
    }
}
