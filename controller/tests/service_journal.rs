//! Logs for journald: when `JOURNAL_STREAM` names heatctl's stderr, every line starts with its
//! syslog priority and carries no colour codes nor time stamp; on a file or pipe that is not
//! the journal, lines are plain (no colour codes) with time stamps and no priority prefix.

#[path = "peers/support.rs"]
mod support;

use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;

const LIMIT: Duration = Duration::from_secs(60);

/// How `JOURNAL_STREAM` is set for the run.
enum Stream {
    /// Not set.
    Unset,
    /// Set to the log file's own device and inode (as systemd sets it).
    ThisFile,
    /// Set to another stream's (inherited from a service, but stderr is elsewhere).
    Other,
}

/// Run `heatctl run --dry-run` against a device that does not answer until its log shows a
/// warning, stop it, and return the log.
fn run_log(name: &str, stream: Stream, json: bool) -> String {
    let dir = temp_dir(name);
    let config = dir.join("heatctl.toml");
    std::fs::write(
        &config,
        format!(
            "{HEAD}{}{}[points]\nt2_supply = \"plc.t2_supply\"\nvalve1_cmd = \"plc.valve1_cmd\"\n",
            link_toml("plc_link", "tcp", free_port(), 200),
            device_toml("plc", "plc_link", 1, "substation-io.toml"),
        ),
    )
    .expect("config");
    let log_path = dir.join("heatctl.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let meta = log.metadata().expect("metadata");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_heatctl"));
    if json {
        cmd.args(["--log-format", "json"]);
    }
    cmd.args(["run", "--dry-run", "--clock-speed", "20", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .stdout(Stdio::null())
        .stderr(log);
    match stream {
        Stream::Unset => {
            cmd.env_remove("JOURNAL_STREAM");
        }
        Stream::ThisFile => {
            cmd.env("JOURNAL_STREAM", format!("{}:{}", meta.dev(), meta.ino()));
        }
        Stream::Other => {
            cmd.env(
                "JOURNAL_STREAM",
                format!("{}:{}", meta.dev(), meta.ino() + 1),
            );
        }
    }
    let mut heatctl = Peer(cmd.spawn().expect("start heatctl"));
    let read = || std::fs::read_to_string(&log_path).unwrap_or_default();
    wait_for(LIMIT, || {
        read().contains("field devices not answering").then_some(())
    })
    .expect("a warning about the silent device");
    let pid = heatctl.0.id().to_string();
    let ok = Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -INT");
    wait_for(LIMIT, || heatctl.0.try_wait().ok().flatten()).expect("heatctl exits");
    let text = read();
    std::fs::remove_dir_all(dir).ok();
    text
}

fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

fn assert_plain(text: &str) {
    assert!(!text.contains('\u{1b}'), "no colour codes:\n{text}");
    assert!(!text.trim().is_empty(), "some log");
}

fn starts_with_priority(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 3 && b[0] == b'<' && b[1].is_ascii_digit() && b[2] == b'>'
}

#[test]
fn under_journald_lines_carry_syslog_priorities() {
    let text = run_log("journal", Stream::ThisFile, false);
    assert_plain(&text);
    for line in text.lines().filter(|l| !l.is_empty()) {
        assert!(starts_with_priority(line), "priority prefix: {line:?}");
    }
    let running = line_with(&text, "heatctl running");
    assert!(running.starts_with("<6>"), "info is 6: {running}");
    let warning = line_with(&text, "field devices not answering");
    assert!(warning.starts_with("<4>"), "warning is 4: {warning}");
    // journald stamps the entries itself: the line begins with the level, not a date.
    assert!(
        running.starts_with("<6> INFO") || running.starts_with("<6>INFO"),
        "{running}"
    );
}

#[test]
fn json_under_journald_is_one_object_after_the_prefix() {
    let text = run_log("journal-json", Stream::ThisFile, true);
    assert_plain(&text);
    let warning = line_with(&text, "field devices not answering");
    let object = warning
        .strip_prefix("<4>")
        .unwrap_or_else(|| panic!("warning is 4: {warning}"));
    assert!(
        object.starts_with('{') && object.ends_with('}'),
        "one JSON object: {object}"
    );
    assert!(
        !object.contains("\"timestamp\""),
        "journald stamps: {object}"
    );
}

#[test]
fn on_a_file_lines_are_plain_with_time_and_no_prefix() {
    for (name, stream) in [("plain", Stream::Unset), ("other-stream", Stream::Other)] {
        let text = run_log(name, stream, false);
        assert_plain(&text);
        let running = line_with(&text, "heatctl running");
        assert!(
            !starts_with_priority(running),
            "{name}: no prefix: {running}"
        );
        assert!(
            running.starts_with("20") && running.contains("INFO"),
            "{name}: time stamp and level: {running}"
        );
    }
}
