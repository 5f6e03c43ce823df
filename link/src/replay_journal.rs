//! The replay journal: the message ids a process accepted within its replay window, on disk
//! (redb), so that a restart does not reopen the window to replays of what it already acted on.
//!
//! Each accepted id is committed (durably) before the message is used. The journal holds only
//! the window: older entries are dropped as new ones are written and when it is opened.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::identity::PublicKey;

/// (the sender's time µs, sender key ‖ message id): ordered by age, so expiry is a range and
/// recalling the window a scan. Look-ups happen in memory (`replay::SenderWindows`).
const ACCEPTED: TableDefinition<(u64, &[u8]), ()> = TableDefinition::new("accepted_by_time");

/// Why the journal could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("replay journal {path}: {reason}")]
pub struct JournalError {
    path: String,
    reason: String,
}

/// Accepted message ids, per sender, on disk.
pub struct ReplayJournal {
    db: Database,
    path: String,
}

impl std::fmt::Debug for ReplayJournal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplayJournal")
            .field("path", &self.path)
            .finish()
    }
}

fn key(sender: PublicKey, id: [u8; 16]) -> [u8; 48] {
    let mut k = [0u8; 48];
    k[..32].copy_from_slice(&sender.0);
    k[32..].copy_from_slice(&id);
    k
}

impl ReplayJournal {
    /// Opens (or creates, mode 0600) the journal at `path`.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let shown = path.display().to_string();
        let fail = |reason: String| JournalError {
            path: shown.clone(),
            reason,
        };
        let fresh = !path.exists();
        let db = Database::create(path)
            .map_err(|e| fail(format!("{e} (is another process using it?)")))?;
        if fresh {
            crate::secret_file::restrict(path).map_err(|e| fail(e.to_string()))?;
        }
        let j = ReplayJournal {
            db,
            path: shown.clone(),
        };
        j.write(|tx| tx.open_table(ACCEPTED).map(drop).map_err(Into::into))?;
        Ok(j)
    }

    fn fail(&self, e: impl std::fmt::Display) -> JournalError {
        JournalError {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    fn write(
        &self,
        f: impl FnOnce(&redb::WriteTransaction) -> Result<(), redb::Error>,
    ) -> Result<(), JournalError> {
        let tx = self.db.begin_write().map_err(|e| self.fail(e))?;
        f(&tx).map_err(|e| self.fail(e))?;
        tx.commit().map_err(|e| self.fail(e))
    }

    /// Everything accepted at or after `since_micros` (sender, id, time); older entries are
    /// deleted.
    pub fn recall(
        &self,
        since_micros: u64,
    ) -> Result<Vec<(PublicKey, [u8; 16], u64)>, JournalError> {
        self.write(|tx| expire(tx, since_micros))?;
        let tx = self.db.begin_read().map_err(|e| self.fail(e))?;
        let table = tx.open_table(ACCEPTED).map_err(|e| self.fail(e))?;
        let mut out = Vec::new();
        for entry in table.iter().map_err(|e| self.fail(e))? {
            let (k, _) = entry.map_err(|e| self.fail(e))?;
            let (t, k) = k.value();
            let (Ok(sender), Ok(id)) = (
                <[u8; 32]>::try_from(&k[..k.len().min(32)]),
                <[u8; 16]>::try_from(&k[k.len().min(32)..]),
            ) else {
                continue;
            };
            out.push((PublicKey(sender), id, t));
        }
        Ok(out)
    }

    /// Writes down an accepted id (committed before this returns), dropping entries older than
    /// `expire_before_micros`.
    pub fn remember(
        &self,
        sender: PublicKey,
        id: [u8; 16],
        time_micros: u64,
        expire_before_micros: u64,
    ) -> Result<(), JournalError> {
        let k = key(sender, id);
        self.write(|tx| {
            tx.open_table(ACCEPTED)?
                .insert((time_micros, k.as_slice()), ())?;
            expire(tx, expire_before_micros)
        })
    }
}

fn expire(tx: &redb::WriteTransaction, before_micros: u64) -> Result<(), redb::Error> {
    tx.open_table(ACCEPTED)?
        .retain_in(..(before_micros, &[][..]), |_, _| false)?;
    Ok(())
}
