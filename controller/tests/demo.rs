//! `heatctl demo` as a user runs it: the binary as a child process, the simulated plant and the
//! controller in it, over Modbus on loopback. No timing is asserted; each run is a few seconds.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

#[path = "peers/scratch.rs"]
mod scratch;

/// Longest a demo run may take before the test gives up (a hang, not a slow machine).
const GIVE_UP: Duration = Duration::from_secs(120);

fn start_demo(args: &[&str]) -> (Child, Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_heatctl"))
        .arg("demo")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start heatctl demo");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Every line until the demo closes its stdout (kills it after [`GIVE_UP`]).
fn read_to_end(child: &mut Child, rx: &Receiver<String>, mut lines: Vec<String>) -> Vec<String> {
    let deadline = Instant::now() + GIVE_UP;
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) => lines.push(l),
            Err(RecvTimeoutError::Disconnected) => return lines,
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("demo did not finish; output so far:\n{}", lines.join("\n"));
            }
        }
    }
}

/// The number right after `label` in the line that contains it.
fn number_after(lines: &[String], label: &str) -> f64 {
    let line = lines
        .iter()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("no line with {label:?} in:\n{}", lines.join("\n")));
    let at = line.find(label).expect("label in the line");
    let rest = &line[at + label.len()..];
    let token: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == '-' || *c == '+')
        .collect();
    token
        .parse()
        .unwrap_or_else(|e| panic!("{label:?} in {line:?}: {e}"))
}

fn status_lines(lines: &[String]) -> Vec<&String> {
    lines.iter().filter(|l| l.starts_with("status: ")).collect()
}

/// Read `count` input registers (function 04) from unit 1 of the Modbus TCP slave on
/// 127.0.0.1:`port`, written out by hand so the test does not share code with heatctl.
fn read_input_registers(port: u16, start: u16, count: u16) -> Vec<u16> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to SCADA");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("read timeout");
    let mut req = vec![0x12, 0x34, 0, 0, 0, 6, 1, 0x04];
    req.extend_from_slice(&start.to_be_bytes());
    req.extend_from_slice(&count.to_be_bytes());
    s.write_all(&req).expect("send the request");
    let mut head = [0u8; 9];
    s.read_exact(&mut head).expect("answer header");
    assert_eq!(&head[..2], &[0x12, 0x34], "transaction id echoed");
    assert_eq!(
        head[7], 0x04,
        "function 04 answered, not an exception: {head:?}"
    );
    assert_eq!(usize::from(head[8]), 2 * usize::from(count));
    let mut body = vec![0u8; usize::from(head[8])];
    s.read_exact(&mut body).expect("answer body");
    body.chunks(2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .collect()
}

#[test]
fn six_simulated_hours_end_with_a_plausible_summary() {
    let (mut child, rx) = start_demo(&["--hours", "6", "--speed", "3600"]);
    let lines = read_to_end(&mut child, &rx, Vec::new());
    let status = child.wait().expect("wait");
    let text = lines.join("\n");
    assert!(status.success(), "exit {status:?}\n{text}");

    // The start banner names the SCADA address to poll.
    assert!(text.contains("SCADA   127.0.0.1:"), "{text}");
    assert!(text.contains("mbpoll -m tcp"), "{text}");

    // Status lines with a measured secondary supply and valve position.
    let status_lines = status_lines(&lines);
    assert!(status_lines.len() >= 2, "{text}");
    let last = status_lines.last().unwrap();
    for label in [
        "secondary supply",
        "valve",
        "setpoint",
        "rooms P10",
        "median",
    ] {
        let v = number_after(std::slice::from_ref(last), label);
        assert!(v.is_finite(), "{label} in {last}");
    }
    let supply_c = number_after(std::slice::from_ref(last), "secondary supply");
    assert!((30.0..=90.0).contains(&supply_c), "{last}");
    let valve_pct = number_after(std::slice::from_ref(last), "valve");
    assert!((0.0..=100.0).contains(&valve_pct), "{last}");

    // The summary, with plausible figures for six January hours in Hohhot.
    let summary: Vec<String> = lines
        .iter()
        .skip_while(|l| !l.starts_with("heatctl demo summary"))
        .cloned()
        .collect();
    let sim_h = number_after(&summary, "heatctl demo summary:");
    assert!((6.0..6.5).contains(&sim_h), "{text}");
    let heat_kwh = number_after(&summary, "heat delivered");
    assert!(heat_kwh > 0.0, "{text}");
    // 21,600 m² at about 40 W/m² design load: a few MWh in six cold hours, not tens.
    assert!(heat_kwh < 20_000.0, "{text}");
    let per_m2 = number_after(&summary, "through the exchanger =");
    assert!((per_m2 - heat_kwh / 21_600.0).abs() < 0.002, "{text}");
    let median_c = number_after(&summary, "median");
    assert!((15.0..=26.0).contains(&median_c), "{text}");
    let p10_c = number_after(&summary, "P10");
    assert!(p10_c <= median_c, "{text}");
    let below_pct = number_after(&summary, "below 18 °C");
    assert!((0.0..=100.0).contains(&below_pct), "{text}");
    assert!(text.contains("valve travel"), "{text}");
    assert!(text.contains("alarms seen"), "{text}");
    assert!(text.contains("(--hours reached)"), "{text}");
    // The runtime's shutdown wrote the safe position, read back from the plant.
    let safe_pct = number_after(&lines, "primary valve commanded to");
    assert_eq!(safe_pct, 15.0, "demo.toml's safety.valve1_safe_pct\n{text}");
}

