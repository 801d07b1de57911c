//! Range-based set reconciliation (after Meyer's "Range-Based Set Reconciliation", the scheme
//! Negentropy implements), sans-IO: how one side learns which messages of a topic the other
//! holds and it lacks, sending fingerprints of ranges rather than lists of ids.
//!
//! A range `[lower, upper)` of (timestamp, id) keys is summarized by its count and a
//! fingerprint: SHA-256 of the count and the sum (mod 2¹²⁸) of the ids' first 16 bytes, cut to
//! 16 bytes. The asking side sends its summaries; the answering side compares its own: equal
//! ranges end there, small ones (or any the asker holds nothing of, up to [`LIST_WHEN_EMPTY`])
//! are answered with the answerer's keys, large ones split into
//! [`SPLIT`] sub-ranges with the answerer's summaries, which the asker compares in turn. When
//! nothing differs a reconciliation is one range each way (≈ 60 bytes); each round narrows the
//! differences by a factor of [`SPLIT`].
//!
//! Only the asker learns: the answerer is stateless between rounds and learns what *it* lacks
//! by asking itself (both sides reconcile when they connect).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::ops::Bound;

use super::log::{decode_key, encode_key, Key, MessageKey};
use super::{
    AnswerMode, RangeAnswer, WireRange, LIST_THRESHOLD, LIST_WHEN_EMPTY, MAX_RANGES, SPLIT,
};
use sha2::{Digest, Sha256};

/// A range's summary: how many keys it holds and their fingerprint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Summary {
    pub count: u32,
    pub fingerprint: [u8; 16],
}

/// Summarizes a run of keys.
pub(crate) fn summarize<'a>(keys: impl Iterator<Item = &'a Key>) -> Summary {
    let mut count: u32 = 0;
    let mut sum: u128 = 0;
    for (_, id) in keys {
        count = count.saturating_add(1);
        let mut head = [0u8; 16];
        head.copy_from_slice(&id[..16]);
        sum = sum.wrapping_add(u128::from_le_bytes(head));
    }
    let mut h = Sha256::new();
    h.update(u64::from(count).to_le_bytes());
    h.update(sum.to_le_bytes());
    let mut fingerprint = [0u8; 16];
    fingerprint.copy_from_slice(&h.finalize()[..16]);
    Summary { count, fingerprint }
}

/// `[lower, upper)`; `None` upper is unbounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub lower: Key,
    pub upper: Option<Key>,
}

impl Span {
    fn keys<'a, V>(&self, items: &'a BTreeMap<Key, V>) -> impl Iterator<Item = &'a Key> + 'a {
        let upper = match self.upper {
            Some(u) => Bound::Excluded(u),
            None => Bound::Unbounded,
        };
        items
            .range((Bound::Included(self.lower), upper))
            .map(|(k, _)| k)
    }

    fn contains(&self, k: &Key) -> bool {
        *k >= self.lower && self.upper.is_none_or(|u| *k < u)
    }

    fn to_wire(self, s: Summary) -> WireRange {
        WireRange {
            lower: encode_key(&self.lower),
            upper: self.upper.map(|u| encode_key(&u)).unwrap_or_default(),
            count: s.count,
            fingerprint: s.fingerprint.to_vec(),
        }
    }

    fn from_wire(w: &WireRange) -> Result<(Span, Summary), ReconcileError> {
        let lower = decode_key(&w.lower).ok_or(ReconcileError::Bound)?;
        let upper = if w.upper.is_empty() {
            None
        } else {
            Some(decode_key(&w.upper).ok_or(ReconcileError::Bound)?)
        };
        if upper.is_some_and(|u| u <= lower) {
            return Err(ReconcileError::EmptyRange);
        }
        let fingerprint = w
            .fingerprint
            .as_slice()
            .try_into()
            .map_err(|_| ReconcileError::Fingerprint(w.fingerprint.len()))?;
        let summary = Summary {
            count: w.count,
            fingerprint,
        };
        Ok((Span { lower, upper }, summary))
    }
}

