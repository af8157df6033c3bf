//! Closed loop with the state directory read-only, the room history alone read-only, then the
//! state directory full (the rig: `closed_loop/rig.rs`).
//!
//! heatctl keeps its state file (`--state-file`, saved every simulated minute), the audit log
//! and the room history (`history/`, a line a simulated hour) in the state directory. Here it
//! is made read-only (`chmod 0555`; heatctl runs as `nobody` through `setpriv` when the test
//! runs as root, since root writes anywhere), then only the history's folder and files
//! (`chmod -R a-w history`), then full: the process's file-size limit (RLIMIT_FSIZE, soft) is
//! lowered to 64 bytes with `prlimit --pid`, below the state file's size, so every
//! state-directory write fails as on a full disk (EFBIG instead of ENOSPC; no privilege and no
//! mount needed). In each: control goes on (no safe position, no field alarm), alarm 702 is
//! raised naming the file that fails (the history alone raises it too), the last good state
//! file is never changed nor corrupted, no temporary file is left; when writing works again
//! the alarm clears, the state file is saved again and the history goes on: the hours the disk
//! refused are written once it takes them, so the history has no gap.
//!
//! Needs `chmod` and `prlimit` (util-linux), and `setpriv` (util-linux) when run as root: under
//! CI a missing tool fails the test.

use crate::rig::*;
use std::path::Path;
use std::process::Command;

const A_STATE_WRITE_FAILED: u16 = 702;

/// Simulated seconds for a change of the state directory to show: heatctl saves its state
/// every simulated minute but at most once a real second (720 simulated seconds at 720x),
/// then the alarm's clear delay (60 s) and the observer's slack.
const SAVE_NOTICE_S: f64 = 720.0 + 60.0 + 2.0 * NOTICE_S + 100.0;

fn tool(name: &str) -> bool {
    let found = Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found && std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{name} (util-linux) is required under CI");
    }
    if !found {
        eprintln!("SKIPPED: {name} not installed");
    }
    found
}

fn run(cmd: &str, args: &[&str]) {
    let st = Command::new(cmd)
        .args(args)
        .status()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(st.success(), "{cmd} {args:?}: {st}");
}

/// Set the soft file-size limit of `pid`, as `nobody` when the test runs as root (heatctl runs
/// as `nobody` then, and lowering another user's limits would need CAP_SYS_RESOURCE).
fn set_fsize(root: bool, pid: &str, soft: &str) {
    let limit = format!("--fsize={soft}:unlimited");
    if root {
        run(
            "setpriv",
            &[
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "prlimit",
                "--pid",
                pid,
                &limit,
            ],
        );
    } else {
        run("prlimit", &["--pid", pid, &limit]);
    }
}

/// Whether this process runs as root (the owner of `/proc/self`).
fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn state_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("the state file exists")
}

fn saved_at_s(bytes: &[u8]) -> f64 {
    let t: Table = std::str::from_utf8(bytes)
        .expect("utf-8")
        .parse()
        .expect("the state file parses");
    get_f64(&t, "saved_at_s")
}

/// The hours in the room history of state directory `dir` (unique, in order).
fn hours(dir: &Path) -> Vec<i64> {
    let mut h: Vec<i64> = heatctl::balance::record::read_history(dir)
        .map(|r| r.hours.iter().map(|h| h.hour_unix_s).collect())
        .unwrap_or_default();
    h.sort_unstable();
    h.dedup();
    h
}

/// Observations with alarm 702 in `[from_s, to_s)`, and observations in all.
fn with_702(rig: &Rig, from_s: f64, to_s: f64) -> (usize, usize) {
    let n = count(rig, from_s, to_s);
    let a = rig
        .window(from_s, to_s)
        .filter(|(_, s)| s.has_alarm(A_STATE_WRITE_FAILED))
        .count();
    (a, n)
}

