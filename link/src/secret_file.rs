//! Private files (identities, nkey seeds): created 0600, refused when others can read them.

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
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let _ = fs::remove_file(&tmp);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_error(&tmp))?;
    f.write_all(body).map_err(io_error(&tmp))?;
    f.sync_all().map_err(io_error(&tmp))?;
    drop(f);
    if !force && path.exists() {
        let _ = fs::remove_file(&tmp);
        return Err(SecretFileError::Exists(path.to_path_buf()));
    }
    fs::rename(&tmp, path).map_err(io_error(path))
}
