//! The disk outbox: flow batches that could not be published wait here (redb, mode 0600),
//! oldest first, bounded in bytes. Past the bound the oldest batches are dropped — counted,
//! and reported in the heartbeat — so a sensor cut off for days keeps its most recent traffic.
//! Batches are stored sealed, exactly as they go on the wire: the file reveals no traffic.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

/// Queue position → (message id, flow records inside, sealed batch).
const QUEUE: TableDefinition<u64, (&str, u64, &[u8])> = TableDefinition::new("sealed_outbox");
/// What versions before 0.1 kept: position → (message id, plaintext batch). Taken over (sealed)
/// by [`Outbox::take_legacy`].
const LEGACY: TableDefinition<u64, (&str, &[u8])> = TableDefinition::new("outbox");
/// Counters: next position, bytes held, batches and bytes dropped.
const META: TableDefinition<&str, u64> = TableDefinition::new("outbox_meta");

/// A batch waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its queue position (removal key).
    pub position: u64,
    /// The JetStream message id it is published with.
    pub message_id: String,
    /// Flow records in it (for the counters; the batch itself is sealed).
    pub flows: u64,
    /// The sealed `FlowBatch`, as published.
    pub batch: Vec<u8>,
}

/// Outbox errors.
#[derive(Debug, thiserror::Error)]
#[error("outbox: {0}")]
pub struct OutboxError(#[from] redb::Error);

macro_rules! outbox_error {
    ($($t:ty),*) => {$(
        impl From<$t> for OutboxError {
            fn from(e: $t) -> Self {
                OutboxError(e.into())
            }
        }
    )*};
}
outbox_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// What the outbox holds and has lost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    /// Batches waiting.
    pub batches: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Batches dropped past the bound, ever.
    pub dropped_batches: u64,
    /// Their bytes.
    pub dropped_bytes: u64,
}

/// The outbox file.
pub struct Outbox {
    db: Database,
    max_bytes: u64,
}

fn get(meta: &impl ReadableTable<&'static str, u64>, k: &str) -> Result<u64, OutboxError> {
    Ok(meta.get(k)?.map_or(0, |v| v.value()))
}

impl Outbox {
    /// Opens (or creates, mode 0600) the outbox at `path`, holding at most `max_bytes`.
    pub fn open(path: &Path, max_bytes: u64) -> Result<Outbox, OutboxError> {
        let db = Database::create(path)?;
        if let Err(e) = flowmesh_link::secret_file::restrict(path) {
            tracing::warn!(error = %e, "cannot make the outbox private (chmod 600)");
        }
        let tx = db.begin_write()?;
        tx.open_table(QUEUE)?;
        tx.open_table(META)?;
        tx.commit()?;
        Ok(Outbox { db, max_bytes })
    }

    /// Plaintext batches an older version left (message id, batch), removed from the file;
    /// the caller seals and pushes them again. Empty for outboxes written by this version.
    pub fn take_legacy(&self) -> Result<Vec<(String, Vec<u8>)>, OutboxError> {
        let tx = self.db.begin_write()?;
        let mut out = Vec::new();
        {
            let mut legacy = tx.open_table(LEGACY)?;
            while let Some((_, v)) = legacy.pop_first()? {
                let (id, b) = v.value();
                out.push((id.to_string(), b.to_vec()));
            }
        }
        tx.delete_table(LEGACY)?;
        tx.commit()?;
        Ok(out)
    }