#[test]
fn state_directory_read_only_then_full() {
    let root = is_root();
    if !tool("prlimit") || (root && !tool("setpriv")) {
        return;
    }
    let _slots = rig_slots(1);
    block_on(async {
        let sc = scenario("demo", -5.0);
        let mut base = constant_weather_base();
        set(&mut base, "safety.alarm_clear_delay_s", 60.0);
        let mut rig = Rig::start("state-dir", &sc, base, SPEED).await;
        let dir = rig.dir.path().to_path_buf();
        let state = rig.state_path.clone();
        let tmp = state.with_extension("tmp");
        if root {
            // Root writes through any mode: run heatctl as nobody, in a directory it may write.
            rig.terminate();
            run("chmod", &["-R", "a+rwX", &dir.display().to_string()]);
            let wrapper = dir.join("as-nobody.sh");
            std::fs::write(
                &wrapper,
                format!(
                    "#!/bin/sh\nexec setpriv --reuid=65534 --regid=65534 --clear-groups {} \"$@\"\n",
                    rig.binary.display()
                ),
            )
            .expect("wrapper");
            run("chmod", &["0755", &wrapper.display().to_string()]);
            rig.binary = wrapper;
            rig.spawn().await;
        }
        let t0 = rig.plant_time_s();
        rig.run_until(t0 + 1.0 * H).await;
        let good = state_bytes(&state);
        assert!(saved_at_s(&good) > 0.0);

        // Read-only.
        run("chmod", &["0555", &dir.display().to_string()]);
        let ro_from = rig.plant_time_s();
        // A save in flight at the chmod may still land: the last good file is the one after it.
        rig.run_until(ro_from + 0.1 * H).await;
        let last_good = state_bytes(&state);
        rig.run_until(ro_from + 1.5 * H).await;
        let (a, n) = with_702(&rig, ro_from + SAVE_NOTICE_S, ro_from + 1.5 * H);
        assert!(n > 50, "observations while read-only: {n}");
        assert_eq!(a, n, "alarm 702 while the state directory is read-only");
        assert_eq!(
            state_bytes(&state),
            last_good,
            "the last good state file is kept"
        );
        assert!(!tmp.exists(), "no temporary file left");
        assert_healthy(&rig, ro_from, ro_from + 1.5 * H);

        // Writable again: the alarm clears, the state is saved.
        run(
            "chmod",
            &[
                if root { "0777" } else { "0755" },
                &dir.display().to_string(),
            ],
        );
        let back = rig.plant_time_s();
        rig.run_until(back + 0.6 * H).await;
        let (a, n) = with_702(&rig, back + SAVE_NOTICE_S, back + 0.6 * H);
        assert!(n > 10);
        assert_eq!(a, 0, "alarm 702 cleared once writes succeed");
        let resumed = state_bytes(&state);
        assert!(saved_at_s(&resumed) > saved_at_s(&last_good), "saved again");

        // The room history alone cannot be written: its folder and files read-only.
        let history_dir = heatctl::balance::recorder::history_dir(&dir);
        let history = history_dir.display().to_string();
        let hours_before = hours(&dir).len();
        let saved_before = saved_at_s(&state_bytes(&state));
        run("chmod", &["-R", "a-w", &history]);
        let h_from = rig.plant_time_s();
        rig.run_until(h_from + 1.5 * H).await;
        let (a, n) = with_702(&rig, h_from, h_from + 1.5 * H);
        assert!(n > 50, "observations while the history is read-only: {n}");
        assert!(
            a > 0,
            "alarm 702 when only the room history cannot be written"
        );
        assert!(
            saved_at_s(&state_bytes(&state)) > saved_before,
            "the state file is still saved meanwhile"
        );
        assert_healthy(&rig, h_from, h_from + 1.5 * H);
        assert!(
            rig.log()
                .lines()
                .any(|l| l.contains("alarm raised: 702") && l.contains("room history")),
            "the raise names the room history"
        );
        run("chmod", &["-R", if root { "a+w" } else { "u+w" }, &history]);
        let back = rig.plant_time_s();
        rig.run_until(back + 0.6 * H).await;
        let (a, n) = with_702(&rig, back + SAVE_NOTICE_S, back + 0.6 * H);
        assert!(n > 10);
        assert_eq!(a, 0, "alarm 702 cleared once the history is written");
        assert!(
            hours(&dir).len() >= hours_before + 2,
            "the hours refused written once the files are writable ({hours_before} before, {} now)",
            hours(&dir).len()
        );

        // Full: no file of heatctl's may grow past 64 bytes (the state file is longer).
        let hours_before = hours(&dir).len();
        let pid = rig.heatctl().pid().to_string();
        // The soft limit only (the hard one stays unlimited), set as heatctl's own user: no
        // privilege needed to lower it and to raise it back.
        set_fsize(root, &pid, "64");
        let full_from = rig.plant_time_s();
        rig.run_until(full_from + 0.1 * H).await;
        let last_good = state_bytes(&state);
        rig.run_until(full_from + 2.5 * H).await;
        let (a, n) = with_702(&rig, full_from + SAVE_NOTICE_S, full_from + 2.5 * H);
        assert!(n > 50, "observations while full: {n}");
        assert_eq!(a, n, "alarm 702 while the state directory is full");
        assert_eq!(
            state_bytes(&state),
            last_good,
            "the last good state file is kept"
        );
        assert!(saved_at_s(&last_good) > 0.0, "and it is whole");
        assert!(!tmp.exists(), "no temporary file left on the full disk");
        assert_healthy(&rig, full_from, full_from + 2.5 * H);

        // Room again.
        set_fsize(root, &pid, "unlimited");
        let back = rig.plant_time_s();
        rig.run_until(back + 2.5 * H).await;
        let (a, n) = with_702(&rig, back + SAVE_NOTICE_S, back + 2.5 * H);
        assert!(n > 10);
        assert_eq!(a, 0, "alarm 702 cleared once the disk has room");
        assert!(saved_at_s(&state_bytes(&state)) > saved_at_s(&last_good));
        let history = heatctl::balance::record::read_history(&dir).expect("history readable");
        assert!(
            history.hours.len() > hours_before,
            "the history goes on after the disk had room again ({} hours before the full disk, {} now)",
            hours_before,
            history.hours.len()
        );
        assert!(
            history.garbled_lines <= 1,
            "at most a line cut short by the limit: {} garbled",
            history.garbled_lines
        );
        let hours = hours(&dir);
        assert!(
            hours.windows(2).all(|w| w[1] - w[0] == 3600),
            "no hour lost to the read-only or full disk: {hours:?}"
        );
        let log = rig.log();
        assert!(
            log.lines()
                .any(|l| l.contains("alarm raised: 702") && l.contains("state file")),
            "the raise is logged with the file"
        );
        assert!(log.contains("alarm cleared: 702"));
        assert!(!log.contains("panicked"));
        rig.finish().await;
    });
}
