//! The `plant-sim` binary: scenario check, weather lookup through `HEATCTL_WEATHER_DIR`, and
//! every problem of an invalid scenario on stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

#[path = "../../../controller/tests/peers/scratch.rs"]
mod scratch;
use scratch::Scratch;

/// A fresh directory `heatctl-plant-TAG-PID`, removed when the guard is dropped.
fn temp_dir(tag: &str) -> Scratch {
    Scratch::new(&format!("heatctl-plant-{tag}-{}", std::process::id()))
}

/// `plant-sim --check --scenario SCENARIO EXTRA...`, with `HEATCTL_WEATHER_DIR` set to
/// `weather_dir` or unset.
fn check(scenario: &Path, extra: &[&Path], weather_dir: Option<&Path>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_plant-sim"));
    c.args(["--check", "--scenario"])
        .arg(scenario)
        .args(extra)
        .env_remove("HEATCTL_WEATHER_DIR");
    if let Some(d) = weather_dir {
        c.env("HEATCTL_WEATHER_DIR", d);
    }
    c.output().expect("run plant-sim")
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
        let out = check(&p, &[], None);
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
    let without = check(&sc, &[], None);
    assert!(!without.status.success());
    assert!(String::from_utf8_lossy(&without.stderr).contains("weather.file"));
    let with = check(&sc, &[], Some(&wx));
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    assert!(String::from_utf8_lossy(&with.stdout).contains("only-here.csv"));
    // An explicit override wins.
    let over = check(&sc, &[Path::new("--weather"), &chicago()], None);
    assert!(
        over.status.success(),
        "{}",
        String::from_utf8_lossy(&over.stderr)
    );
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
    let out = check(&sc, &[], None);
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
}

/// A running `plant-sim` whose stdout is read line by line; killed when dropped.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(args: &[&str], extra: &[&Path]) -> Running {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_plant-sim"));
        cmd.args(args)
            .args(extra)
            .env_remove("NO_COLOR")
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().expect("start plant-sim");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Read lines until one contains `needle` (a wall-clock guard only stops a hung test).
    fn wait_for(&mut self, needle: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            if let Some(l) = self.seen.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(_) => {
                    let out = kill_for_stderr(&mut self.child);
                    panic!(
                        "plant-sim never logged `{needle}`:\n{}\n{out}",
                        self.seen.join("\n")
                    );
                }
            }
        }
    }
}

/// Kill a child and return what it wrote on stderr.
fn kill_for_stderr(child: &mut std::process::Child) -> String {
    use std::io::Read;
    let _ = child.kill();
    let _ = child.wait();
    let mut s = String::new();
    if let Some(e) = child.stderr.as_mut() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn small_scenario() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/small.toml")
}

/// The port in a log line `... on 127.0.0.1:PORT...`.
fn logged_port(line: &str) -> u16 {
    let at = line.find("127.0.0.1:").expect("an address") + "127.0.0.1:".len();
    line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("a port")
}

#[test]
fn write_config_binds_heatctl_to_the_served_ports_and_logs_are_plain_off_a_terminal() {
    let d = temp_dir("write-config");
    let out = d.join("rig");
    let mut sim = Running::start(
        &["--speed", "0", "--status-every-s", "0.05", "--scenario"],
        &[&small_scenario(), Path::new("--write-config"), &out],
    );
    let io_line = sim.wait_for("substation I/O (Modbus TCP) on");
    let written = sim.wait_for("heatctl configuration written to");
    sim.wait_for("t_out=");
    assert!(written.contains("heatctl run --config"), "{written}");
    // stdout is a pipe here: no colour codes in any line.
    for line in &sim.seen {
        assert!(!line.contains('\u{1b}'), "ANSI escape in `{line:?}`");
    }
    // `heatctl check` is `config::load`: the maps read from DIR/devices, every reference checked.
    let loaded =
        heatctl_core::config::load(&out.join("heatctl.toml")).unwrap_or_else(|p| panic!("{p}"));
    let cfg = &loaded.config;
    let io = cfg
        .links
        .iter()
        .find(|l| l.name == "plant_io")
        .expect("plant_io");
    assert_eq!(io.port, Some(logged_port(&io_line)));
    assert!(cfg.scada.enabled);
    assert_eq!(cfg.scada.listen, "127.0.0.1:1502");
    let sc = heatctl_plant::Scenario::load(&small_scenario(), None).expect("scenario");
    let plant = heatctl_plant::Plant::new(&sc).expect("plant");
    assert_eq!(cfg.rooms.nodes.len(), plant.room_node_count());
    assert!(cfg.rooms.nodes.iter().all(|n| n.valve_link.is_some()));
    assert_eq!(cfg.site.floor_area_m2, plant.total_floor_area_m2());
    assert!(cfg.site.name.contains("small"), "{}", cfg.site.name);
    drop(sim);
}

#[test]
fn base_port_lays_the_faces_out_at_fixed_offsets() {
    let d = temp_dir("base-port");
    let out = d.join("rig");
    let base = heatctl_plant::serve::free_base_port(
        20_000 + (std::process::id() % 2000) as u16 * 10,
        2,
        true,
    )
    .expect("a free range of ports");
    let base_arg = base.to_string();
    let mut sim = Running::start(
        &["--speed", "0", "--base-port", &base_arg, "--scenario"],
        &[&small_scenario(), Path::new("--write-config"), &out],
    );
    sim.wait_for("heatctl configuration written to");
    let cfg = heatctl_core::config::load(&out.join("heatctl.toml"))
        .unwrap_or_else(|p| panic!("{p}"))
        .config;
    let port = |name: &str| {
        cfg.links
            .iter()
            .find(|l| l.name == name)
            .and_then(|l| l.port)
            .unwrap_or_else(|| panic!("link {name}"))
    };
    assert_eq!(port("plant_io"), base);
    assert_eq!(port("plant_meter"), base + 1);
    assert_eq!(port("rooms-b01"), base + 100);
    assert_eq!(port("rooms-b02"), base + 101);
    assert_eq!(port("valves-b01"), base + 200);
    assert_eq!(port("valves-b02"), base + 201);
    assert_eq!(cfg.scada.listen, format!("127.0.0.1:{}", base + 2));
    drop(sim);
}

#[test]
fn a_base_port_too_high_for_the_layout_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_plant-sim"))
        .args(["--check", "--base-port", "65400", "--scenario"])
        .arg(small_scenario())
        .output()
        .expect("run plant-sim");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--base-port 65400") && err.contains("65535"),
        "{err}"
    );
}
