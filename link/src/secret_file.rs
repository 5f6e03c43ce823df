//! Private files (identities, nkey seeds): created 0600, refused when others can read them;
//! and atomic rewrites of any file.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Why a private file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// The target exists and overwriting was not asked for.
    #[error("{0} already exists; refusing to overwrite it (pass --force to replace it)")]
    Exists(PathBuf),
    /// Group or others may read the file.
    #[error(
        "{path} is readable by group or others (mode {mode:o}); it holds a private key: run `chmod 600 {path}`"
    )]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> SecretFileError + '_ {
    move |source| SecretFileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a private file after checking that only its owner can read it.
pub fn read(path: &Path) -> Result<Zeroizing<String>, SecretFileError> {
    let meta = fs::metadata(path).map_err(io_error(path))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretFileError::Permissions {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(Zeroizing::new(
        fs::read_to_string(path).map_err(io_error(path))?,
    ))
}

/// Writes a private file with mode 0600 atomically (temporary file + rename), so it is never
/// half-written nor readable by others, not even for a moment.
pub fn write(path: &Path, body: &[u8], force: bool) -> Result<(), SecretFileError> {
    if !force && path.exists() {
        return Err(SecretFileError::Exists(path.to_path_buf()));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
    }
    write_via_temp(path, body, 0o600, || !force && path.exists())
}

/// Rewrites a file atomically (temporary file + rename), keeping its permission bits (0644 for
/// a new file): readers and a crash see the old text or the new one, never half of either.
pub fn replace(path: &Path, body: &[u8]) -> Result<(), SecretFileError> {
    let mode = fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o777);
    write_via_temp(path, body, mode, || false)
}

/// Makes an existing file private (mode 0600): stores and outboxes that hold users' traffic.
pub fn restrict(path: &Path) -> Result<(), SecretFileError> {
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_error(path))
}

/// Writes `body` to `path.tmp` with `mode`, syncs it and renames it over `path` — unless
/// `refuse()` says otherwise at the last moment.
fn write_via_temp(
    path: &Path,
    body: &[u8],
    mode: u32,
    refuse: impl Fn() -> bool,
) -> Result<(), SecretFileError> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io_error(&tmp))?;
    f.write_all(body).map_err(io_error(&tmp))?;
    f.sync_all().map_err(io_error(&tmp))?;
    drop(f);
    if refuse() {
        let _ = fs::remove_file(&tmp);
        return Err(SecretFileError::Exists(path.to_path_buf()));
    }
    fs::rename(&tmp, path).map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_keeps_the_file_mode_and_write_makes_it_private() {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.toml");
        fs::write(&policy, "old").unwrap();
        fs::set_permissions(&policy, fs::Permissions::from_mode(0o640)).unwrap();
        replace(&policy, b"new").unwrap();
        assert_eq!(fs::read_to_string(&policy).unwrap(), "new");
        let mode = fs::metadata(&policy).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let key = dir.path().join("k.nk");
        write(&key, b"seed", false).unwrap();
        assert_eq!(
            fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(matches!(
            write(&key, b"x", false),
            Err(SecretFileError::Exists(_))
        ));
        assert_eq!(&*read(&key).unwrap(), "seed");
    }
}
