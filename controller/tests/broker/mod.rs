//! A real Mosquitto broker for tests (Debian's `mosquitto`), started on a free loopback port
//! with persistence in a temp dir, and a `mosquitto_sub` subscriber that records every message.
//! Include with `#[path = "broker/mod.rs"] mod broker;`.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// `platform_fleet` includes `peers/support.rs` too, which loads this file as well.
#[allow(clippy::duplicate_mod)]
#[path = "../peers/scratch.rs"]
mod scratch;
pub use scratch::Scratch;

/// Whether the mosquitto broker and clients are installed. Under CI (env CI=true) a missing
/// one fails the test; elsewhere the test is skipped with a note.
pub fn mosquitto_available() -> bool {
    let found = [mosquitto_bin(), "mosquitto_sub", "mosquitto_pub"]
        .iter()
        .all(|t| {
            Command::new(t)
                .arg("--help")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok()
        });
    if found {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!(
            "mosquitto and mosquitto-clients are required under CI (apt-get install mosquitto mosquitto-clients)"
        );
    }
    eprintln!("SKIPPED: mosquitto not installed (apt-get install mosquitto mosquitto-clients)");
    false
}

/// The broker's program: on PATH, else Debian's /usr/sbin/mosquitto (sbin is not on every
/// user's PATH).
pub fn mosquitto_bin() -> &'static str {
    let on_path = Command::new("mosquitto")
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if on_path {
        "mosquitto"
    } else {
        "/usr/sbin/mosquitto"
    }
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The name of a fresh temp directory: `heatctl-TAG-PID-N`.
fn scratch_name(tag: &str) -> String {
    format!(
        "heatctl-{tag}-{}-{}",
        std::process::id(),
        Instant::now().elapsed().as_nanos() ^ rand_suffix()
    )
}

/// A fresh temp directory, removed when the calling test ends ([`Scratch::until_test_ends`]).
pub fn temp_dir(tag: &str) -> PathBuf {
    Scratch::new(&scratch_name(tag)).until_test_ends()
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// A running mosquitto (killed on drop).
pub struct Broker {
    pub port: u16,
    pub dir: PathBuf,
    conf: PathBuf,
    child: Option<Child>,
    /// Removes `dir` after the broker is killed (fields drop after [`Drop::drop`]).
    _scratch: Scratch,
}

impl Broker {
    /// Start on a free port; `extra` is appended to the listener's configuration (e.g.
    /// `acl_file`, TLS files).
    pub fn start(extra: &str) -> Broker {
        let port = free_port();
        let scratch = Scratch::new(&scratch_name("mosquitto"));
        let dir = scratch.to_path_buf();
        // Started as root, mosquitto drops to its own user: it must be able to write here.
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
        }
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
                 persistence_location {}/\nautosave_interval 1\nlog_dest file {}/mosquitto.log\n{extra}\n",
                dir.display(),
                dir.display()
            ),
        )
        .expect("write mosquitto.conf");
        let mut b = Broker {
            port,
            dir,
            conf,
            child: None,
            _scratch: scratch,
        };
        b.run();
        b
    }

    fn run(&mut self) {
        let child = Command::new(mosquitto_bin())
            .arg("-c")
            .arg(&self.conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto");
        self.child = Some(child);
        let end = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < end,
                "mosquitto did not listen on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `mqtt://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// Stop cleanly (SIGTERM: the broker saves its sessions and retained messages).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let end = Instant::now() + Duration::from_secs(5);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start again on the same port with the same persistence.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }

    /// The broker's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("mosquitto.log")).unwrap_or_default()
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// One message as received: topic and payload.
#[derive(Debug, Clone)]
pub struct Msg {
    pub topic: String,
    pub payload: String,
}

/// A `mosquitto_sub` recording every message on `filter` (QoS 1, persistent session, so it
/// gets what was published while the broker restarted). Killed on drop.
pub struct Sub {
    child: Child,
    pub msgs: Arc<Mutex<Vec<Msg>>>,
}

impl Sub {
    pub fn start(port: u16, filter: &str) -> Sub {
        let id = format!(
            "test-sub-{}-{}",
            std::process::id(),
            rand_suffix() % 1_000_000
        );
        let mut child = Command::new("mosquitto_sub")
            .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-t", filter])
            .args(["-q", "1", "-c", "-i", &id, "-F", "%t %p"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mosquitto_sub");
        let out = child.stdout.take().expect("stdout");
        let msgs = Arc::new(Mutex::new(Vec::new()));
        let m2 = msgs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some((t, p)) = line.split_once(' ') {
                    m2.lock().expect("lock").push(Msg {
                        topic: t.to_owned(),
                        payload: p.to_owned(),
                    });
                }
            }
        });
        // Let it subscribe before anything is published.
        std::thread::sleep(Duration::from_millis(300));
        Sub { child, msgs }
    }

    /// Messages so far.
    pub fn all(&self) -> Vec<Msg> {
        self.msgs.lock().expect("lock").clone()
    }

    /// Payloads (as JSON) of messages whose topic ends with `suffix`.
    pub fn json(&self, suffix: &str) -> Vec<serde_json::Value> {
        self.all()
            .into_iter()
            .filter(|m| m.topic.ends_with(suffix))
            .filter_map(|m| serde_json::from_str(&m.payload).ok())
            .collect()
    }

    /// Wait until `f` holds for the messages (at most `limit`).
    pub fn wait(&self, limit: Duration, mut f: impl FnMut(&[Msg]) -> bool) -> bool {
        let end = Instant::now() + limit;
        loop {
            if f(&self.all()) {
                return true;
            }
            if Instant::now() > end {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Publish one message with mosquitto_pub at QoS 1 (payload from a file, any size).
pub fn publish(port: u16, topic: &str, payload: &[u8], retain: bool) {
    let dir = Scratch::new(&scratch_name("pub"));
    let f = dir.join("payload");
    std::fs::write(&f, payload).expect("write payload");
    let mut c = Command::new("mosquitto_pub");
    c.args([
        "-h",
        "127.0.0.1",
        "-p",
        &port.to_string(),
        "-q",
        "1",
        "-t",
        topic,
    ]);
    c.arg("-f").arg(&f);
    if retain {
        c.arg("-r");
    }
    let st = c.status().expect("run mosquitto_pub");
    assert!(st.success(), "mosquitto_pub failed");
}

/// The path of a file next to the tests.
pub fn tests_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests"))
}
