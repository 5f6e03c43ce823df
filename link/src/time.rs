//! Times as flowmesh writes them: RFC 3339 UTC with microseconds (flow records, alerts), and
//! back. One implementation for every component, with no calendar library.

/// Formats µs since the epoch as RFC 3339 UTC with microseconds, e.g. `2024-05-01T12:00:00.000001Z`.
pub fn rfc3339_micros(ts: i64) -> String {
    let mut buf = [0u8; RFC3339_LEN];
    match rfc3339_micros_into(ts, &mut buf) {
        Some(text) => text.to_string(),
        None => rfc3339_general(ts),
    }
}

/// [`rfc3339_micros`] of a time in Unix seconds (session expiries and the like).
pub fn rfc3339_secs(secs: i64) -> String {
    rfc3339_micros(secs.saturating_mul(1_000_000))
}

/// The same text by `format!`, for any year.
fn rfc3339_general(ts: i64) -> String {
    let (y, m, d, sod, micros) = civil(ts);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    )
}

/// Length of [`rfc3339_micros`]'s text for years 0 to 9999.
pub const RFC3339_LEN: usize = 27;

/// [`rfc3339_micros`] written into `buf`, allocating nothing (records are serialized by the
/// hundred thousand); `None` for years outside 0..=9999, which take the general path.
pub fn rfc3339_micros_into(ts: i64, buf: &mut [u8; RFC3339_LEN]) -> Option<&str> {
    if !rfc3339_micros_bytes(ts, buf) {
        return None;
    }
    std::str::from_utf8(buf).ok()
}

/// The ASCII bytes of [`rfc3339_micros_into`] (for writers of bytes: no UTF-8 check); `false`
/// for years outside 0..=9999, leaving `buf` unspecified.
pub fn rfc3339_micros_bytes(ts: i64, buf: &mut [u8; RFC3339_LEN]) -> bool {
    let (y, m, d, sod, micros) = civil(ts);
    if !(0..=9999).contains(&y) {
        return false;
    }
    // Two digits at a time from a table: the divisions were most of the cost.
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut pair = |at: usize, v: i64| {
        let i = (v as usize % 100) * 2;
        buf[at..at + 2].copy_from_slice(&PAIRS[i..i + 2]);
    };
    pair(0, y / 100);
    pair(2, y);
    pair(5, m);
    pair(8, d);
    pair(11, sod / 3600);
    pair(14, (sod % 3600) / 60);
    pair(17, sod % 60);
    pair(20, micros / 10_000);
    pair(22, micros / 100);
    pair(24, micros);
    for (at, c) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
        (26, b'Z'),
    ] {
        buf[at] = c;
    }
    true
}

/// Year, month, day, second of the day and microseconds of `ts` (µs since the epoch, UTC).
fn civil(ts: i64) -> (i64, i64, i64, i64, i64) {
    let secs = ts.div_euclid(1_000_000);
    let micros = ts.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d, sod, micros)
}

/// Parses the RFC 3339 UTC form flow records use (`2024-05-01T12:00:00.000001Z`; the fraction
/// is optional) back to µs since the epoch: the inverse of [`rfc3339_micros`].
pub fn parse_rfc3339_micros(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let micros = if b.get(19) == Some(&b'.') {
        num(20..26).unwrap_or(0)
    } else {
        0
    };
    // Days from civil (Howard Hinnant).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + se) * 1_000_000) + micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_allocation_free_text_is_the_general_one_and_parses_back() {
        let mut buf = [0u8; RFC3339_LEN];
        // Epoch, before it, leap days, the ends of the years it covers, and a sweep between.
        let mut cases = vec![
            0,
            -1,
            951_782_400_000_000,     // 2000-02-29
            1_709_164_800_123_456,   // 2024-02-29
            -62_167_219_200_000_000, // 0000-01-01
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
        ];
        let mut x: i64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..10_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            cases.push(
                x.rem_euclid(253_402_300_800_000_000 + 62_167_219_200_000_000)
                    - 62_167_219_200_000_000,
            );
        }
        for ts in cases {
            let fast = rfc3339_micros_into(ts, &mut buf).expect("a year in 0..=9999");
            assert_eq!(fast, rfc3339_general(ts), "{ts}");
            assert_eq!(parse_rfc3339_micros(fast), Some(ts), "{fast}");
        }
        // Beyond year 9999: the general path.
        let far = 253_402_300_800_000_000;
        assert!(rfc3339_micros_into(far, &mut buf).is_none());
        assert_eq!(rfc3339_micros(far), rfc3339_general(far));
    }
}
