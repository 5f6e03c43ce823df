//! Applications from server names (SNI, HTTP Host, DNS query) through a suffix table.
//!
//! A name matches an entry when it equals the suffix or ends with `.` + suffix. The table is
//! small and sorted by specificity at lookup (longest suffix wins), so `youtube.googleapis.com`
//! style overlaps resolve to the more specific application.

const TABLE: &[(&str, &str)] = &[
    ("google.com", "Google"),
    ("googleapis.com", "Google"),
    ("gstatic.com", "Google"),
    ("google.it", "Google"),
    ("googleusercontent.com", "Google"),
    ("gvt1.com", "Google"),
    ("1e100.net", "Google"),
    ("google-analytics.com", "Google"),
    ("doubleclick.net", "Google"),
    ("googlesyndication.com", "Google"),
    ("googleadservices.com", "Google"),
    ("ggpht.com", "YouTube"),
    ("youtube.com", "YouTube"),
    ("ytimg.com", "YouTube"),
    ("googlevideo.com", "YouTube"),
    ("youtu.be", "YouTube"),
    ("youtube-nocookie.com", "YouTube"),
    ("youtubei.googleapis.com", "YouTube"),
    ("facebook.com", "Facebook"),
    ("fbcdn.net", "Facebook"),
    ("facebook.net", "Facebook"),
    ("fb.com", "Facebook"),
    ("fbsbx.com", "Facebook"),
    ("instagram.com", "Instagram"),
    ("cdninstagram.com", "Instagram"),
    ("whatsapp.net", "WhatsApp"),
    ("whatsapp.com", "WhatsApp"),
    ("netflix.com", "Netflix"),
    ("nflxvideo.net", "Netflix"),
    ("nflximg.net", "Netflix"),
    ("nflxext.com", "Netflix"),
    ("nflxso.net", "Netflix"),
    ("teams.microsoft.com", "Teams"),
    ("teams.live.com", "Teams"),
    ("skype.com", "Skype_Teams"),
    ("microsoft.com", "Microsoft"),
    ("windowsupdate.com", "WindowsUpdate"),
    ("live.com", "Microsoft"),
    ("office.com", "Microsoft365"),
    ("office365.com", "Microsoft365"),
    ("outlook.com", "Outlook"),
    ("msn.com", "Microsoft"),
    ("bing.com", "Bing"),
    ("zoom.us", "Zoom"),
    ("zoom.com", "Zoom"),
    ("spotify.com", "Spotify"),
    ("scdn.co", "Spotify"),
    ("spotifycdn.com", "Spotify"),
    ("dropbox.com", "Dropbox"),
    ("dropboxapi.com", "Dropbox"),
    ("dropboxusercontent.com", "Dropbox"),
    ("telegram.org", "Telegram"),
    ("t.me", "Telegram"),
    ("apple.com", "Apple"),
    ("icloud.com", "iCloud"),
    ("mzstatic.com", "Apple"),
    ("itunes.apple.com", "AppleiTunes"),
    ("amazon.com", "Amazon"),
    ("amazonaws.com", "AmazonAWS"),
    ("cloudfront.net", "Cloudflare"),
    ("cloudflare.com", "Cloudflare"),
    ("twitter.com", "Twitter"),
    ("twimg.com", "Twitter"),
    ("x.com", "Twitter"),
    ("linkedin.com", "LinkedIn"),
    ("wikipedia.org", "Wikipedia"),
    ("github.com", "Github"),
    ("githubusercontent.com", "Github"),
    ("tiktok.com", "TikTok"),
    ("tiktokcdn.com", "TikTok"),
    ("snapchat.com", "Snapchat"),
    ("reddit.com", "Reddit"),
    ("yahoo.com", "Yahoo"),
    ("ntp.org", "NTP"),
    ("ubuntu.com", "Ubuntu"),
    ("debian.org", "Debian"),
];

/// Whether `name` is an application of the table, case-insensitively.
pub fn is_app(name: &str) -> bool {
    TABLE.iter().any(|(_, app)| app.eq_ignore_ascii_case(name))
}

/// The table's spelling of application `name` (case-insensitive), as a static string.
pub fn app_named(name: &str) -> Option<&'static str> {
    TABLE
        .iter()
        .find(|(_, app)| app.eq_ignore_ascii_case(name))
        .map(|&(_, app)| app)
}

/// The application a server name belongs to.
pub fn app_for_name(name: &str) -> Option<&'static str> {
    // Bytes, not str slices: a name from the wire may hold multi-byte characters, and a suffix
    // boundary inside one must compare unequal, not panic.
    let name = name.trim_end_matches('.').as_bytes();
    let mut best: Option<(&str, &str)> = None;
    for &(suffix, app) in TABLE {
        let hit = name.len() >= suffix.len()
            && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix.as_bytes())
            && (name.len() == suffix.len() || name[name.len() - suffix.len() - 1] == b'.');
        if hit && best.is_none_or(|(s, _)| suffix.len() > s.len()) {
            best = Some((suffix, app));
        }
    }
    best.map(|(_, app)| app)
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
    }
}
