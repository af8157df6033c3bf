//! Where a scenario's weather file is found.

use std::path::{Path, PathBuf};

use super::WEATHER_DIR_ENV;

/// Find the weather file: the override, else the path relative to the scenario, else the file
/// name in `$HEATCTL_WEATHER_DIR`, else the file name in the repository's copy
/// (`hil-tests/weather`), else in `<repo>/../shared/data/weather`.
pub(super) fn resolve_weather(
    file: &Path,
    base_dir: &Path,
    over: Option<&Path>,
) -> Result<PathBuf, String> {
    if let Some(p) = over {
        return if p.is_file() {
            Ok(p.to_owned())
        } else {
            Err(format!("weather override {} not found", p.display()))
        };
    }
    let mut tried = Vec::new();
    let direct = if file.is_absolute() {
        file.to_owned()
    } else {
        base_dir.join(file)
    };
    if direct.is_file() {
        return Ok(direct);
    }
    tried.push(direct.display().to_string());
    if let Some(name) = file.file_name() {
        if let Ok(dir) = std::env::var(WEATHER_DIR_ENV) {
            let p = Path::new(&dir).join(name);
            if p.is_file() {
                return Ok(p);
            }
            tried.push(p.display().to_string());
        }
        // The copy kept in the repository (hil-tests/weather).
        let in_repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../weather")
            .join(name);
        if in_repo.is_file() {
            return Ok(in_repo);
        }
        tried.push(in_repo.display().to_string());
        // <repo>/hil-tests/scenarios -> <repo>/../shared/data/weather
        let beside = base_dir.join("../../../shared/data/weather").join(name);
        if beside.is_file() {
            return Ok(beside);
        }
        let crate_rel = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/data/weather")
            .join(name);
        if crate_rel.is_file() {
            return Ok(crate_rel);
        }
        tried.push(crate_rel.display().to_string());
    }
    Err(format!(
        "weather file not found (tried {}); set {WEATHER_DIR_ENV} or pass an override",
        tried.join(", ")
    ))
}
