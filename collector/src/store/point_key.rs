//! The keys of the series tables: `instance NUL name NUL start`, the start as 8 big-endian
//! bytes with the sign bit flipped. Byte order is then (instance, name, start) order — instance
//! names are subject tokens and series names carry no NUL — so redb compares keys with one
//! `memcmp`, and a key is built into a reused buffer (a tuple key was encoded into a new vector
//! for every read and insert, and compared field by field).

/// Appends the key prefix of an instance (every point of its series starts so) to `buf`.
pub(super) fn instance(buf: &mut Vec<u8>, instance: &str) {
    buf.extend_from_slice(instance.as_bytes());
    buf.push(0);
}

/// Appends the key prefix of a series (every point of it starts so) to `buf`.
pub(super) fn series(buf: &mut Vec<u8>, instance: &str, name: &str) {
    self::instance(buf, instance);
    buf.extend_from_slice(name.as_bytes());
    buf.push(0);
}

/// Makes `buf` the key of a series' point at `start`.
pub(super) fn point(buf: &mut Vec<u8>, instance: &str, name: &str, start: i64) {
    buf.clear();
    series(buf, instance, name);
    buf.extend_from_slice(&encode_start(start));
}

/// A start as the last 8 bytes of a key.
pub(super) fn encode_start(start: i64) -> [u8; 8] {
    ((start as u64) ^ (1 << 63)).to_be_bytes()
}

/// A key's instance, series name and start; `None` for bytes that are not such a key.
pub(super) fn parse(key: &[u8]) -> Option<(&str, &str, i64)> {
    let split = key.len().checked_sub(9)?;
    let (head, tail) = key.split_at(split);
    let (&0, start) = tail.split_first()? else {
        return None;
    };
    let nul = head.iter().position(|&b| b == 0)?;
    let instance = std::str::from_utf8(&head[..nul]).ok()?;
    let name = std::str::from_utf8(&head[nul + 1..]).ok()?;
    let start = u64::from_be_bytes(start.try_into().ok()?) ^ (1 << 63);
    Some((instance, name, start as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_as_their_fields_and_parse_back() {
        let key = |i, n, s| {
            let mut buf = Vec::new();
            point(&mut buf, i, n, s);
            buf
        };
        let fields = [
            ("a", "l7:DNS", -86_400),
            ("a", "l7:DNS", 0),
            ("a", "l7:DNS", 1_710_028_800),
            ("a", "total", i64::MIN),
            ("a", "total", i64::MAX),
            ("a-b", "host:10.0.0.1", 0),
            ("ab", "", 5),
        ];
        let keys: Vec<Vec<u8>> = fields.iter().map(|&(i, n, s)| key(i, n, s)).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(sorted, keys, "byte order is field order");
        for (k, f) in keys.iter().zip(fields) {
            assert_eq!(parse(k), Some(f));
        }
        assert_eq!(parse(b"short"), None);
        assert_eq!(
            parse(b"a\0b\x01\0\0\0\0\0\0\0\0"),
            None,
            "no NUL before the start"
        );
    }
}
