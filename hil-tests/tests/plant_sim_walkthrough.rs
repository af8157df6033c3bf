//! The README's `plant-sim` walk-through, run: `plant-sim --base-port P --write-config DIR` in
//! one process, `heatctl check` and `heatctl run` on the configuration it wrote, and a Modbus
//! client on heatctl's SCADA port (the README uses mbpoll) seeing the plant's outdoor
//! temperature as heatctl reads it.
//!
//! Needs `target/release/heatctl` and `target/release/plant-sim`:
//! `cargo build --release -p heatctl -p heatctl-plant --bins` first.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use heatctl_hil::process::{Heatctl, RigDir, heatctl_binary, plant_sim_binary};
use tokio_modbus::client::Reader;
use tokio_modbus::prelude::Slave;

/// A `plant-sim` child, killed when dropped.
struct PlantSim(Child);

impl Drop for PlantSim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Input registers `0..n` of a Modbus TCP server, None while it does not answer.
async fn read_inputs(addr: SocketAddr, n: u16) -> Option<Vec<u16>> {
    let mut ctx = tokio::time::timeout(
        Duration::from_millis(500),
        tokio_modbus::client::tcp::connect_slave(addr, Slave(1)),
    )
    .await
    .ok()?
    .ok()?;
    let regs = tokio::time::timeout(Duration::from_millis(1000), ctx.read_input_registers(0, n))
        .await
        .ok()?
        .ok()?
        .ok()?;
    Some(regs)
}

#[test]
fn plant_sim_and_heatctl_run_by_hand() {
    let heatctl = heatctl_binary().unwrap_or_else(|m| panic!("{m}"));
    let plant_sim = plant_sim_binary().unwrap_or_else(|m| panic!("{m}"));
    let dir = RigDir::new("walkthrough").expect("scratch directory");
    let rig = dir.path().join("rig");
    let base = heatctl_plant::serve::free_base_port(
        30_000 + (std::process::id() % 2000) as u16 * 10,
        2,
        true,
    )
    .expect("a free range of ports");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/small.toml");

    // Terminal 1: the plant, paused (speed 0), so its outdoor temperature stays put.
    let mut child = Command::new(&plant_sim)
        .args([
            "--speed",
            "0",
            "--base-port",
            &base.to_string(),
            "--scenario",
        ])
        .arg(&scenario)
        .arg("--write-config")
        .arg(&rig)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start plant-sim");
    let stdout = child.stdout.take().expect("stdout");
    let _sim = PlantSim(child);
    let written = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("heatctl configuration written to"))
        .expect("plant-sim wrote the configuration");
    let config = rig.join("heatctl.toml");
    assert!(
        written.contains(&format!("--config {}", config.display())),
        "{written}"
    );

    let check = Command::new(&heatctl)
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("run heatctl check");
    let said = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // Two TCP links, a room and a valve gateway per building; 12 of 24 homes have a node.
    assert!(
        said.contains("valid (6 links, 2 devices, 12 room nodes)"),
        "{said}"
    );

    // Terminal 2: heatctl on the written configuration.
    let args: Vec<String> = vec![
        "run".into(),
        "--config".into(),
        config.display().to_string(),
    ];
    let _run = Heatctl::start(&heatctl, &args, &dir.log_path()).expect("start heatctl run");

    // Terminal 3: the SCADA slave shows the outdoor temperature heatctl reads from the plant.
    let scada: SocketAddr = format!("127.0.0.1:{}", base + 2).parse().expect("addr");
    let io: SocketAddr = format!("127.0.0.1:{base}").parse().expect("addr");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let plant_t_out = read_inputs(io, 1)
            .await
            .expect("the plant's substation I/O")[0];
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Alarm count 0xFFFF: no cycle published yet.
            if let Some(regs) = read_inputs(scada, 31).await
                && regs[30] != 0xFFFF
                && regs[0] == plant_t_out
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "heatctl's SCADA slave never showed the plant's outdoor temperature"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}
