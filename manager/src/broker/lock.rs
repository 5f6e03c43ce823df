//! One change to the accounts at a time, across processes: the manager (console sign-ups,
//! instances added and revoked, pushes to restarted nodes) and `flowmesh enroll`, `revoke` and
//! `broker push` run side by side on the cloud operator's machine.
//!
//! Why it matters: a node stores whatever account JWT it is sent, older or not (measured:
//! pushing an account's JWT from before a revocation let the revoked instance log in again on
//! every node). A push of what is on disk, racing with a revocation that writes and pushes a
//! newer JWT, could land last and undo it; two writers of one account record could lose each
//! other's change. So every read-modify-write of the accounts and every push happen while this
//! lock is held, and the functions that do them take it as an argument.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};

use super::{BrokerError, invalid};

/// An exclusive hold on a cluster directory's accounts (an advisory `flock` on
/// `accounts/.lock`), released when dropped.
#[derive(Debug)]
pub struct AccountsLock {
    _file: File,
    out: PathBuf,
}

impl AccountsLock {
    /// Waits for and takes the lock of the cluster directory `out`.
    pub fn acquire(out: &Path) -> Result<AccountsLock, BrokerError> {
        let path = out.join("accounts").join(".lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| BrokerError::Io {
                path: path.clone(),
                source,
            })?;
        file.lock()
            .map_err(|e| invalid(format!("locking {}: {e}", path.display())))?;
        Ok(AccountsLock {
            _file: file,
            out: out.to_path_buf(),
        })
    }

    /// [`acquire`](Self::acquire) without blocking the async runtime while another holds it.
    pub async fn acquire_async(out: &Path) -> Result<AccountsLock, BrokerError> {
        let out = out.to_path_buf();
        tokio::task::spawn_blocking(move || AccountsLock::acquire(&out))
            .await
            .map_err(|e| invalid(format!("locking the accounts: {e}")))?
    }

    /// The cluster directory it holds.
    pub fn out(&self) -> &Path {
        &self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_second_holder_waits_for_the_first() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("accounts")).unwrap();
        let first = AccountsLock::acquire(dir.path()).unwrap();
        let (tx, rx) = mpsc::channel();
        let out = dir.path().to_path_buf();
        let waiter = std::thread::spawn(move || {
            let _second = AccountsLock::acquire(&out).unwrap();
            tx.send(()).unwrap();
        });
        // Not taken while the first is held (a bounded wait for something that must not
        // happen), taken once it is dropped.
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        drop(first);
        rx.recv_timeout(Duration::from_secs(10))
            .expect("taken after release");
        waiter.join().unwrap();
    }
}
