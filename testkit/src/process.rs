//! Child processes in tests: waiting on conditions with deadlines, stopping them politely.

use std::process::Child;
use std::time::{Duration, Instant};

/// Waits for `done` (checked every 200 ms) or panics saying `what`.
pub fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    wait_until(what, timeout, || done().then_some(()), String::new);
}

/// Polls `poll` every 200 ms until it yields a value, and returns it; after `timeout` panics
/// saying `what` and what `context` tells (counts so far, the daemons' logs).
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut poll: impl FnMut() -> Option<T>,
    context: impl Fn() -> String,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = poll() {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits up to `timeout` for `child` to exit; whether it did, successfully. Killed otherwise.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(s)) = child.try_wait() {
            return s.success();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}

/// Sends SIGTERM and waits up to 20 s; whether the child stopped by itself (it is killed
/// otherwise).
pub fn terminate(child: &mut Child) -> bool {
    // SAFETY: signalling our own child process.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    false
}
