//! The `plant-sim` binary: scenario check, weather lookup through `HEATCTL_WEATHER_DIR`, and
//! every problem of an invalid scenario on stderr.

use std::path::{Path, PathBuf};
use std::process::Command;

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("heatctl-plant-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn chicago() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../weather/weather-chicago.csv")
}

#[test]
fn shipped_scenarios_check() {
    for name in ["default.toml", "small.toml"] {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../scenarios")
            .join(name);
        let out = Command::new(env!("CARGO_BIN_EXE_plant-sim"))
            .args(["--check", "--scenario"])
            .arg(&p)
            .env_remove("HEATCTL_WEATHER_DIR")
            .output()
            .expect("run plant-sim");
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("is valid"));
    }
}

#[test]
fn weather_dir_from_the_environment() {
    let d = temp_dir("wx");
    let wx = d.join("wx");
    std::fs::create_dir_all(&wx).expect("dir");
    std::fs::copy(chicago(), wx.join("only-here.csv")).expect("copy weather");
    let sc = d.join("s.toml");
    std::fs::write(
        &sc,
        "[buildings]\ncount = 1\n[weather]\nfile = \"elsewhere/only-here.csv\"\n",
    )
    .expect("write");
    let run = |env: Option<&Path>| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_plant-sim"));
        c.args(["--check", "--scenario"])
            .arg(&sc)
            .env_remove("HEATCTL_WEATHER_DIR");
        if let Some(e) = env {
            c.env("HEATCTL_WEATHER_DIR", e);
        }
        c.output().expect("run plant-sim")
    };
    let without = run(None);
    assert!(!without.status.success());
    assert!(String::from_utf8_lossy(&without.stderr).contains("weather.file"));
    let with = run(Some(&wx));
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    assert!(String::from_utf8_lossy(&with.stdout).contains("only-here.csv"));
    // An explicit override wins.
    let over = Command::new(env!("CARGO_BIN_EXE_plant-sim"))
        .args(["--check", "--scenario"])
        .arg(&sc)
        .arg("--weather")
        .arg(chicago())
        .env_remove("HEATCTL_WEATHER_DIR")
        .output()
        .expect("run plant-sim");
    assert!(
        over.status.success(),
        "{}",
        String::from_utf8_lossy(&over.stderr)
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn invalid_scenario_lists_every_problem() {
    let d = temp_dir("bad");
    let sc = d.join("bad.toml");
    std::fs::write(
        &sc,
        "[buildings]\ncount = 0\nfloors = 30\nunits_per_floor = 10\n[room_nodes]\nnoise_k = -1.0\n[modbus]\nbind_ip = \"localhost:5\"\n",
    )
    .expect("write");
    let out = Command::new(env!("CARGO_BIN_EXE_plant-sim"))
        .args(["--check", "--scenario"])
        .arg(&sc)
        .output()
        .expect("run plant-sim");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    for path in [
        "buildings.count",
        "buildings.floors",
        "room_nodes.noise_k",
        "modbus.bind_ip",
    ] {
        assert!(err.contains(path), "`{path}` missing from:\n{err}");
    }
    let _ = std::fs::remove_dir_all(&d);
}
