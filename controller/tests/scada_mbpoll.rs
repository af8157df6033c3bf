//! `heatctl run` end to end: polls a pymodbus substation I/O, serves SCADA to mbpoll (a
//! libmodbus master), and writes the safe position on SIGTERM.

#[path = "peers/support.rs"]
mod support;

use std::time::Duration;

use support::*;

fn config(peer_port: u16, scada_port: u16) -> String {
    format!(
        "{HEAD}{}{}[points]\nt_out = \"plc.t_out\"\nt2_supply = \"plc.t2_supply\"\n\
         valve1_pos_pct = \"plc.valve1_pos\"\nvalve1_cmd = \"plc.valve1_cmd\"\n\
         [safety]\nvalve1_safe_pct = 15.0\n\
         [scada]\nenabled = true\nlisten = \"127.0.0.1:{scada_port}\"\nunit_id = 1\nmax_connections = 2\n\
         writable = [\"curve_shift_k\", \"room_target_c\"]\n",
        link_toml("plc_link", "tcp", peer_port, 500),
        device_toml("plc", "plc_link", 1, "substation-io.toml"),
    )
}

#[test]
fn scada_reads_and_range_checked_writes_then_safe_position_on_sigterm() {
    let Some(py) = python_and_mbpoll() else {
        return;
    };
    let peer_port = free_port();
    let scada_port = free_port();
    let _peer = start_plc(&py, peer_port);
    let path = temp_file("scada.toml", &config(peer_port, scada_port));
    let mut heatctl = start_heatctl(&["run"], &path);
    let scada = |opts: &[&str], values: &[&str]| mbpoll_tcp(scada_port, opts, values);

    // Input register 3 (mbpoll -r 4): t2_supply ×10, once the first cycle has run.
    let t2 = wait_for(Duration::from_secs(10), || {
        let (ok, out) = scada(&["-t", "3", "-r", "4", "-c", "1"], &[]);
        let v = mbpoll_values(&out);
        (ok && v == [550]).then_some(v)
    });
    assert!(t2.is_some(), "SCADA serves t2_supply");

    // Allowed write, in range: accepted and read back.
    let (ok, out) = scada(&["-t", "4", "-r", "1"], &["25"]);
    assert!(ok, "allowed write succeeds: {out}");
    let (ok, out) = scada(&["-t", "4", "-r", "1", "-c", "1"], &[]);
    assert!(ok && mbpoll_values(&out) == [25], "{out}");
    // Out of range: exception 03, nothing changes.
    let (ok, out) = scada(&["-t", "4", "-r", "1"], &["500"]);
    assert!(!ok && out.contains("Illegal data value"), "{out}");
    let (_, out) = scada(&["-t", "4", "-r", "1", "-c", "1"], &[]);
    assert_eq!(mbpoll_values(&out), [25]);
    // Not on the allowlist: exception 02.
    let (ok, out) = scada(&["-t", "4", "-r", "2"], &["1"]);
    assert!(!ok && out.contains("Illegal data address"), "{out}");

    // SIGTERM: safe position (15.0 % = 150) written, exit 0.
    send_signal(heatctl.0.id(), "-TERM");
    let status =
        wait_exit(&mut heatctl, Duration::from_secs(10)).expect("heatctl exits after SIGTERM");
    assert!(status.success(), "exit 0 after SIGTERM");
    assert_eq!(read_hr0(peer_port), Some(150), "safe position written");
    let log = std::fs::read_to_string(path.with_extension("log")).unwrap_or_default();
    assert!(log.contains("safe positions written"), "{log}");
}