    /// Appends sealed batches `(message id, flows, bytes)` in order, in one transaction,
    /// dropping the oldest past the bound.
    pub fn push(&self, batches: &[(&str, u64, &[u8])]) -> Result<(), OutboxError> {
        let tx = self.db.begin_write()?;
        {
            let mut queue = tx.open_table(QUEUE)?;
            let mut meta = tx.open_table(META)?;
            let mut next = get(&meta, "next")?;
            let mut bytes = get(&meta, "bytes")?;
            for &(id, flows, b) in batches {
                queue.insert(next, (id, flows, b))?;
                next += 1;
                bytes += b.len() as u64;
            }
            let (mut dropped, mut dropped_bytes) = (0u64, 0u64);
            while bytes > self.max_bytes {
                let Some((_, v)) = queue.pop_first()? else {
                    break;
                };
                let len = v.value().2.len() as u64;
                bytes -= len;
                dropped += 1;
                dropped_bytes += len;
            }
            if dropped > 0 {
                tracing::warn!(
                    dropped,
                    dropped_bytes,
                    max_bytes = self.max_bytes,
                    "outbox full: the oldest batches were dropped"
                );
                let d = get(&meta, "dropped_batches")?;
                meta.insert("dropped_batches", d + dropped)?;
                let d = get(&meta, "dropped_bytes")?;
                meta.insert("dropped_bytes", d + dropped_bytes)?;
            }
            meta.insert("next", next)?;
            meta.insert("bytes", bytes)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The oldest `n` batches, oldest first.
    pub fn peek(&self, n: usize) -> Result<Vec<Pending>, OutboxError> {
        let tx = self.db.begin_read()?;
        let queue = tx.open_table(QUEUE)?;
        let mut out = Vec::new();
        for entry in queue.iter()?.take(n) {
            let (k, v) = entry?;
            let (id, flows, batch) = v.value();
            out.push(Pending {
                position: k.value(),
                message_id: id.to_string(),
                flows,
                batch: batch.to_vec(),
            });
        }
        Ok(out)
    }

    /// Removes batches that were published (acknowledged by JetStream).
    pub fn remove(&self, positions: &[u64]) -> Result<(), OutboxError> {
        let tx = self.db.begin_write()?;
        {
            let mut queue = tx.open_table(QUEUE)?;
            let mut meta = tx.open_table(META)?;
            let mut bytes = get(&meta, "bytes")?;
            for p in positions {
                if let Some(v) = queue.remove(p)? {
                    bytes = bytes.saturating_sub(v.value().2.len() as u64);
                }
            }
            meta.insert("bytes", bytes)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// What it holds and has dropped.
    pub fn depth(&self) -> Result<Depth, OutboxError> {
        let tx = self.db.begin_read()?;
        let queue = tx.open_table(QUEUE)?;
        let meta = tx.open_table(META)?;
        Ok(Depth {
            batches: queue.len()?,
            bytes: get(&meta, "bytes")?,
            dropped_batches: get(&meta, "dropped_batches")?,
            dropped_bytes: get(&meta, "dropped_bytes")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(i: u8, len: usize) -> (String, Vec<u8>) {
        (format!("s/1/{i}"), vec![i; len])
    }

    fn push(o: &Outbox, batches: &[(String, Vec<u8>)]) {
        let items: Vec<(&str, u64, &[u8])> = batches
            .iter()
            .map(|(id, b)| (id.as_str(), 1, b.as_slice()))
            .collect();
        o.push(&items).unwrap();
    }

    #[test]
    fn batches_come_back_in_order_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outbox.redb");
        {
            let o = Outbox::open(&path, 1 << 20).unwrap();
            push(&o, &[batch(1, 10), batch(2, 20)]);
            push(&o, &[batch(3, 30)]);
        }
        let o = Outbox::open(&path, 1 << 20).unwrap();
        let p = o.peek(10).unwrap();
        let ids: Vec<&str> = p.iter().map(|x| x.message_id.as_str()).collect();
        assert_eq!(ids, ["s/1/1", "s/1/2", "s/1/3"]);
        assert_eq!(o.depth().unwrap().bytes, 60);
        o.remove(&[p[0].position, p[1].position]).unwrap();
        assert_eq!(o.peek(10).unwrap()[0].batch, vec![3; 30]);
        assert_eq!(
            o.depth().unwrap(),
            Depth {
                batches: 1,
                bytes: 30,
                ..Depth::default()
            }
        );
    }

    #[test]
    fn past_the_bound_the_oldest_go_and_are_counted() {
        let dir = tempfile::tempdir().unwrap();
        let o = Outbox::open(&dir.path().join("o.redb"), 100).unwrap();
        for i in 0..10 {
            push(&o, &[batch(i, 30)]);
        }
        let d = o.depth().unwrap();
        assert_eq!((d.batches, d.bytes), (3, 90));
        assert_eq!((d.dropped_batches, d.dropped_bytes), (7, 210));
        let first = &o.peek(1).unwrap()[0];
        assert_eq!(first.message_id, "s/1/7", "the newest are kept");
    }

    #[test]
    fn the_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("o.redb");
        let _o = Outbox::open(&path, 100).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
