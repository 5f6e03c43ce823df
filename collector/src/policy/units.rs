//! Values with units: durations, volumes (1024-based), throughputs, percentages.

/// `30s`, `5m`, `2h`, `1d` → seconds.
pub fn duration_secs(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let digits = s.chars().take_while(|c| c.is_ascii_digit()).count();
    let (n, unit) = s.split_at(digits);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 30s, 5m, 2h, 1d)"))?;
    let mult = match unit.trim() {
        "s" | "" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        u => return Err(format!("{s:?}: unknown duration unit {u:?} (s, m, h, d)")),
    };
    Ok(n * mult)
}

fn number_and_unit(s: &str) -> Result<(f64, &str), String> {
    let s = s.trim();
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let n: f64 = s[..end]
        .parse()
        .map_err(|_| format!("{s:?} does not start with a number"))?;
    if n < 0.0 {
        return Err(format!("{s:?} is negative"));
    }
    Ok((n, s[end..].trim()))
}

/// `100B`, `10KB`, `1MB`, `2GB` (1024-based) → bytes.
pub fn volume_bytes(s: &str) -> Result<u64, String> {
    let (n, unit) = number_and_unit(s)?;
    let mult: f64 = match unit.to_ascii_uppercase().as_str() {
        "B" | "" => 1.0,
        "KB" => 1024.0,
        "MB" => 1024.0 * 1024.0,
        "GB" => 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("{s:?}: volume units are B, KB, MB, GB")),
    };
    Ok((n * mult) as u64)
}

/// `500bps`, `10kbps`, `5Mbps`, `1Gbps` (1000-based, as link speeds are) → bits per second.
pub fn throughput_bps(s: &str) -> Result<u64, String> {
    let (n, unit) = number_and_unit(s)?;
    let mult: f64 = match unit {
        "bps" => 1.0,
        "kbps" | "Kbps" => 1e3,
        "Mbps" => 1e6,
        "Gbps" => 1e9,
        _ => return Err(format!("{s:?}: throughput units are bps, kbps, Mbps, Gbps")),
    };
    Ok((n * mult) as u64)
}

/// `1`..`100` (an optional `%` allowed) → percent.
pub fn percentage(s: &str) -> Result<u8, String> {
    let t = s.trim().trim_end_matches('%');
    t.parse::<u8>()
        .ok()
        .filter(|p| (1..=100).contains(p))
        .ok_or_else(|| format!("{s:?}: a percentage is 1-100"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(duration_secs("5m").unwrap(), 300);
        assert_eq!(duration_secs("0s").unwrap(), 0);
        assert!(duration_secs("5 weeks").is_err());
        assert_eq!(volume_bytes("1MB").unwrap(), 1_048_576);
        assert_eq!(volume_bytes("1.5KB").unwrap(), 1536);
        assert!(volume_bytes("1TB").is_err());
        assert_eq!(throughput_bps("5Mbps").unwrap(), 5_000_000);
        assert!(throughput_bps("5MB").is_err());
        assert_eq!(percentage("50").unwrap(), 50);
        assert!(percentage("0").is_err() && percentage("101").is_err());
    }
}
