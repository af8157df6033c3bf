//! Log volume of dead field devices: a device that never answers and a link that cannot
//! connect, polled thousands of times on an accelerated clock, give a handful of log lines each
//! (one when they start failing, then one summary with a count per window), not one per poll.
//! The log is captured in-process from `tracing`.

#[path = "peers/support.rs"]
mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use heatctl::config;
use heatctl::field::failure_log::{FAILURE_LOG_MAX_WINDOW_S, FAILURE_LOG_WINDOW_S};
use heatctl::field::{FieldHandle, FieldShared, plan_links};
use heatctl::runtime::{Clock, ScaledClock};
use support::*;
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

const MAP: &str = r#"[device]
model = "fast test I/O"
[[points]]
name = "t2_supply"
table = "input"
address = 0
type = "i16"
scale = 0.1
poll_period_s = 1.0
max_age_s = 10.0
[[points]]
name = "cmd"
table = "holding"
address = 0
type = "u16"
writable = true
poll_period_s = 1.0
max_age_s = 10.0
"#;

/// The captured log.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn lines_with(&self, needle: &str) -> Vec<String> {
        let text = String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned();
        text.lines()
            .filter(|l| l.contains(needle))
            .map(str::to_owned)
            .collect()
    }
}

/// A Modbus TCP "device" that accepts connections, reads the requests and never answers.
async fn silent_device() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                while matches!(s.read(&mut buf).await, Ok(n) if n > 0) {}
            });
        }
    });
    port
}

/// Lines a subject may log over `elapsed_s` of failing: the first, then one per window
/// (10 min, doubling to an hour).
fn allowed_lines(elapsed_s: f64) -> usize {
    let (mut t, mut w, mut n) = (0.0, FAILURE_LOG_WINDOW_S, 1);
    while t + w <= elapsed_s {
        t += w;
        w = (w * 2.0).min(FAILURE_LOG_MAX_WINDOW_S);
        n += 1;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_device_logs_a_few_lines_not_one_per_poll() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();

    let silent_port = silent_device().await;
    // A port nothing listens on: connection refused.
    let refused_port = free_port();
    let map = temp_file("map.toml", MAP);
    let link = |name: &str, port: u16| {
        format!(
            "[[links]]\nname = \"{name}\"\nkind = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\n\
             timeout_ms = 10\nreconnect_min_ms = 1\nreconnect_max_ms = 2\n"
        )
    };
    let dev = |name: &str, l: &str| {
        format!(
            "[[devices]]\nname = \"{name}\"\nlink = \"{l}\"\nunit_id = 1\nmap = \"{}\"\n",
            map.display()
        )
    };
    let text = format!(
        "{HEAD}{}{}{}{}[points]\nt2_supply = \"dead.t2_supply\"\nvalve1_cmd = \"dead.cmd\"\n",
        link("silent-link", silent_port),
        link("gone-link", refused_port),
        dev("dead", "silent-link"),
        dev("unplugged", "gone-link"),
    );
    let loaded = config::load(&temp_file("logs.toml", &text)).unwrap_or_else(|p| panic!("{p}"));
    // 1,000 times real speed: a one-second poll period is a millisecond.
    let clock = Arc::new(ScaledClock::new(1000.0));
    let start_s = clock.mono_s();
    let shared = Arc::new(FieldShared::default());
    let mut field = FieldHandle::start(
        plan_links(&loaded),
        Arc::clone(&clock) as Arc<dyn Clock>,
        Arc::clone(&shared),
    );
    // Keep it failing until both devices have failed many times (wall-clock guard only).
    let enough = wait_until(Duration::from_secs(30), || {
        let st = shared.stats();
        (st["dead"].errors >= 300 && st["unplugged"].errors >= 300).then_some(())
    })
    .await;
    field.stop();
    let elapsed_s = clock.mono_s() - start_s;
    let st = shared.stats();
    assert!(
        enough.is_some(),
        "both devices must fail many times: {st:?}"
    );
    let allowed = allowed_lines(elapsed_s);
    let dead = captured.lines_with("device dead: read failed");
    let gone = captured.lines_with("link gone-link failed");
    eprintln!(
        "{:.0} clock-s: dead device {} failures, {} lines; unplugged link {} failures, {} lines (allowed {allowed})",
        elapsed_s,
        st["dead"].errors,
        dead.len(),
        st["unplugged"].errors,
        gone.len()
    );
    for (what, lines, failures) in [
        ("dead device", &dead, st["dead"].errors),
        ("unplugged link", &gone, st["unplugged"].errors),
    ] {
        assert!(!lines.is_empty(), "{what}: its failure is logged");
        assert!(
            lines.len() <= allowed,
            "{what}: {} lines for {failures} failures over {elapsed_s:.0} clock-s (at most {allowed}):\n{}",
            lines.len(),
            lines.join("\n")
        );
        assert!(
            lines.len() * 50 <= usize::try_from(failures).unwrap_or(usize::MAX),
            "{what}: not rate-limited"
        );
    }
    // The summaries carry the count and the window.
    for l in dead.iter().chain(&gone).skip(1) {
        if l.contains("times in the last") {
            assert!(l.contains("failed "), "{l}");
        }
    }
    assert!(
        dead.iter()
            .chain(&gone)
            .any(|l| l.contains("times in the last"))
            || allowed == 1,
        "a summary with a count after the first window"
    );
}
