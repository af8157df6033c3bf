//! Child processes of the rig: find the release `heatctl` (and `plant-sim`) binaries, give each
//! test a scratch directory, start `heatctl` as a child process with its log in a file, signal
//! it, and kill it on every exit path. The closed-loop tests (`tests/closed_loop/`) and the
//! `plant-sim` walk-through test use it.
//!
//! Everything here is synchronous and uses the standard library only, so the async side (the
//! plant server, the SCADA client) stays in the tests.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// The command that builds the binary the rig starts.
pub const BUILD_HINT: &str = "cargo build --release -p heatctl";

/// The command that builds `plant-sim`.
pub const PLANT_SIM_BUILD_HINT: &str = "cargo build --release -p heatctl-plant --bins";

/// Lines of the child's log printed when a test fails.
pub const LOG_TAIL_LINES: usize = 60;

/// The binary `name` of another package of the workspace, next to the test executable
/// (`target/<profile>/<name>`): integration tests live in `target/<profile>/deps/`, and
/// `CARGO_BIN_EXE_<name>` only exists for the test's own package.
///
/// # Errors
/// A message naming the expected path and `build_hint` when the binary is absent.
pub fn workspace_binary(name: &str, build_hint: &str) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("no current executable: {e}"))?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| format!("unexpected test executable path {}", exe.display()))?;
    let bin = profile_dir.join(name);
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "the {name} binary is missing at {}: build it first with `{build_hint}` \
             (the test starts it as a child process)",
            bin.display()
        ))
    }
}

/// The `heatctl` binary ([`workspace_binary`]).
///
/// # Errors
/// The binary is absent (the message says how to build it).
pub fn heatctl_binary() -> Result<PathBuf, String> {
    workspace_binary("heatctl", BUILD_HINT)
}

/// The `plant-sim` binary ([`workspace_binary`]).
///
/// # Errors
/// The binary is absent (the message says how to build it).
pub fn plant_sim_binary() -> Result<PathBuf, String> {
    workspace_binary("plant-sim", PLANT_SIM_BUILD_HINT)
}

/// A free TCP port on loopback (bound, then released: a small race other programs rarely win).
///
/// # Errors
/// No port can be bound.
pub fn free_port() -> std::io::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A scratch directory for one test under `std::env::temp_dir()`: removed when the test passes,
/// kept (and named, with the tail of the `heatctl` log) when it fails.
#[derive(Debug)]
pub struct RigDir {
    path: PathBuf,
}

impl RigDir {
    /// Create `<temp>/heatctl-closed-loop/<name>-<pid>`, empty.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn new(name: &str) -> std::io::Result<Self> {
        let path = std::env::temp_dir()
            .join("heatctl-closed-loop")
            .join(format!("{name}-{}", std::process::id()));
        match std::fs::remove_dir_all(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        std::fs::create_dir_all(&path)?;
        Ok(Self { path })
    }

    /// The directory.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where the child's stderr (its log) goes.
    #[must_use]
    pub fn log_path(&self) -> PathBuf {
        self.path.join("heatctl.log")
    }
}

impl Drop for RigDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- kept {} ; last {LOG_TAIL_LINES} lines of heatctl's log ----\n{}\n---- end of heatctl's log ----",
                self.path.display(),
                log_tail(&self.log_path(), LOG_TAIL_LINES)
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The whole log file (empty when it cannot be read).
#[must_use]
pub fn log_text(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The last `lines` lines of a log file.
#[must_use]
pub fn log_tail(path: &Path, lines: usize) -> String {
    let text = log_text(path);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A POSIX signal the rig sends (through the `kill` command: no libc binding needed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: stop, writing the safe positions.
    Term,
    /// SIGINT: the same as SIGTERM for heatctl.
    Int,
    /// SIGHUP: reload the configuration.
    Hup,
    /// SIGKILL: die at once, nothing written.
    Kill,
}

impl Signal {
    fn flag(self) -> &'static str {
        match self {
            Signal::Term => "-TERM",
            Signal::Int => "-INT",
            Signal::Hup => "-HUP",
            Signal::Kill => "-KILL",
        }
    }
}

/// A running `heatctl` child. Dropping it kills the process (SIGKILL) and reaps it, so no test
/// exit path leaves one behind.
#[derive(Debug)]
pub struct Heatctl {
    child: Child,
    exited: Option<ExitStatus>,
}

impl Heatctl {
    /// Start `binary args...` with stdout discarded and stderr appended to `log_path` (a line
    /// marks each start, so restarts share one log). `RUST_LOG` defaults to `info` and colours
    /// are off, so the log is plain text.
    ///
    /// # Errors
    /// The log cannot be opened or the process cannot be started.
    pub fn start(binary: &Path, args: &[String], log_path: &Path) -> std::io::Result<Self> {
        let mut log: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)?;
        writeln!(
            log,
            "==== rig: starting {} {}",
            binary.display(),
            args.join(" ")
        )?;
        let rust_log = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
        let child = Command::new(binary)
            .args(args)
            .env("RUST_LOG", rust_log)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        Ok(Self {
            child,
            exited: None,
        })
    }

    /// Process id.
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send a signal.
    ///
    /// # Errors
    /// `kill` cannot be run or reports a failure (the process is gone).
    pub fn signal(&self, signal: Signal) -> std::io::Result<()> {
        let status = Command::new("kill")
            .args([signal.flag(), &self.pid().to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "kill {} {} failed: {status}",
                signal.flag(),
                self.pid()
            )))
        }
    }

    /// The exit status if the process has ended (reaped), None while it runs.
    ///
    /// # Errors
    /// The status cannot be queried.
    pub fn exit_status(&mut self) -> std::io::Result<Option<ExitStatus>> {
        if self.exited.is_none() {
            self.exited = self.child.try_wait()?;
        }
        Ok(self.exited)
    }

    /// Wait up to `limit` (real time) for the process to end; its status, or None if it still
    /// runs.
    ///
    /// # Errors
    /// The status cannot be queried.
    pub fn wait_exit(&mut self, limit: Duration) -> std::io::Result<Option<ExitStatus>> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.exit_status()? {
                return Ok(Some(s));
            }
            if Instant::now() >= deadline {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Kill (SIGKILL) and reap.
    pub fn kill_now(&mut self) {
        if self.exited.is_none() {
            let _ = self.child.kill();
            self.exited = self.child.wait().ok();
        }
    }
}

impl Drop for Heatctl {
    fn drop(&mut self) {
        self.kill_now();
    }
}
