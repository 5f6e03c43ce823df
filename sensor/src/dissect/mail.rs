//! Clear-text mail and file transfer: SMTP, POP3, IMAP (each turning into its TLS form after
//! STARTTLS / STLS) and FTP control.

use super::{L7, PacketView, Verdict};

fn starts_ci(p: &[u8], prefix: &[u8]) -> bool {
    p.len() >= prefix.len() && p[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// Detects the mail protocols and FTP by banner and commands.
pub fn detect(v: &PacketView<'_>) -> Verdict {
    if !v.tcp() {
        return Verdict::No;
    }
    let p = v.payload;
    // Upgrades of a flow already known.
    match v.current {
        L7::SMTP if v.from_client && starts_ci(p, b"STARTTLS") => {
            return Verdict::Match(L7::SMTPS, None);
        }
        L7::POP3 if v.from_client && starts_ci(p, b"STLS") => {
            return Verdict::Match(L7::POP3S, None);
        }
        L7::IMAP if v.from_client && p.windows(8).any(|w| w.eq_ignore_ascii_case(b"STARTTLS")) => {
            return Verdict::Match(L7::IMAPS, None);
        }
        L7::SMTP | L7::POP3 | L7::IMAP => return Verdict::No,
        _ => {}
    }
    if !v.from_client {
        if starts_ci(p, b"220") && p.get(3).is_some_and(|&c| c == b' ' || c == b'-') {
            let text = &p[..p.len().min(200)];
            let smtp = text.windows(4).any(|w| w.eq_ignore_ascii_case(b"SMTP"))
                || v.server_port == 25
                || v.server_port == 587;
            let ftp =
                text.windows(3).any(|w| w.eq_ignore_ascii_case(b"FTP")) || v.server_port == 21;
            return match (smtp, ftp) {
                (true, false) => Verdict::Tentative(L7::SMTP),
                (false, true) => Verdict::Match(L7::FTP_CONTROL, None),
                (true, true) if v.server_port == 21 => Verdict::Match(L7::FTP_CONTROL, None),
                (true, true) => Verdict::Tentative(L7::SMTP),
                _ => Verdict::No,
            };
        }
        if starts_ci(p, b"+OK") {
            return Verdict::Tentative(L7::POP3);
        }
        if starts_ci(p, b"* OK") || starts_ci(p, b"* PREAUTH") {
            return Verdict::Tentative(L7::IMAP);
        }
        return Verdict::No;
    }
    if starts_ci(p, b"EHLO ") || starts_ci(p, b"HELO ") {
        return Verdict::Tentative(L7::SMTP);
    }
    if starts_ci(p, b"USER ") && v.server_port == 21 {
        return Verdict::Match(L7::FTP_CONTROL, None);
    }
    if (starts_ci(p, b"USER ") || starts_ci(p, b"CAPA")) && v.server_port == 110 {
        return Verdict::Tentative(L7::POP3);
    }
    if v.server_port == 143 && p.windows(10).any(|w| w.eq_ignore_ascii_case(b"CAPABILITY")) {
        return Verdict::Tentative(L7::IMAP);
    }
    Verdict::No
}
