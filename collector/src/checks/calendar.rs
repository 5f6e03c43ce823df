//! Where traffic-rule periods start and end: fixed 5-minute, hourly and daily steps in UTC, or,
//! with `[settings] timezone`, local hours and local midnights — so a "day" over a daylight
//! saving change lasts 23 or 25 hours, as the user's calendar says.

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan, Zoned};

use crate::policy::Frequency;

/// Period arithmetic in UTC or one time zone.
#[derive(Debug, Clone)]
pub struct Calendar {
    tz: Option<TimeZone>,
}

impl Calendar {
    /// The calendar of a policy's `timezone` (UTC when `None`, or unknown — the policy
    /// validation already refused unknown names).
    pub fn new(timezone: Option<&str>) -> Self {
        let tz = timezone
            .and_then(|n| TimeZone::get(n).ok())
            .filter(|tz| tz.iana_name() != Some("UTC"));
        Calendar { tz }
    }

    fn zoned(&self, t: i64) -> Option<Zoned> {
        let tz = self.tz.clone()?;
        Some(Timestamp::from_microsecond(t).ok()?.to_zoned(tz))
    }

    /// The start (µs) of the `f` period holding `t` (µs).
    pub fn start(&self, f: Frequency, t: i64) -> i64 {
        let local = self.zoned(t).and_then(|z| match f {
            Frequency::FiveMin => {
                let offset = i64::from(z.offset().seconds()) * 1_000_000;
                let step = f.period_micros();
                Some(t - (t + offset).rem_euclid(step))
            }
            Frequency::Hour => z
                .with()
                .minute(0)
                .second(0)
                .subsec_nanosecond(0)
                .build()
                .ok()
                .map(|h| h.timestamp().as_microsecond()),
            Frequency::Day => z
                .start_of_day()
                .ok()
                .map(|d| d.timestamp().as_microsecond()),
        });
        local.unwrap_or_else(|| t - t.rem_euclid(f.period_micros()))
    }

    /// The end (µs) of the `f` period starting at `start` (µs): the start of the next one.
    pub fn end(&self, f: Frequency, start: i64) -> i64 {
        let local = match f {
            Frequency::Day => self.zoned(start).and_then(|z| {
                let next = z.checked_add(1.day()).ok()?.start_of_day().ok()?;
                Some(next.timestamp().as_microsecond())
            }),
            // Hours and 5-minute steps are fixed lengths in every zone.
            _ => None,
        };
        local.unwrap_or_else(|| start.saturating_add(f.period_micros()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_microsecond()
    }

    #[test]
    fn utc_periods_are_fixed_steps() {
        let c = Calendar::new(None);
        let at = t("2024-03-10T13:47:12Z");
        assert_eq!(c.start(Frequency::FiveMin, at), t("2024-03-10T13:45:00Z"));
        assert_eq!(c.start(Frequency::Hour, at), t("2024-03-10T13:00:00Z"));
        assert_eq!(c.start(Frequency::Day, at), t("2024-03-10T00:00:00Z"));
        assert_eq!(
            c.end(Frequency::Day, t("2024-03-10T00:00:00Z")),
            t("2024-03-11T00:00:00Z")
        );
        let utc = Calendar::new(Some("UTC"));
        assert_eq!(utc.start(Frequency::Day, at), c.start(Frequency::Day, at));
    }

    #[test]
    fn local_days_start_at_local_midnight_and_follow_dst() {
        let rome = Calendar::new(Some("Europe/Rome"));
        // 2024-03-31: clocks go from 02:00 to 03:00 in Rome (CET → CEST): a 23-hour day.
        let day = rome.start(Frequency::Day, t("2024-03-31T12:00:00Z"));
        assert_eq!(day, t("2024-03-30T23:00:00Z"), "midnight CET");
        let end = rome.end(Frequency::Day, day);
        assert_eq!(end, t("2024-03-31T22:00:00Z"), "midnight CEST");
        assert_eq!((end - day) / 3_600_000_000, 23);
        // Just before local midnight still belongs to the local day.
        assert_eq!(rome.start(Frequency::Day, t("2024-03-31T21:59:59Z")), day);
        // Hours in a zone with a half-hour offset start at :30 UTC.
        let kolkata = Calendar::new(Some("Asia/Kolkata"));
        assert_eq!(
            kolkata.start(Frequency::Hour, t("2024-03-10T13:47:12Z")),
            t("2024-03-10T13:30:00Z")
        );
        assert_eq!(
            kolkata.start(Frequency::FiveMin, t("2024-03-10T13:47:12Z")),
            t("2024-03-10T13:45:00Z")
        );
    }
}
