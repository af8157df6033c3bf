//! What the firmware tests share (`emulator.rs`, `serial_firmware.rs`): finding the tools and
//! the board binary (failing under CI when one is missing), and a QMP client to drive QEMU.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("hil-tests sits in the workspace root")
        .to_path_buf()
}

pub(crate) fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Returns `None` (skip) when a prerequisite is missing, or panics under CI.
pub(crate) fn require(what: &str, found: Option<PathBuf>) -> Option<PathBuf> {
    if found.is_none() {
        assert!(
            !under_ci(),
            "firmware test prerequisite missing under CI: {what}"
        );
        eprintln!("SKIP: {what} not found (hil-tests/run-tests installs it)");
    }
    found
}

pub(crate) fn find_in_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

pub(crate) fn find_firmware() -> Option<PathBuf> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let binary = target.join("thumbv7m-none-eabi/release/heatctl-node-lm3s6965");
    binary.is_file().then_some(binary)
}

/// qemu-system-arm running `firmware` on the LM3S6965 board, paused until QMP's `cont`
/// (`-S`), QMP on `qmp_port`, the UART on `serial` (a `-serial` argument: `pty`,
/// `tcp:...`) and, `with_sensor`, a TMP105 on the I2C bus at 0x48 (QMP id `ts0`). The caller
/// sets the standard streams and spawns it.
pub(crate) fn qemu_board(
    qemu: &Path,
    firmware: &Path,
    serial: &str,
    qmp_port: u16,
    with_sensor: bool,
) -> std::process::Command {
    let mut command = std::process::Command::new(qemu);
    command.args([
        "-machine",
        "lm3s6965evb",
        "-nographic",
        "-S",
        "-monitor",
        "none",
    ]);
    if with_sensor {
        command.args(["-device", "tmp105,bus=i2c,address=0x48,id=ts0"]);
    }
    command
        .args(["-serial", serial])
        .arg("-qmp")
        .arg(format!("tcp:127.0.0.1:{qmp_port},server=on,wait=off"))
        .arg("-kernel")
        .arg(firmware);
    command
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

/// A QMP connection (JSON lines over TCP).
pub(crate) struct Qmp {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Qmp {
    pub(crate) fn connect(port: u16) -> Self {
        let stream = connect_retrying(port);
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("set QMP timeout");
        let writer = stream.try_clone().expect("clone QMP stream");
        let mut qmp = Self {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = qmp.line();
        assert!(greeting.contains("QMP"), "QMP greeting: {greeting}");
        qmp.execute(r#"{"execute":"qmp_capabilities"}"#);
        qmp
    }

    pub(crate) fn line(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("read from QMP");
        line
    }

    /// Sends a command and returns its `return` line (events in between are skipped).
    pub(crate) fn execute(&mut self, command: &str) -> String {
        self.writer
            .write_all(format!("{command}\n").as_bytes())
            .expect("write to QMP");
        loop {
            let line = self.line();
            assert!(!line.is_empty(), "QMP closed while waiting for {command}");
            assert!(!line.contains(r#""error""#), "QMP {command}: {line}");
            if line.contains(r#""return""#) {
                return line;
            }
        }
    }

    pub(crate) fn set_temperature_milli_c(&mut self, milli_c: i32) {
        self.execute(&format!(
            r#"{{"execute":"qom-set","arguments":{{"path":"/machine/peripheral/ts0","property":"temperature","value":{milli_c}}}}}"#
        ));
    }
}

pub(crate) fn connect_retrying(port: u16) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => return stream,
            Err(_) if Instant::now() < deadline => sleep(Duration::from_millis(50)),
            Err(e) => panic!("connect to QEMU on port {port}: {e}"),
        }
    }
}
