//! Installing a release beside the running binary, atomically, keeping the one before it.
//!
//! `<exe>` is replaced by rename (a process sees the old file or the new, never half of one);
//! `<exe>.previous` is a hard link to the binary that was running, so a rollback is one rename
//! back. The download is written to a hidden file in the same directory first (same file
//! system, so the rename is atomic) and synced before it takes the binary's place.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The paths of an installation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Paths {
    /// The binary that runs (and that the update replaces).
    pub exe: PathBuf,
    /// The binary that ran before the update.
    pub previous: PathBuf,
    /// A release that was rolled back, kept for inspection.
    pub failed: PathBuf,
}

impl Paths {
    /// The paths around the running binary.
    pub fn of_running() -> Result<Self, String> {
        let exe =
            std::env::current_exe().map_err(|e| format!("cannot tell which binary runs: {e}"))?;
        Ok(Self::around(exe))
    }

    /// The paths around `exe`.
    pub fn around(exe: PathBuf) -> Self {
        Paths {
            previous: beside(&exe, ".previous"),
            failed: beside(&exe, ".failed"),
            exe,
        }
    }

    /// The file the download goes to before it is installed.
    pub fn download(&self) -> PathBuf {
        let dir = self.exe.parent().unwrap_or(Path::new("."));
        let name = self
            .exe
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "flowmesh".into());
        dir.join(format!(".{name}.download-{}", std::process::id()))
    }
}

/// `path` with `suffix` appended to its file name (`flowmesh` → `flowmesh.previous`).
pub fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut p = path.to_path_buf().into_os_string();
    p.push(suffix);
    PathBuf::from(p)
}

/// A new executable file at `path` (mode 0755), replacing any leftover.
pub fn create_executable(path: &Path) -> Result<File, String> {
    let _ = fs::remove_file(path);
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(path)
        .map_err(|e| {
            format!(
                "cannot write {} ({e}): the update installs beside the running binary, so its \
                 directory must be writable by this instance",
                path.display()
            )
        })
}

fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// Installs the synced download `download` as `paths.exe`, keeping the running binary as
/// `paths.previous`.
pub fn install(download: &Path, paths: &Paths) -> Result<(), String> {
    let tmp_previous = beside(&paths.previous, ".tmp");
    let _ = fs::remove_file(&tmp_previous);
    if fs::hard_link(&paths.exe, &tmp_previous).is_err() {
        fs::copy(&paths.exe, &tmp_previous)
            .map_err(|e| format!("cannot keep {}: {e}", paths.exe.display()))?;
    }
    fs::rename(&tmp_previous, &paths.previous)
        .map_err(|e| format!("cannot keep {}: {e}", paths.previous.display()))?;
    fs::rename(download, &paths.exe)
        .map_err(|e| format!("cannot install {}: {e}", paths.exe.display()))?;
    sync_dir(&paths.exe);
    Ok(())
}

/// Puts `paths.previous` back as `paths.exe`; the release that failed becomes `paths.failed`.
pub fn roll_back(paths: &Paths) -> Result<(), String> {
    if !paths.previous.exists() {
        return Err(format!(
            "no previous binary at {} to roll back to",
            paths.previous.display()
        ));
    }
    let _ = fs::remove_file(&paths.failed);
    let _ = fs::rename(&paths.exe, &paths.failed);
    fs::rename(&paths.previous, &paths.exe).map_err(|e| {
        format!(
            "cannot restore {} as {}: {e}",
            paths.previous.display(),
            paths.exe.display()
        )
    })?;
    sync_dir(&paths.exe);
    Ok(())
}

/// Flushes and syncs a download, and checks it holds `bytes_written` bytes.
pub fn finish(mut file: File, bytes_written: u64, path: &Path) -> Result<(), String> {
    file.flush().map_err(|e| e.to_string())?;
    file.sync_all()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if len != bytes_written {
        return Err(format!(
            "{} holds {len} bytes, not {bytes_written}",
            path.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_keeps_the_previous_and_roll_back_restores_it() {
        let dir = tempfile::tempdir().unwrap();
        let paths = Paths::around(dir.path().join("flowmesh"));
        fs::write(&paths.exe, b"old").unwrap();
        let dl = paths.download();
        let mut f = create_executable(&dl).unwrap();
        f.write_all(b"new!").unwrap();
        finish(f, 4, &dl).unwrap();
        install(&dl, &paths).unwrap();
        assert_eq!(fs::read(&paths.exe).unwrap(), b"new!");
        assert_eq!(fs::read(&paths.previous).unwrap(), b"old");
        assert!(!dl.exists());
        roll_back(&paths).unwrap();
        assert_eq!(fs::read(&paths.exe).unwrap(), b"old");
        assert_eq!(fs::read(&paths.failed).unwrap(), b"new!");
        assert!(roll_back(&paths).is_err(), "nothing left to roll back to");
    }
}
