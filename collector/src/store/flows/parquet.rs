//! Stored flows as Apache Parquet, one file per hour, for the tools that outgrow one machine
//! (DuckDB, ClickHouse, Spark read them as they are). Columns carry DESIGN.md's record fields
//! with their JSON names; times are UTC timestamps in microseconds; `profiles` is a list of
//! strings. One row group per stored block.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::basic::{Compression, ZstdLevel};
use parquet::data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::query::StoredFlow;
use super::{BLOCKS, INDEX};
use crate::store::{Store, StoreError};

/// Hour start (s) → the newest block of that hour already exported (a later block, from a late
/// batch or a compaction, exports the hour again).
pub(in crate::store) const EXPORTED: TableDefinition<i64, u64> =
    TableDefinition::new("flow_parquet_exported");

const SCHEMA: &str = "
message flow {
  REQUIRED BYTE_ARRAY instance (STRING);
  REQUIRED BYTE_ARRAY l4 (STRING);
  REQUIRED BYTE_ARRAY client_ip (STRING);
  REQUIRED INT32 client_port;
  REQUIRED BYTE_ARRAY server_ip (STRING);
  REQUIRED INT32 server_port;
  OPTIONAL INT32 vlan;
  OPTIONAL BYTE_ARRAY tunnel (STRING);
  REQUIRED BYTE_ARRAY l7 (STRING);
  OPTIONAL BYTE_ARRAY app (STRING);
  OPTIONAL BYTE_ARRAY server_name (STRING);
  OPTIONAL BYTE_ARRAY alpn (STRING);
  OPTIONAL BYTE_ARRAY client_mac (STRING);
  OPTIONAL BYTE_ARRAY server_mac (STRING);
  REQUIRED INT64 c2s_packets;
  REQUIRED INT64 c2s_bytes;
  REQUIRED INT64 s2c_packets;
  REQUIRED INT64 s2c_bytes;
  REQUIRED INT64 first_seen (TIMESTAMP(MICROS,true));
  REQUIRED INT64 last_seen (TIMESTAMP(MICROS,true));
  REQUIRED GROUP profiles (LIST) {
    REPEATED GROUP list {
      REQUIRED BYTE_ARRAY element (STRING);
    }
  }
  OPTIONAL BYTE_ARRAY exporter (STRING);
  OPTIONAL INT64 in_if;
  OPTIONAL INT64 out_if;
  OPTIONAL INT64 sampling;
}";

/// Why an export failed.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// Reading the store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Writing Parquet.
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    /// Writing the file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

fn text(s: &str) -> ByteArray {
    ByteArray::from(s.as_bytes().to_vec())
}

