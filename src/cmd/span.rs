//! `--from` / `--to` for the commands that read what a collector stored (alerts, flows).

/// A time span: each end an RFC 3339 time or a duration before now.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct Span {
    /// From this time: RFC 3339 (2026-11-22T08:00:00Z) or a duration ago (30m, 2h, 7d).
    #[arg(long, value_parser = when, value_name = "TIME")]
    pub from: Option<i64>,
    /// Before this time (same forms).
    #[arg(long, value_parser = when, value_name = "TIME")]
    pub to: Option<i64>,
}

/// RFC 3339, or a duration before now; µs.
fn when(text: &str) -> Result<i64, String> {
    if let Some(t) = flowmesh_link::time::parse_rfc3339_micros(text) {
        return Ok(t);
    }
    let ago = flowmesh_collector::policy::units::duration_secs(text)
        .map_err(|e| format!("{text:?}: neither an RFC 3339 time nor a duration ago ({e})"))?;
    let now = flowmesh_link::envelope::now_micros() as i64;
    Ok(now - (ago as i64).saturating_mul(1_000_000))
}
