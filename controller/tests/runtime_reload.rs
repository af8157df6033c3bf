//! `heatctl run --dry-run` writes nothing; a bad configuration on reload changes nothing; a good
//! one written in place is applied, even with the broken file's modification time; SIGHUP
//! reloads; SIGINT ends the run with exit 0. Every change, accepted or
//! refused, from SCADA or the file, lands in the audit log of the state directory.

#[path = "peers/support.rs"]
mod support;

use std::path::Path;
use std::time::Duration;

use support::*;

fn config(peer_port: u16, scada_port: u16, writable: &str) -> String {
    format!(
        "{HEAD}{}{}[points]\nt2_supply = \"plc.t2_supply\"\nvalve1_pos_pct = \"plc.valve1_pos\"\n\
         valve1_cmd = \"plc.valve1_cmd\"\n\
         [scada]\nenabled = true\nlisten = \"127.0.0.1:{scada_port}\"\nwritable = [{writable}]\n",
        link_toml("plc_link", "tcp", peer_port, 500),
        device_toml("plc", "plc_link", 1, "substation-io.toml"),
    )
}

fn log_has(path: &Path, needle: &str) -> Option<()> {
    std::fs::read_to_string(path)
        .ok()
        .filter(|l| l.contains(needle))
        .map(|_| ())
}

#[test]
fn dry_run_and_reload() {
    let Some(py) = python_and_mbpoll() else {
        return;
    };
    let peer_port = free_port();
    let scada_port = free_port();
    let _peer = start_plc(&py, peer_port);
    let path = temp_file(
        "reload.toml",
        &config(peer_port, scada_port, "\"curve_shift_k\""),
    );
    let log_path = path.with_extension("log");
    let state_dir = temp_dir("reload-state");
    let state_arg = state_dir.to_string_lossy().into_owned();
    let mut heatctl = start_heatctl(&["run", "--dry-run", "--state-dir", &state_arg], &path);
    let pid = heatctl.0.id();
    let read_peer_hr0 = || read_hr0(peer_port);
    let logged =
        |needle: &str| wait_for(Duration::from_secs(10), || log_has(&log_path, needle)).is_some();
    let write_scada =
        |reg: &str, value: &str| mbpoll_tcp(scada_port, &["-t", "4", "-r", reg], &[value]).0;

    assert!(
        logged("dry run: would write"),
        "the dry run logs the writes it would make"
    );
    assert_eq!(read_peer_hr0(), Some(0), "dry run writes nothing");

    // A broken file: rejected, old configuration kept, SCADA still serving.
    std::fs::write(&path, "[site]\nname = 3\nunknown_key = true\n").expect("write bad config");
    assert!(
        logged("configuration rejected"),
        "a changed file is noticed and rejected"
    );
    assert!(write_scada("1", "10"), "old allowlist still in force");
    assert!(!write_scada("3", "200"), "room_target_c not yet writable");

    // The good file written in place within the same tick of the file system's clock (its
    // modification time set back to the broken file's): noticed by its length, applied.
    let broken_mtime = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .expect("mtime");
    std::fs::write(
        &path,
        config(
            peer_port,
            scada_port,
            "\"curve_shift_k\", \"room_target_c\"",
        ),
    )
    .expect("write good config");
    std::fs::File::options()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_modified(broken_mtime))
        .expect("set mtime");
    assert!(
        logged("configuration reloaded"),
        "a file rewritten in place is noticed by its length"
    );
    assert!(
        wait_for(Duration::from_secs(5), || write_scada("3", "200")
            .then_some(()))
        .is_some(),
        "new allowlist in force"
    );

    // SIGHUP: the same file loaded again.
    send_signal(pid, "-HUP");
    let reloads = || {
        std::fs::read_to_string(&log_path)
            .map(|l| l.matches("configuration reloaded").count())
            .unwrap_or(0)
    };
    assert!(
        wait_for(Duration::from_secs(10), || (reloads() >= 2).then_some(())).is_some(),
        "SIGHUP reloads"
    );

    send_signal(pid, "-INT");
    let status = wait_exit(&mut heatctl, Duration::from_secs(10)).expect("exits after SIGINT");
    assert!(status.success());
    assert_eq!(
        read_peer_hr0(),
        Some(0),
        "dry run writes nothing, not even on shutdown"
    );

    // The audit log: who asked what, old -> new, accepted or refused and why.
    let audit = std::fs::read_to_string(state_dir.join("audit.jsonl")).expect("audit log written");
    let records: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON record per line"))
        .collect();
    let find = |source: &str, what: &str, result: &str| {
        records
            .iter()
            .find(|r| r["source"] == source && r["what"] == what && r["result"] == result)
    };
    let shift = find("scada", "curve_shift_k", "accepted").expect("the SCADA write is audited");
    assert_eq!(shift["old"], 0.0);
    assert_eq!(shift["new"], 1.0);
    let refused = find("scada", "room_target_c", "refused").expect("the refused write too");
    assert!(
        refused["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not writable")),
        "{refused}"
    );
    let bad = find("file", "config", "refused").expect("the rejected file");
    assert!(
        bad["reason"]
            .as_str()
            .is_some_and(|r| r.contains("unknown_key")),
        "{bad}"
    );
    let good = find("file", "config", "accepted").expect("the reloaded file");
    assert_ne!(good["old"], good["new"], "the configuration hash changed");
    assert_eq!(
        find("scada", "room_target_c", "accepted").map(|r| r["new"].clone()),
        Some(20.0.into())
    );
}