/// Writes one row group of `flows` (non-empty).
fn row_group<W: Write + Send>(
    w: &mut SerializedFileWriter<W>,
    flows: &[StoredFlow],
) -> Result<(), parquet::errors::ParquetError> {
    let mut rg = w.next_row_group()?;
    let mut i = 0;
    while let Some(mut col) = rg.next_column()? {
        let r = flows.iter().map(|f| &f.record);
        // Optional strings: values only where present, definition level 1 there.
        let opt = |get: &dyn Fn(&StoredFlow) -> Option<String>| {
            let mut vals = Vec::new();
            let mut defs = Vec::with_capacity(flows.len());
            for f in flows {
                match get(f) {
                    Some(s) => {
                        vals.push(text(&s));
                        defs.push(1);
                    }
                    None => defs.push(0),
                }
            }
            (vals, defs)
        };
        match i {
            0 | 1 | 2 | 4 | 8 => {
                let vals: Vec<ByteArray> = flows
                    .iter()
                    .map(|f| match i {
                        0 => text(&f.instance),
                        1 => text(f.record.l4),
                        2 => text(&f.record.client_ip.to_string()),
                        4 => text(&f.record.server_ip.to_string()),
                        _ => text(f.record.l7),
                    })
                    .collect();
                col.typed::<ByteArrayType>()
                    .write_batch(&vals, None, None)?;
            }
            3 | 5 => {
                let vals: Vec<i32> = r
                    .map(|x| i32::from(if i == 3 { x.client_port } else { x.server_port }))
                    .collect();
                col.typed::<Int32Type>().write_batch(&vals, None, None)?;
            }
            6 => {
                let vals: Vec<i32> = r.clone().filter_map(|x| x.vlan.map(i32::from)).collect();
                let defs: Vec<i16> = r.map(|x| i16::from(x.vlan.is_some())).collect();
                col.typed::<Int32Type>()
                    .write_batch(&vals, Some(&defs), None)?;
            }
            7 | 9..=13 => {
                let (vals, defs) = opt(&|f: &StoredFlow| {
                    let x = &f.record;
                    match i {
                        7 => x.tunnel.map(str::to_string),
                        9 => x.app.map(str::to_string),
                        10 => x.server_name.clone(),
                        11 => x.alpn.as_ref().map(|a| a.join(",")),
                        12 => x.client_mac.as_ref().map(flowmesh_record::mac_text),
                        _ => x.server_mac.as_ref().map(flowmesh_record::mac_text),
                    }
                });
                col.typed::<ByteArrayType>()
                    .write_batch(&vals, Some(&defs), None)?;
            }
            14..=19 => {
                let vals: Vec<i64> = r
                    .map(|x| match i {
                        14 => x.c2s_packets as i64,
                        15 => x.c2s_bytes as i64,
                        16 => x.s2c_packets as i64,
                        17 => x.s2c_bytes as i64,
                        18 => x.first_seen,
                        _ => x.last_seen,
                    })
                    .collect();
                col.typed::<Int64Type>().write_batch(&vals, None, None)?;
            }
            21 => {
                let (vals, defs) =
                    opt(&|f: &StoredFlow| f.record.export.map(|e| e.exporter.to_string()));
                col.typed::<ByteArrayType>()
                    .write_batch(&vals, Some(&defs), None)?;
            }
            22..=24 => {
                // Exported flows only; null for flows built from packets.
                let vals: Vec<i64> = r
                    .clone()
                    .filter_map(|x| x.export)
                    .map(|e| {
                        i64::from(match i {
                            22 => e.in_if,
                            23 => e.out_if,
                            _ => e.sampling,
                        })
                    })
                    .collect();
                let defs: Vec<i16> = r.map(|x| i16::from(x.export.is_some())).collect();
                col.typed::<Int64Type>()
                    .write_batch(&vals, Some(&defs), None)?;
            }
            _ => {
                // A list: one level entry per element (repetition 1 after a row's first), or
                // one with definition 0 for an empty list.
                let (mut vals, mut defs, mut reps) = (Vec::new(), Vec::new(), Vec::new());
                for f in flows {
                    if f.profiles.is_empty() {
                        defs.push(0);
                        reps.push(0);
                    }
                    for (k, p) in f.profiles.iter().enumerate() {
                        vals.push(text(p));
                        defs.push(1);
                        reps.push(i16::from(k > 0));
                    }
                }
                col.typed::<ByteArrayType>()
                    .write_batch(&vals, Some(&defs), Some(&reps))?;
            }
        }
        col.close()?;
        i += 1;
    }
    rg.close()?;
    Ok(())
}

/// The file of an hour under `dir`: `date=YYYY-MM-DD/hour=HH/flows.parquet` (the layout
/// DuckDB's and Spark's hive partitioning read).
pub fn hour_path(dir: &Path, hour_secs: i64) -> PathBuf {
    let t = flowmesh_link::time::rfc3339_secs(hour_secs);
    // 2026-11-30T05:00:00Z
    let (date, hour) = (
        t.get(..10).unwrap_or("unknown"),
        t.get(11..13).unwrap_or("00"),
    );
    dir.join(format!("date={date}"))
        .join(format!("hour={hour}"))
        .join("flows.parquet")
}

