//! The version a build reports, kept in a fixed 64-byte field after a marker so that it can be
//! read from a binary file without running it and set after the build (`flowmesh release
//! stamp`), the way packagers set `1.4.2+deb12u1` without rebuilding.
//!
//! The field starts as the crate's version. [`current`] reads it through an opaque pointer,
//! so the compiler cannot fold the build-time value in.

/// Bytes in the version field.
pub const FIELD: usize = 64;

/// The marker, in two halves: joined only here, so the binary holds it once (in [`STAMP`]).
const MARK_HEAD: &[u8] = b"flowmesh-build";
const MARK_TAIL: &[u8] = b"-version:";
const MARK_LEN: usize = MARK_HEAD.len() + MARK_TAIL.len();

const fn initial() -> [u8; MARK_LEN + FIELD] {
    let mut out = [0u8; MARK_LEN + FIELD];
    let v = env!("CARGO_PKG_VERSION").as_bytes();
    let mut i = 0;
    while i < MARK_HEAD.len() {
        out[i] = MARK_HEAD[i];
        i += 1;
    }
    let mut j = 0;
    while j < MARK_TAIL.len() {
        out[MARK_HEAD.len() + j] = MARK_TAIL[j];
        j += 1;
    }
    let mut k = 0;
    while k < v.len() && k < FIELD {
        out[MARK_LEN + k] = v[k];
        k += 1;
    }
    out
}

/// The marker and the version field, as the binary holds them.
#[used]
static STAMP: [u8; MARK_LEN + FIELD] = initial();

/// The version this build reports (the stamp, or the crate version it started as).
pub fn current() -> &'static str {
    let stamp: &'static [u8; MARK_LEN + FIELD] = std::hint::black_box(&STAMP);
    field_text(&stamp[MARK_LEN..]).unwrap_or(env!("CARGO_PKG_VERSION"))
}

/// The text of a version field: printable ASCII up to the first NUL, the rest NUL.
fn field_text(field: &[u8]) -> Option<&str> {
    let end = field.iter().position(|&b| b == 0)?;
    let ok = end > 0
        && field[..end].iter().all(|b| b.is_ascii_graphic())
        && field[end..].iter().all(|&b| b == 0);
    ok.then(|| std::str::from_utf8(&field[..end]).ok())
        .flatten()
}

fn marker() -> Vec<u8> {
    [MARK_HEAD, MARK_TAIL].concat()
}

/// Why a binary's version cannot be read or set.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StampError {
    /// No version field in the file.
    #[error("no flowmesh version stamp in this file (is it a flowmesh binary?)")]
    Missing,
    /// More than one candidate field.
    #[error("{0} version stamps in this file; refusing to guess which is the build's")]
    Ambiguous(usize),
    /// The version does not fit or is not printable.
    #[error("version {0:?} must be 1-63 printable ASCII characters")]
    BadVersion(String),
}

/// Where the version field of `binary` starts.
fn field_at(binary: &[u8]) -> Result<usize, StampError> {
    let mark = marker();
    let mut found = Vec::new();
    for i in memchr::memmem::find_iter(binary, &mark) {
        let at = i + mark.len();
        if binary
            .get(at..at + FIELD)
            .is_some_and(|f| field_text(f).is_some())
        {
            found.push(at);
        }
    }
    match found.as_slice() {
        [] => Err(StampError::Missing),
        [one] => Ok(*one),
        many => Err(StampError::Ambiguous(many.len())),
    }
}

/// The version stamped in `binary` (a file's bytes).
pub fn read(binary: &[u8]) -> Result<String, StampError> {
    let at = field_at(binary)?;
    field_text(&binary[at..at + FIELD])
        .map(str::to_string)
        .ok_or(StampError::Missing)
}

/// Whether `version` fits a field: 1-63 printable ASCII characters.
fn check(version: &str) -> Result<(), StampError> {
    let fits = !version.is_empty()
        && version.len() < FIELD
        && version.bytes().all(|b| b.is_ascii_graphic());
    if fits {
        Ok(())
    } else {
        Err(StampError::BadVersion(version.to_string()))
    }
}

/// Sets the version stamped in `binary` to `version`.
pub fn write(binary: &mut [u8], version: &str) -> Result<(), StampError> {
    check(version)?;
    let at = field_at(binary)?;
    let field = &mut binary[at..at + FIELD];
    field.fill(0);
    field[..version.len()].copy_from_slice(version.as_bytes());
    Ok(())
}

/// A file body that carries a stamp (for tests and for wrapping scripts as releases): the
/// marker and a field holding `version`.
pub fn field_for(version: &str) -> Result<Vec<u8>, StampError> {
    check(version)?;
    let mut out = marker();
    out.extend_from_slice(version.as_bytes());
    out.resize(MARK_LEN + FIELD, 0);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_build_reports_its_crate_version() {
        assert_eq!(current(), env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn a_stamp_is_found_rewritten_and_read_back() {
        let mut bin = b"\x7fELF junk".to_vec();
        bin.extend(field_for("0.1.0").unwrap());
        bin.extend(b"more junk flowmesh-build-version: not a field");
        assert_eq!(read(&bin).unwrap(), "0.1.0");
        write(&mut bin, "1.2.3+deb12u1").unwrap();
        assert_eq!(read(&bin).unwrap(), "1.2.3+deb12u1");
        assert_eq!(
            write(&mut bin, "bad version"),
            Err(StampError::BadVersion("bad version".into()))
        );
        assert!(write(&mut bin, &"9".repeat(64)).is_err());
        assert_eq!(read(b"no stamp here"), Err(StampError::Missing));
        let mut two = field_for("1.0.0").unwrap();
        two.extend(field_for("2.0.0").unwrap());
        assert_eq!(read(&two), Err(StampError::Ambiguous(2)));
    }
}
