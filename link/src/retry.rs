//! Retrying what the broker refuses for a while: a node restarting, a stream leader moving
//! ("no stream found", "no responders"), timeouts. Daemons wait these out with a capped
//! exponential backoff instead of exiting; only a stop request ends the wait.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// First pause after a failure.
pub const FIRST: Duration = Duration::from_millis(100);
/// Longest pause between attempts.
pub const CAP: Duration = Duration::from_secs(5);
/// How often a failure that goes on is logged again.
const LOG_EVERY: Duration = Duration::from_secs(30);

/// A capped exponential backoff (100 ms, 200 ms, … 5 s).
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST }
    }
}

impl Backoff {
    /// The pause to take now; the next one doubles, up to [`CAP`].
    pub fn pause(&mut self) -> Duration {
        let now = self.next;
        self.next = (self.next * 2).min(CAP);
        now
    }

    /// After a success: start again from [`FIRST`].
    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

/// Runs `attempt` until it succeeds, pausing with [`Backoff`] between failures and logging
/// them (a warning at first, then every 30 s). `None` if `stop` was set first.
pub async fn until_ok<T, E, F, Fut>(what: &str, stop: &AtomicBool, mut attempt: F) -> Option<T>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut backoff = Backoff::default();
    let mut failures = 0u64;
    let mut logged: Option<Instant> = None;
    loop {
        match attempt().await {
            Ok(v) => {
                if failures > 0 {
                    tracing::info!(what, failures, "succeeded after retrying");
                }
                return Some(v);
            }
            Err(e) => {
                failures += 1;
                if logged.is_none_or(|t| t.elapsed() >= LOG_EVERY) {
                    logged = Some(Instant::now());
                    tracing::warn!(what, error = %e, failures, "failed; retrying");
                }
            }
        }
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        tokio::time::sleep(backoff.pause()).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::default();
        let pauses: Vec<_> = (0..8).map(|_| b.pause().as_millis()).collect();
        assert_eq!(pauses, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        b.reset();
        assert_eq!(b.pause(), FIRST);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_until_it_works_and_gives_up_only_when_stopped() {
        let stop = AtomicBool::new(false);
        let mut n = 0;
        let got = until_ok("test", &stop, || {
            n += 1;
            let n = n;
            async move { if n < 4 { Err("transient") } else { Ok(n) } }
        })
        .await;
        assert_eq!(got, Some(4));
        stop.store(true, Ordering::Relaxed);
        let never: Option<()> = until_ok("test", &stop, || async { Err("down") }).await;
        assert_eq!(never, None);
    }
}
