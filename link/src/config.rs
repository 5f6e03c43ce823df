//! Reading components' TOML config files.

use std::path::{Path, PathBuf};

/// Reads and parses the TOML file at `path`; the value and the file's directory, against which
/// relative paths in it are resolved. The error says what is wrong (the caller names the file).
pub fn read_toml<T: serde::de::DeserializeOwned>(path: &Path) -> Result<(T, PathBuf), String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let value = toml::from_str(&text).map_err(|e: toml::de::Error| e.to_string())?;
    let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    Ok((value, dir))
}
