//! HTTP/1.x (Host, User-Agent), HTTP CONNECT, the HTTP/2 preface, and the HTTP-over-UDP family:
//! SSDP (1900) and BitTorrent local service discovery (6771).

use super::{L7, PacketView, Verdict};

const METHODS: &[&[u8]] = &[
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"PATCH ",
    b"TRACE ",
    b"CONNECT ",
    b"PROPFIND ",
    b"SUBSCRIBE ",
    b"NOTIFY ",
    b"M-SEARCH ",
    b"BT-SEARCH ",
];

/// The value of header `name` (case-insensitive) in an HTTP head.
pub fn header<'a>(head: &'a [u8], name: &str) -> Option<&'a str> {
    for line in head.split(|&b| b == b'\n').skip(1) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let colon = line.iter().position(|&b| b == b':')?;
        if line[..colon].eq_ignore_ascii_case(name.as_bytes()) {
            return std::str::from_utf8(&line[colon + 1..]).ok().map(str::trim);
        }
    }
    None
}

fn method(p: &[u8]) -> Option<&'static [u8]> {
    METHODS.iter().copied().find(|m| p.starts_with(m))
}

/// Detects HTTP requests and responses.
pub fn detect(v: &PacketView<'_>) -> Verdict {
    let p = v.payload;
    if v.tcp() && p.starts_with(b"PRI * HTTP/2.0\r\n") {
        return Verdict::Match(L7::HTTP2, None);
    }
    let request = method(p);
    let response = p.starts_with(b"HTTP/1.") && p.get(8) == Some(&b' ');
    if request.is_none() && !response {
        return Verdict::No;
    }
    if v.udp() {
        return match (request, v.port(1900), v.port(6771)) {
            (Some(b"BT-SEARCH "), _, _) | (_, _, true) => Verdict::Match(L7::BitTorrent, None),
            (_, true, _) => Verdict::Match(L7::SSDP, None),
            (Some(b"M-SEARCH ") | Some(b"NOTIFY "), _, _) => Verdict::Match(L7::SSDP, None),
            _ => Verdict::No,
        };
    }
    if !v.tcp() {
        return Verdict::No;
    }
    if let Some(m) = request {
        // The request line must end in an HTTP version to count.
        let line_end = p.iter().position(|&b| b == b'\n').unwrap_or(p.len());
        let line = &p[..line_end];
        if !line.windows(6).any(|w| w == b" HTTP/") {
            return if line_end == p.len() && p.len() < 2048 {
                Verdict::NeedMore
            } else {
                Verdict::No
            };
        }
        let host = header(p, "host").map(|h| h.split(':').next().unwrap_or(h).to_ascii_lowercase());
        if m == b"CONNECT " {
            let target = std::str::from_utf8(&line[8..])
                .ok()
                .and_then(|t| t.split([':', ' ']).next())
                .map(str::to_ascii_lowercase);
            return Verdict::Match(L7::HTTP_Connect, host.or(target));
        }
        if host.is_none() && line_end == p.len() {
            return Verdict::NeedMore;
        }
        return Verdict::Match(L7::HTTP, host);
    }
    Verdict::Match(L7::HTTP, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_headers_case_insensitively() {
        let head = b"GET / HTTP/1.1\r\nhOsT: Example.org:8080\r\nUser-Agent: curl/8\r\n\r\n";
        assert_eq!(header(head, "host"), Some("Example.org:8080"));
        assert_eq!(header(head, "user-agent"), Some("curl/8"));
        assert_eq!(header(head, "cookie"), None);
    }
}
