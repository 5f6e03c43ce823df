//! The bytes of a stored flow block's columns: LEB128 varints (zigzag for signed values), and
//! each column compressed on its own (zstd), so a query decompresses only the columns it reads.

/// Appends `v` as a LEB128 varint.
pub(super) fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends a signed value, zigzag-encoded (small magnitudes stay short either way).
pub(super) fn put_signed(out: &mut Vec<u8>, v: i64) {
    put(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// Appends a length-prefixed byte string.
pub(super) fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Why a block's bytes are not a block (a damaged store, or a newer format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("damaged flow block: {0}")]
pub struct Damaged(pub &'static str);

/// Reads varints and byte strings from a column, refusing what runs past its end.
#[derive(Clone)]
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes }
    }

    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(super) fn get(&mut self) -> Result<u64, Damaged> {
        let mut v = 0u64;
        for (i, b) in self.bytes.iter().enumerate().take(10) {
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                self.bytes = &self.bytes[i + 1..];
                return Ok(v);
            }
        }
        Err(Damaged("varint"))
    }

    pub(super) fn get_signed(&mut self) -> Result<i64, Damaged> {
        let v = self.get()?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    pub(super) fn get_bytes(&mut self) -> Result<&'a [u8], Damaged> {
        let n = usize::try_from(self.get()?).map_err(|_| Damaged("length"))?;
        self.get_fixed(n)
    }

    pub(super) fn get_fixed(&mut self, n: usize) -> Result<&'a [u8], Damaged> {
        if n > self.bytes.len() {
            return Err(Damaged("length"));
        }
        let (b, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Ok(b)
    }

    /// A value that must fit `T` (an index, a port).
    pub(super) fn get_as<T: TryFrom<u64>>(&mut self) -> Result<T, Damaged> {
        T::try_from(self.get()?).map_err(|_| Damaged("value out of range"))
    }
}

/// Sections below this size are stored as they are: compressing them saves nothing.
const COMPRESS_FROM: usize = 64;
/// The largest column a block may claim, decompressed: bounds what a damaged length costs.
pub(super) const MAX_SECTION: usize = 64 << 20;

/// Appends one section: its raw length, its stored length, its bytes (zstd at `level`, or raw
/// when that is not smaller).
pub(super) fn put_section(out: &mut Vec<u8>, raw: &[u8], level: i32) {
    let packed = if raw.len() >= COMPRESS_FROM {
        compress(raw, level).filter(|c| c.len() < raw.len())
    } else {
        None
    };
    put(out, raw.len() as u64);
    match packed {
        Some(c) => put_bytes(out, &c),
        None => put_bytes(out, raw),
    }
}

thread_local! {
    /// One compression context per thread and level, reused: making a context costs more than
    /// compressing a block's column (7% of the collector's ingest, measured).
    static COMPRESSOR: std::cell::RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// `raw` compressed at `level` with this thread's context (`None` if zstd fails).
fn compress(raw: &[u8], level: i32) -> Option<Vec<u8>> {
    COMPRESSOR.with(|cell| {
        let mut slot = cell.try_borrow_mut().ok()?;
        if slot.as_ref().map(|(l, _)| *l) != Some(level) {
            *slot = Some((level, zstd::bulk::Compressor::new(level).ok()?));
        }
        slot.as_mut()?.1.compress(raw).ok()
    })
}

/// A section as stored: its raw length and its stored bytes.
#[derive(Clone, Copy)]
pub(super) struct Section<'a> {
    raw_len: usize,
    stored: &'a [u8],
}

impl<'a> Section<'a> {
    pub(super) fn read(r: &mut Reader<'a>) -> Result<Self, Damaged> {
        let raw_len = r.get_as::<usize>()?;
        if raw_len > MAX_SECTION {
            return Err(Damaged("section too large"));
        }
        Ok(Section {
            raw_len,
            stored: r.get_bytes()?,
        })
    }

    /// The raw bytes, decompressed into `buf` when stored compressed.
    pub(super) fn open<'b>(&self, buf: &'b mut Vec<u8>) -> Result<&'b [u8], Damaged>
    where
        'a: 'b,
    {
        if self.stored.len() == self.raw_len {
            buf.clear();
            buf.extend_from_slice(self.stored);
            return Ok(buf);
        }
        buf.clear();
        buf.resize(self.raw_len, 0);
        let n = zstd::bulk::decompress_to_buffer(self.stored, buf.as_mut_slice())
            .map_err(|_| Damaged("zstd"))?;
        if n != self.raw_len {
            return Err(Damaged("section length"));
        }
        Ok(buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_refuse_truncation() {
        let mut b = Vec::new();
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            put(&mut b, v);
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            put_signed(&mut b, v);
        }
        let mut r = Reader::new(&b);
        for v in [0u64, 1, 127, 128, 300, u64::MAX] {
            assert_eq!(r.get(), Ok(v));
        }
        for v in [0i64, -1, 1, i64::MIN, i64::MAX] {
            assert_eq!(r.get_signed(), Ok(v));
        }
        assert!(r.is_empty());
        assert_eq!(Reader::new(&[0x80]).get(), Err(Damaged("varint")));
        assert_eq!(Reader::new(&[5, 1]).get_bytes(), Err(Damaged("length")));
    }

    #[test]
    fn sections_round_trip_compressed_or_not() {
        for raw in [vec![7u8; 10], vec![3u8; 5000], (0..=255u8).collect()] {
            let mut out = Vec::new();
            put_section(&mut out, &raw, 3);
            let mut r = Reader::new(&out);
            let s = Section::read(&mut r).expect("section");
            let mut buf = Vec::new();
            assert_eq!(s.open(&mut buf).expect("open"), raw.as_slice());
        }
        // A long run is stored compressed.
        let mut out = Vec::new();
        put_section(&mut out, &[3u8; 5000], 3);
        assert!(out.len() < 100);
    }
}