#[test]
fn ctrl_c_ends_the_demo_cleanly_with_a_summary() {
    let (mut child, rx) = start_demo(&["--speed", "3600"]);
    let mut lines = Vec::new();
    let deadline = Instant::now() + GIVE_UP;
    while status_lines(&lines).len() < 2 {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) => lines.push(l),
            Err(e) => {
                let _ = child.kill();
                panic!("no status lines ({e}):\n{}", lines.join("\n"));
            }
        }
    }
    // While it runs, the SCADA slave printed in the banner answers a Modbus TCP read of the
    // measurements and the explanation (what the banner's mbpoll command does).
    let port: u16 = {
        let banner = lines
            .iter()
            .find(|l| l.contains("SCADA   127.0.0.1:"))
            .expect("SCADA line in the banner");
        let after = &banner[banner.find("127.0.0.1:").expect("address") + "127.0.0.1:".len()..];
        after
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .expect("port")
            .parse()
            .expect("port number")
    };
    let regs = read_input_registers(port, 0, 26);
    let t2_supply_c = f64::from(regs[3] as i16) / 10.0;
    let setpoint_c = f64::from(regs[10] as i16) / 10.0;
    assert!(
        (20.0..=95.0).contains(&t2_supply_c),
        "t2 {t2_supply_c} {regs:?}"
    );
    assert!(
        (25.0..=85.0).contains(&setpoint_c),
        "setpoint {setpoint_c} {regs:?}"
    );
    // The heat meter's energy counter (u32 kWh, high word at 53, low word at 54) is read from
    // the plant's meter and grows while the plant draws heat: read it, let two more simulated
    // hours pass, read it again.
    let energy_kwh = |r: &[u16]| (u32::from(r[0]) << 16) | u32::from(r[1]);
    let first = energy_kwh(&read_input_registers(port, 53, 2));
    let seen = status_lines(&lines).len();
    while status_lines(&lines).len() < seen + 2 {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(l) => lines.push(l),
            Err(e) => {
                let _ = child.kill();
                panic!("no more status lines ({e}):\n{}", lines.join("\n"));
            }
        }
    }
    let second = energy_kwh(&read_input_registers(port, 53, 2));
    assert_ne!(first, u32::MAX, "energy1_kwh read and published");
    assert!(second > first, "energy1_kwh grows: {first} then {second}");

    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(kill.success());
    let lines = read_to_end(&mut child, &rx, lines);
    let status = child.wait().expect("wait");
    let text = lines.join("\n");
    assert!(status.success(), "exit {status:?}\n{text}");
    assert!(text.contains("stopping (Ctrl-C)"), "{text}");
    assert!(text.contains("heatctl demo summary:"), "{text}");
    assert!(text.contains("(Ctrl-C)"), "{text}");
    assert!(
        number_after(&lines, "heatctl demo summary:") > 0.0,
        "{text}"
    );
    let safe_pct = number_after(&lines, "primary valve commanded to");
    assert_eq!(safe_pct, 15.0, "{text}");
}

#[test]
fn bad_options_are_refused_with_a_reason() {
    for args in [
        ["--speed", "0"],
        ["--speed", "1e9"],
        ["--hours", "-1"],
        ["--hours", "NaN"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_heatctl"))
            .arg("demo")
            .args(args)
            .output()
            .expect("run heatctl demo");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(args[0]), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}: nothing started");
    }
}

#[test]
fn a_config_bound_to_a_served_plant_passes_heatctl_check() {
    let scenario = heatctl_plant::Scenario::from_toml_str(
        "[buildings]\ncount = 2\nfloors = 3\nunits_per_floor = 2\n\
         [weather]\nconstant_outdoor_c = -5.0\n[room_nodes]\nshare_pct = 100.0\n",
        std::path::Path::new("."),
        None,
        "check-test",
    )
    .expect("scenario");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let scratch = scratch::Scratch::new(&format!("heatctl-demo-check-{}", std::process::id()));
    let dir = scratch.to_path_buf();
    let path = rt.block_on(async {
        let server = heatctl_plant::serve(&scenario, 0.0).await.expect("serve");
        let plant = heatctl_plant::serve::lock(&server.plant()).clone();
        let path = heatctl_plant::binding::write_config(
            &dir,
            heatctl_plant::binding::DEMO_TOML,
            &plant,
            server.addresses(),
        )
        .expect("write rig files");
        server.shutdown().await;
        path
    });
    let out = Command::new(env!("CARGO_BIN_EXE_heatctl"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .expect("run heatctl check");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // 2 TCP links + one room gateway per building; every flat has a node.
    assert!(
        stdout.contains("valid (4 links, 2 devices, 12 room nodes)"),
        "{stdout}"
    );
}