/// What is wrong with a reconciliation message (the peer sent it; it ends the session).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconcileError {
    #[error("more than {MAX_RANGES} ranges in one request")]
    TooManyRanges,
    #[error("a range bound is not 8 to 40 bytes")]
    Bound,
    #[error("a range's upper bound is not above its lower bound")]
    EmptyRange,
    #[error("a fingerprint of {0} bytes (expected 16)")]
    Fingerprint(usize),
    #[error("{answers} answers to {ranges} ranges")]
    AnswerCount { answers: usize, ranges: usize },
    #[error("an answer of unknown mode {0}")]
    Mode(i32),
    #[error("a listed key lies outside its range or the keys are not ascending")]
    KeyOutOfRange,
    #[error("a split does not cover its range with ascending, contiguous sub-ranges")]
    BadSplit,
    #[error("more keys or sub-ranges in one answer than the protocol allows")]
    AnswerTooLarge,
}

/// The answering side: compares each requested range with what it holds of the topic.
pub(crate) fn answer<V>(
    items: &BTreeMap<Key, V>,
    ranges: &[WireRange],
) -> Result<Vec<RangeAnswer>, ReconcileError> {
    if ranges.len() > MAX_RANGES {
        return Err(ReconcileError::TooManyRanges);
    }
    let mut out = Vec::with_capacity(ranges.len());
    for w in ranges {
        let (span, theirs) = Span::from_wire(w)?;
        let keys: Vec<&Key> = span.keys(items).collect();
        let ours = summarize(keys.iter().copied());
        let answer = if ours == theirs {
            RangeAnswer {
                mode: AnswerMode::Equal as i32,
                ..Default::default()
            }
        } else if keys.len() <= list_limit(theirs.count) {
            RangeAnswer {
                mode: AnswerMode::Keys as i32,
                keys: keys.iter().map(|k| encode_key(k)).collect(),
                split: vec![],
            }
        } else {
            RangeAnswer {
                mode: AnswerMode::Split as i32,
                keys: vec![],
                split: split(span, &keys),
            }
        };
        out.push(answer);
    }
    Ok(out)
}

/// How many keys a range is answered with rather than split: a few, or — when the asker holds
/// nothing there (it missed a whole run, the partition case) — many, since splitting would only
/// find every one of them missing.
fn list_limit(asker_count: u32) -> usize {
    if asker_count == 0 {
        LIST_WHEN_EMPTY
    } else {
        LIST_THRESHOLD
    }
}

/// `span` cut into [`SPLIT`] sub-ranges of (nearly) equal counts of `keys`.
fn split(span: Span, keys: &[&Key]) -> Vec<WireRange> {
    let chunk = keys.len().div_ceil(SPLIT);
    let mut out = Vec::with_capacity(SPLIT);
    let mut lower = span.lower;
    for (i, part) in keys.chunks(chunk).enumerate() {
        let upper = keys.get((i + 1) * chunk).map(|k| **k).or(span.upper);
        let sub = Span { lower, upper };
        out.push(sub.to_wire(summarize(part.iter().copied())));
        if let Some(u) = upper {
            lower = u;
        }
    }
    out
}

/// The asking side of one topic's reconciliation.
pub(crate) struct Reconciler {
    /// Ranges sent in the request now in flight, in order.
    sent: Vec<Span>,
    /// Ranges still to ask about (beyond [`MAX_RANGES`] per request).
    queued: VecDeque<Span>,
    /// Keys the other side holds and we lack, ascending.
    wanted: BTreeSet<Key>,
    /// At most this many are wanted; beyond it the rest waits for a later reconciliation.
    budget: usize,
    rounds: u32,
}

/// After this many rounds a reconciliation stops (each narrows differences by [`SPLIT`]).
pub(crate) const MAX_ROUNDS: u32 = 16;

