//! Applications from server names (SNI, HTTP Host, DNS query) through a suffix table.
//!
//! The table is data, one file (`apps.tsv`: `suffix<TAB>application`, sorted): a name matches
//! an entry when it equals the suffix or ends with `.` + suffix, and the longest matching
//! suffix wins — `youtubei.googleapis.com` is YouTube, the rest of `googleapis.com` Google.
//! Lookups walk the name's label boundaries (a handful) in a hash map: no scan of the table.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

/// The table's text, built into the binary.
const TSV: &str = include_str!("apps.tsv");

/// `(suffix, application)` rows of `TSV`, in file order.
fn rows() -> impl Iterator<Item = (&'static str, &'static str)> {
    TSV.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once('\t'))
}

/// The applications, as the table spells them (a set keeps the first of equal strings).
static APPS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| rows().map(|(_, a)| a).collect());

/// Suffix → application, each application one string (the first row's): names compare by
/// address where a collector keys on them.
static TABLE: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| {
    rows()
        .map(|(suffix, app)| (suffix, APPS.get(app).copied().unwrap_or(app)))
        .collect()
});

/// Whether `name` is an application of the table, case-insensitively.
pub fn is_app(name: &str) -> bool {
    app_named(name).is_some()
}

/// The table's spelling of application `name` (case-insensitive), as a static string.
pub fn app_named(name: &str) -> Option<&'static str> {
    // The table's spelling first, as records carry it (a collector asks once a flow).
    APPS.get(name).copied().or_else(|| {
        APPS.iter()
            .find(|app| app.eq_ignore_ascii_case(name))
            .copied()
    })
}

/// The application a server name belongs to.
pub fn app_for_name(name: &str) -> Option<&'static str> {
    let name = name.trim_end_matches('.').as_bytes();
    // Lower case into a buffer on the stack (names are at most 253 bytes; longer is not a
    // name). ASCII case folding keeps multi-byte characters intact, so the bytes stay UTF-8.
    let mut buf = [0u8; 256];
    let lower = buf.get_mut(..name.len())?;
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    let lower = std::str::from_utf8(lower).ok()?;
    // The whole name first, then after each dot: the first hit is the longest suffix.
    std::iter::once(0)
        .chain(lower.match_indices('.').map(|(i, _)| i + 1))
        .find_map(|at| TABLE.get(&lower[at..]).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_suffix_wins_and_only_on_label_boundaries() {
        assert_eq!(app_for_name("www.google.com"), Some("Google"));
        assert_eq!(app_for_name("youtubei.googleapis.com"), Some("YouTube"));
        assert_eq!(app_for_name("r3---sn.googlevideo.com"), Some("YouTube"));
        assert_eq!(app_for_name("notgoogle.com"), None);
        assert_eq!(app_for_name("TEAMS.microsoft.com."), Some("Teams"));
        // Multi-byte characters where a suffix would start (found by cargo fuzz).
        assert_eq!(app_for_name("ééééééééééé"), None);
        assert_eq!(app_for_name("x\u{3b1}oogle.com"), None);
        assert_eq!(app_for_name("\u{3b1}.google.com"), Some("Google"));
        assert_eq!(app_for_name(&"a.".repeat(200)), None);
    }

    #[test]
    fn every_application_is_named_in_any_case_as_the_table_spells_it() {
        for (_, app) in rows() {
            for asked in [
                app.to_string(),
                app.to_ascii_lowercase(),
                app.to_ascii_uppercase(),
            ] {
                let named = app_named(&asked).unwrap();
                assert_eq!(named, app);
                // One string per application, whichever row is asked.
                assert!(std::ptr::eq(named, app_named(app).unwrap()));
            }
        }
        assert_eq!(app_named("NotAnApp"), None);
        for (suffix, app) in rows() {
            assert!(std::ptr::eq(
                app_for_name(suffix).unwrap(),
                app_named(app).unwrap()
            ));
        }
    }

    #[test]
    fn the_table_is_sorted_unique_well_formed_and_nothing_in_it_is_redundant() {
        let all: Vec<_> = rows().collect();
        assert!(all.len() > 100);
        for w in all.windows(2) {
            assert!(
                w[0].0 < w[1].0,
                "{:?} is not before {:?} (sorted, no duplicate)",
                w[0].0,
                w[1].0
            );
        }
        for &(suffix, app) in &all {
            assert!(
                suffix.split('.').count() >= 2
                    && suffix.bytes().all(|b| b.is_ascii_lowercase()
                        || b.is_ascii_digit()
                        || b"-.".contains(&b)),
                "{suffix:?} is not a lower-case domain"
            );
            assert!(
                !app.is_empty() && !app.contains(char::is_whitespace),
                "{app:?}"
            );
            // An entry whose nearest listed parent names the same application adds nothing.
            let parent = suffix
                .match_indices('.')
                .map(|(i, _)| &suffix[i + 1..])
                .find_map(|p| TABLE.get(p));
            assert_ne!(
                parent,
                Some(&app),
                "{suffix:?} repeats its parent's application"
            );
        }
    }
}