impl Store {
    /// The hours (start, s) holding flows in `[from_s, to_s)`.
    pub fn flow_hours(&self, from_s: i64, to_s: i64) -> Result<Vec<i64>, StoreError> {
        let tx = self.db.begin_read()?;
        let index = tx.open_table(INDEX)?;
        let mut hours: Vec<i64> = Vec::new();
        for e in index.range((from_s, 0)..(to_s, 0))? {
            let h = e?.0.value().0;
            if hours.last() != Some(&h) {
                hours.push(h);
            }
        }
        Ok(hours)
    }

    /// Hours that ended `settle_secs` before `now_secs` and hold blocks not yet exported, with
    /// their newest block (to [`Store::mark_exported`] once written).
    pub fn hours_to_export(
        &self,
        now_secs: i64,
        settle_secs: i64,
    ) -> Result<Vec<(i64, u64)>, StoreError> {
        let tx = self.db.begin_read()?;
        let index = tx.open_table(INDEX)?;
        let done = tx.open_table(EXPORTED)?;
        let mut newest: Vec<(i64, u64)> = Vec::new();
        for e in index.iter()? {
            let (hour, seq) = e?.0.value();
            if hour + 3600 + settle_secs > now_secs {
                break;
            }
            match newest.last_mut() {
                Some((h, s)) if *h == hour => *s = (*s).max(seq),
                _ => newest.push((hour, seq)),
            }
        }
        let mut out = Vec::new();
        for (hour, seq) in newest {
            if done.get(hour)?.map(|v| v.value()) != Some(seq) {
                out.push((hour, seq));
            }
        }
        Ok(out)
    }

    /// Records that the hour starting at `hour_secs` was exported up to block `seq`.
    pub fn mark_exported(&self, hour_secs: i64, seq: u64) -> Result<(), StoreError> {
        let tx = self.db.begin_write()?;
        tx.open_table(EXPORTED)?.insert(hour_secs, seq)?;
        tx.commit()?;
        Ok(())
    }

    /// Writes the flows of the hour starting at `hour_secs` to `path` (atomically: a temporary
    /// file renamed into place). Returns the flows written; none: no file.
    pub fn export_hour(&self, hour_secs: i64, path: &Path) -> Result<u64, ExportError> {
        let io = |source| ExportError::Io {
            path: path.display().to_string(),
            source,
        };
        let tx = self.db.begin_read().map_err(StoreError::from)?;
        let index = tx.open_table(INDEX).map_err(StoreError::from)?;
        let blocks = tx.open_table(BLOCKS).map_err(StoreError::from)?;
        if let Some(dir) = path.parent() {
            // The flows describe users' traffic: directories 0700, files 0600, as the store.
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(io)?;
        }
        let tmp = path.with_extension("parquet.tmp");
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_created_by("flowmesh".into())
            .build();
        let schema = Arc::new(parse_message_type(SCHEMA)?);
        let mut w =
            SerializedFileWriter::new(std::io::BufWriter::new(file), schema, Arc::new(props))?;
        let mut written = 0u64;
        for e in index
            .range((hour_secs, 0)..=(hour_secs, u64::MAX))
            .map_err(StoreError::from)?
        {
            let (k, v) = e.map_err(StoreError::from)?;
            let Some(bytes) = blocks.get(k.value()).map_err(StoreError::from)? else {
                continue;
            };
            let instance = v.value().0;
            match super::decode_block(instance, bytes.value()) {
                Ok(flows) if !flows.is_empty() => {
                    row_group(&mut w, &flows)?;
                    written += flows.len() as u64;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(block = ?k.value(), error = %e, "a damaged flow block was not exported")
                }
            }
        }
        w.close()?;
        if written == 0 {
            let _ = std::fs::remove_file(&tmp);
            return Ok(0);
        }
        std::fs::rename(&tmp, path).map_err(io)?;
        Ok(written)
    }
}