impl Reconciler {
    /// Starts on everything stamped from `since_ms` up to `until_ms` (the session's start:
    /// what is newer is still arriving by gossip on both sides, and would keep the newest range
    /// different round after round): the first request.
    pub fn start<V>(
        items: &BTreeMap<Key, V>,
        since_ms: u64,
        until_ms: u64,
        budget: usize,
    ) -> (Self, Vec<WireRange>) {
        let whole = Span {
            lower: (since_ms, [0; 32]),
            upper: Some((until_ms.max(since_ms + 1), [0; 32])),
        };
        let mut r = Reconciler {
            sent: vec![],
            queued: VecDeque::from([whole]),
            wanted: BTreeSet::new(),
            budget,
            rounds: 0,
        };
        let first = r.next_request(items).unwrap_or_default();
        (r, first)
    }

    fn next_request<V>(&mut self, items: &BTreeMap<Key, V>) -> Option<Vec<WireRange>> {
        if self.queued.is_empty() || self.rounds >= MAX_ROUNDS || self.wanted.len() >= self.budget {
            return None;
        }
        self.rounds += 1;
        let n = self.queued.len().min(MAX_RANGES);
        self.sent = self.queued.drain(..n).collect();
        Some(
            self.sent
                .iter()
                .map(|s| s.to_wire(summarize(s.keys(items))))
                .collect(),
        )
    }

    /// Takes the answers to the request in flight; the next request, or `None` when done.
    /// `have` says whether we already hold an id (the log, not just this topic's snapshot).
    pub fn on_answers<V>(
        &mut self,
        items: &BTreeMap<Key, V>,
        answers: &[RangeAnswer],
        have: impl Fn(&MessageKey) -> bool,
    ) -> Result<Option<Vec<WireRange>>, ReconcileError> {
        if answers.len() != self.sent.len() {
            return Err(ReconcileError::AnswerCount {
                answers: answers.len(),
                ranges: self.sent.len(),
            });
        }
        let sent = std::mem::take(&mut self.sent);
        for (span, a) in sent.into_iter().zip(answers) {
            match AnswerMode::try_from(a.mode).map_err(|_| ReconcileError::Mode(a.mode))? {
                AnswerMode::Equal => {}
                AnswerMode::Keys => {
                    if a.keys.len() > list_limit(summarize(span.keys(items)).count) {
                        return Err(ReconcileError::AnswerTooLarge);
                    }
                    let mut last: Option<Key> = None;
                    for raw in &a.keys {
                        let k = decode_key(raw).ok_or(ReconcileError::Bound)?;
                        if !span.contains(&k) || last.is_some_and(|l| l >= k) {
                            return Err(ReconcileError::KeyOutOfRange);
                        }
                        last = Some(k);
                        if !have(&k.1) && self.wanted.len() < self.budget {
                            self.wanted.insert(k);
                        }
                    }
                }
                AnswerMode::Split => {
                    let subs = check_split(span, &a.split)?;
                    for (sub, theirs) in subs {
                        if summarize(sub.keys(items)) != theirs {
                            self.queued.push_back(sub);
                        }
                    }
                }
            }
        }
        Ok(self.next_request(items))
    }

    /// What the other side holds that we lack (never more than the budget).
    pub fn take_wanted(&mut self) -> BTreeSet<Key> {
        std::mem::take(&mut self.wanted)
    }
}

