//! One bounded wait for every test: poll a condition until it settles or a deadline passes,
//! then fail naming what was awaited and what was last seen.

use std::future::Future;
use std::time::Duration;

/// How long a test waits for anything by default: generous, because the suite runs on two
/// cores beside other builds; a healthy run settles in a fraction of it.
pub const WAIT: Duration = Duration::from_secs(60);

/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(20);

/// A polled condition's answer: settled (with a value), or not yet (with what was seen).
pub trait Settled {
    type Value;
    fn settled(self) -> Result<Self::Value, String>;
}

impl Settled for bool {
    type Value = ();
    fn settled(self) -> Result<(), String> {
        if self {
            Ok(())
        } else {
            Err("the condition was still false".into())
        }
    }
}

impl<T> Settled for Option<T> {
    type Value = T;
    fn settled(self) -> Result<T, String> {
        self.ok_or_else(|| "the condition had no value yet".into())
    }
}

impl<T, E: std::fmt::Display> Settled for Result<T, E> {
    type Value = T;
    fn settled(self) -> Result<T, String> {
        self.map_err(|e| e.to_string())
    }
}

/// Polls `check` until it settles and returns its value; panics after [`WAIT`] naming `what`
/// and the last thing `check` saw.
pub async fn eventually<S: Settled, F: Future<Output = S>>(
    what: &str,
    check: impl FnMut() -> F,
) -> S::Value {
    eventually_within(WAIT, what, check).await
}

/// [`eventually`] with its own deadline, for waits that are part of what a test asserts.
pub async fn eventually_within<S: Settled, F: Future<Output = S>>(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) -> S::Value {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match check().await.settled() {
            Ok(v) => return v,
            Err(last) if tokio::time::Instant::now() >= deadline => {
                panic!("timed out after {within:?} waiting for {what}; last: {last}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_value_once_settled() {
        let mut n = 0;
        let got = eventually("the third poll", || {
            n += 1;
            let now = n;
            async move { (now >= 3).then_some(now) }
        })
        .await;
        assert_eq!(got, 3);
    }

    #[tokio::test]
    #[should_panic(expected = "waiting for a miracle; last: not today")]
    async fn names_what_it_waited_for_and_what_it_last_saw() {
        eventually_within(Duration::from_millis(50), "a miracle", || async {
            Err::<(), _>("not today")
        })
        .await;
    }
}
