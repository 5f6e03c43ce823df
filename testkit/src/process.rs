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

/// CPU seconds (user + system) a running process has spent so far: its utime and stime.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    stat_cpu_secs(&format!("/proc/{pid}/stat"), 14)
}

/// CPU seconds (user + system) of this process's children that ended and were waited for:
/// its cutime and cstime.
pub fn children_cpu_secs() -> Option<f64> {
    stat_cpu_secs("/proc/self/stat", 16)
}

/// The sum of the clock-tick fields `first` and `first + 1` (numbered as in `proc(5)`) of a
/// `/proc/.../stat` file, in seconds.
fn stat_cpu_secs(path: &str, first: usize) -> Option<f64> {
    // Asked before the file is read: `getconf` is a child, its CPU must not land in a reading.
    let per_sec = clock_ticks_per_sec()?;
    let stat = std::fs::read_to_string(path).ok()?;
    // After the command name, which is in parentheses and may hold spaces, comes field 3.
    let rest: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    let ticks = |i: usize| rest.get(i - 3).and_then(|t| t.parse::<f64>().ok());
    Some((ticks(first)? + ticks(first + 1)?) / per_sec)
}

/// `getconf CLK_TCK`, asked once.
fn clock_ticks_per_sec() -> Option<f64> {
    static TICKS: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        let out = std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    })
}