/// The sub-ranges of a split, checked to cover `span` exactly, in order.
fn check_split(span: Span, split: &[WireRange]) -> Result<Vec<(Span, Summary)>, ReconcileError> {
    if split.is_empty() || split.len() > SPLIT {
        return Err(if split.is_empty() {
            ReconcileError::BadSplit
        } else {
            ReconcileError::AnswerTooLarge
        });
    }
    let mut out = Vec::with_capacity(split.len());
    let mut expect = Some(span.lower);
    for w in split {
        let (sub, summary) = Span::from_wire(w)?;
        if Some(sub.lower) != expect {
            return Err(ReconcileError::BadSplit);
        }
        expect = sub.upper;
        out.push((sub, summary));
    }
    if expect != span.upper {
        return Err(ReconcileError::BadSplit);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    fn key(ts: u64, n: u32) -> Key {
        let mut id = [0u8; 32];
        id[..4].copy_from_slice(&n.to_be_bytes());
        id[4..8].copy_from_slice(&(n.wrapping_mul(2_654_435_761)).to_le_bytes());
        (ts, id)
    }

    fn set(keys: impl IntoIterator<Item = Key>) -> BTreeMap<Key, ()> {
        keys.into_iter().map(|k| (k, ())).collect()
    }

    /// Runs a whole reconciliation of `mine` against `theirs`: what I end up wanting, the
    /// rounds it took and the bytes both ways.
    fn reconcile(
        mine: &BTreeMap<Key, ()>,
        theirs: &BTreeMap<Key, ()>,
    ) -> (BTreeSet<Key>, u32, usize) {
        let (mut r, mut req) = Reconciler::start(mine, 0, u64::MAX, 100_000);
        let mut bytes = 0;
        let mut rounds = 0;
        loop {
            rounds += 1;
            bytes += req.iter().map(|w| w.encoded_len()).sum::<usize>();
            let answers = answer(theirs, &req).unwrap_or_else(|e| panic!("{e}"));
            bytes += answers.iter().map(|a| a.encoded_len()).sum::<usize>();
            match r
                .on_answers(mine, &answers, |id| mine.keys().any(|k| k.1 == *id))
                .unwrap_or_else(|e| panic!("{e}"))
            {
                Some(next) => req = next,
                None => break,
            }
        }
        (r.take_wanted(), rounds, bytes)
    }

    #[test]
    fn equal_sets_take_one_small_round() {
        let s = set((0..5000).map(|i| key(1000 + i as u64, i)));
        let (wanted, rounds, bytes) = reconcile(&s, &s);
        assert!(wanted.is_empty());
        assert_eq!(rounds, 1);
        assert!(bytes < 150, "{bytes} bytes");
    }

    #[test]
    fn finds_exactly_what_the_other_side_has_and_we_lack() {
        // The other side has a run we missed (a partition) and a few scattered ones; we have
        // some it lacks (those are not our business here).
        let all: Vec<Key> = (0..5000).map(|i| key(1000 + i as u64, i)).collect();
        let theirs = set(all.iter().copied().filter(|k| !k.0.is_multiple_of(977)));
        let missed = |k: &Key| (3000..3400).contains(&k.0) || k.0.is_multiple_of(501);
        let mine = set(all.iter().copied().filter(|k| !missed(k)));
        let expected: BTreeSet<Key> = theirs.keys().copied().filter(missed).collect();
        let (wanted, rounds, bytes) = reconcile(&mine, &theirs);
        assert_eq!(wanted, expected);
        assert!(rounds <= 6, "{rounds} rounds");
        // Listing every id both ways would take 2 × 5000 × 40 bytes.
        assert!(bytes < 2 * 5000 * 40 / 3, "{bytes} bytes");
    }

    #[test]
    fn a_missed_run_costs_little_more_than_its_keys() {
        // A partition: 600 consecutive messages missed out of 6000.
        let all: Vec<Key> = (0..6000).map(|i| key(1000 + i as u64, i)).collect();
        let theirs = set(all.iter().copied());
        let mine = set(all.iter().copied().filter(|k| !(3000..3600).contains(&k.0)));
        let (wanted, rounds, bytes) = reconcile(&mine, &theirs);
        assert_eq!(wanted.len(), 600);
        assert!(rounds <= 4, "{rounds} rounds");
        // The keys alone are 600 × 40 = 24 KB; everything both ways stays within 2× that.
        assert!(bytes < 2 * 600 * 40, "{bytes} bytes");
    }

    #[test]
    fn what_is_newer_than_the_session_start_is_left_to_gossip() {
        // Both hold the same up to 5000; the other side already has newer ones in flight.
        let base: Vec<Key> = (0..1000).map(|i| key(4000 + i as u64, i)).collect();
        let mine = set(base.iter().copied());
        let theirs = set(base
            .iter()
            .copied()
            .chain((0..50).map(|i| key(5000 + i, 9000 + i as u32))));
        let (mut r, req) = Reconciler::start(&mine, 0, 5000, 1000);
        let a = answer(&theirs, &req).unwrap_or_else(|e| panic!("{e}"));
        let next = r
            .on_answers(&mine, &a, |_| false)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(next.is_none(), "one round");
        assert!(r.take_wanted().is_empty());
    }

    #[test]
    fn an_empty_side_learns_everything() {
        let theirs = set((0..300).map(|i| key(i as u64, i)));
        let (wanted, _, _) = reconcile(&BTreeMap::new(), &theirs);
        assert_eq!(wanted.len(), 300);
    }

    #[test]
    fn the_budget_caps_what_one_reconciliation_wants() {
        let theirs = set((0..300).map(|i| key(i as u64, i)));
        let mine: BTreeMap<Key, ()> = BTreeMap::new();
        let (mut r, req) = Reconciler::start(&mine, 0, u64::MAX, 40);
        let mut req = Some(req);
        while let Some(q) = req {
            let a = answer(&theirs, &q).unwrap_or_else(|e| panic!("{e}"));
            req = r
                .on_answers(&mine, &a, |_| false)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(r.take_wanted().len(), 40);
    }

    #[test]
    fn lying_answers_end_the_session() {
        let mine = set((0..100).map(|i| key(i as u64, i)));
        let theirs = set((0..200).map(|i| key(i as u64, i)));
        let (mut r, req) = Reconciler::start(&mine, 50, u64::MAX, 1000);
        let mut a = answer(&theirs, &req).unwrap_or_else(|e| panic!("{e}"));
        // A key below the requested range (before `since`), claimed anyway.
        a[0] = RangeAnswer {
            mode: AnswerMode::Keys as i32,
            keys: vec![encode_key(&key(10, 10))],
            split: vec![],
        };
        assert_eq!(
            r.on_answers(&mine, &a, |_| false).err(),
            Some(ReconcileError::KeyOutOfRange)
        );
        let (mut r, req) = Reconciler::start(&mine, 0, u64::MAX, 1000);
        let mut a = answer(&theirs, &req).unwrap_or_else(|e| panic!("{e}"));
        a[0].split.pop();
        assert_eq!(
            r.on_answers(&mine, &a, |_| false).err(),
            Some(ReconcileError::BadSplit)
        );
        let (mut r, _) = Reconciler::start(&mine, 0, u64::MAX, 1000);
        assert_eq!(
            r.on_answers(&mine, &[], |_| false).err(),
            Some(ReconcileError::AnswerCount {
                answers: 0,
                ranges: 1
            })
        );
    }

    #[test]
    fn malformed_requests_are_refused() {
        let theirs = set((0..10).map(|i| key(i as u64, i)));
        let ok = WireRange {
            lower: 0u64.to_be_bytes().to_vec(),
            upper: vec![],
            count: 0,
            fingerprint: vec![0; 16],
        };
        assert!(answer(&theirs, &vec![ok.clone(); MAX_RANGES + 1]).is_err());
        let short = WireRange {
            lower: vec![1, 2],
            ..ok.clone()
        };
        assert_eq!(answer(&theirs, &[short]), Err(ReconcileError::Bound));
        let inverted = WireRange {
            lower: 9u64.to_be_bytes().to_vec(),
            upper: 3u64.to_be_bytes().to_vec(),
            ..ok.clone()
        };
        assert_eq!(
            answer(&theirs, &[inverted]),
            Err(ReconcileError::EmptyRange)
        );
        let fp = WireRange {
            fingerprint: vec![1; 3],
            ..ok
        };
        assert_eq!(answer(&theirs, &[fp]), Err(ReconcileError::Fingerprint(3)));
    }
}
