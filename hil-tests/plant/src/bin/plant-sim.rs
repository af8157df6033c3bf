//! `plant-sim`: serve a simulated substation on Modbus TCP ports until Ctrl-C, and optionally
//! write the heatctl configuration bound to it.
//!
//! `cargo run --release -p heatctl-plant --bin plant-sim -- --scenario PATH [--speed X]
//! [--base-port P] [--write-config DIR]`

use std::io::IsTerminal as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use heatctl_plant::binding::DEMO_TOML;
use heatctl_plant::scenario::port_offsets;
use heatctl_plant::serve::lock;
use heatctl_plant::{FaceAddresses, Plant, Scenario, ServeOptions, serve_with};

/// Where the written configuration's SCADA slave listens without `--base-port`: heatctl's
/// default SCADA address.
const DEFAULT_SCADA_PORT: u16 = 1502;

/// Serve a simulated district-heating substation and its buildings over Modbus.
#[derive(Debug, Parser)]
#[command(name = "plant-sim", version)]
struct Args {
    /// Scenario TOML file.
    #[arg(long)]
    scenario: PathBuf,
    /// Simulated seconds per wall second (1 = real time; run heatctl with the same
    /// `--clock-speed`).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Weather CSV replacing the scenario's weather file.
    #[arg(long)]
    weather: Option<PathBuf>,
    /// Serve the faces at fixed ports from this one instead of the scenario's `[modbus]` ports:
    /// substation I/O at P, heat meter at P+1, room gateway of building b at P+100+b, household
    /// valve gateway of building b at P+200+b; the written configuration's SCADA slave at P+2.
    #[arg(long)]
    base_port: Option<u16>,
    /// Write the heatctl configuration bound to the served plant (the demo tuning, the SCADA
    /// slave on) to DIR/heatctl.toml, and the device maps it uses to DIR/devices/.
    #[arg(long, value_name = "DIR")]
    write_config: Option<PathBuf>,
    /// Tuning the written configuration starts from, instead of the demo's (config/demo.toml).
    #[arg(long, value_name = "FILE", requires = "write_config")]
    base_config: Option<PathBuf>,
    /// Wall seconds between status lines (0: none).
    #[arg(long, default_value_t = 10.0)]
    status_every_s: f64,
    /// Only validate the scenario and build the plant, print a summary, and exit.
    #[arg(long)]
    check: bool,
}

/// Log lines on stdout, coloured only when it is a terminal and `NO_COLOR` is not set.
fn init_log() {
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(colour)
        .init();
}

/// The scenario of the command line: weather override and fixed ports applied.
fn scenario(args: &Args) -> anyhow::Result<Scenario> {
    let mut sc = Scenario::load(&args.scenario, args.weather.as_deref())?;
    if let Some(base) = args.base_port {
        sc.modbus = sc
            .modbus
            .at_base_port(base, sc.buildings.count)
            .map_err(|e| anyhow::anyhow!("--base-port {base}: {e}"))?;
    }
    Ok(sc)
}

/// Log where every face listens.
fn log_addresses(a: &FaceAddresses) {
    tracing::info!("substation I/O (Modbus TCP) on {}", a.substation_io);
    tracing::info!("heat meter (Modbus TCP) on {}", a.heat_meter);
    for g in &a.room_gateways {
        tracing::info!(
            "room-node gateway of building {} (RTU over TCP) on {}: unit ids {:?}",
            g.building,
            g.addr,
            g.unit_ids
        );
    }
    for g in &a.valve_gateways {
        tracing::info!(
            "household-valve gateway of building {} (RTU over TCP) on {}: unit ids 1..={}",
            g.building,
            g.addr,
            g.unit_ids.len()
        );
    }
}

/// The tuning `base` made to describe the served plant: the site named after the scenario with
/// the plant's floor area, and the SCADA slave on at `scada`.
fn tune(base: &str, base_name: &str, plant: &Plant, scada: SocketAddr) -> anyhow::Result<String> {
    let mut root: toml::Table = base
        .parse()
        .with_context(|| format!("{base_name} is not valid TOML"))?;
    let mut set = |table: &str, key: &str, value: toml::Value| {
        if let toml::Value::Table(t) = root
            .entry(table)
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        {
            t.insert(key.to_owned(), value);
        }
    };
    set(
        "site",
        "name",
        format!("plant-sim: scenario `{}`", plant.scenario().name).into(),
    );
    set("site", "floor_area_m2", plant.total_floor_area_m2().into());
    set("scada", "enabled", true.into());
    set("scada", "listen", scada.to_string().into());
    Ok(toml::to_string(&root)?)
}

/// Write the configuration bound to the served plant and the device maps to `dir`; returns the
/// configuration path and the SCADA address it sets.
fn write_config(
    args: &Args,
    dir: &Path,
    plant: &Plant,
    addrs: &FaceAddresses,
) -> anyhow::Result<(PathBuf, SocketAddr)> {
    let (base, base_name) = match &args.base_config {
        Some(p) => (
            std::fs::read_to_string(p)
                .with_context(|| format!("cannot read --base-config {}", p.display()))?,
            p.display().to_string(),
        ),
        None => (DEMO_TOML.to_owned(), "the demo tuning".to_owned()),
    };
    let ip: IpAddr = addrs.substation_io.ip();
    let port = args
        .base_port
        .map_or(DEFAULT_SCADA_PORT, |p| p + port_offsets::SCADA);
    let scada = SocketAddr::new(ip, port);
    let tuned = tune(&base, &base_name, plant, scada)?;
    let path = heatctl_plant::binding::write_config(dir, &tuned, plant, addrs)
        .with_context(|| format!("cannot write the configuration to {}", dir.display()))?;
    Ok((path, scada))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_log();
    let args = Args::parse();
    let scenario = scenario(&args)?;
    let plant = Plant::new(&scenario).context("building the plant")?;
    tracing::info!(
        "scenario `{}`: {} buildings, {} apartments, {:.0} m², design load {:.0} kW, {} room nodes, speed x{}",
        scenario.name,
        scenario.buildings.count,
        plant.apartments().len(),
        plant.total_floor_area_m2(),
        plant.design_load_kw(),
        plant.room_node_count(),
        args.speed
    );
    if args.check {
        println!(
            "scenario `{}` is valid: {} apartments, {:.0} m², design load {:.0} kW, {} room nodes, weather {}",
            scenario.name,
            plant.apartments().len(),
            plant.total_floor_area_m2(),
            plant.design_load_kw(),
            plant.room_node_count(),
            scenario
                .weather_path
                .as_ref()
                .map_or_else(|| "constant".to_owned(), |p| p.display().to_string())
        );
        return Ok(());
    }
    let status_every =
        (args.status_every_s > 0.0).then(|| Duration::from_secs_f64(args.status_every_s));
    let server = serve_with(
        plant,
        ServeOptions {
            speed: args.speed,
            status_every,
        },
    )
    .await?;
    log_addresses(server.addresses());
    if let Some(dir) = &args.write_config {
        let shared = server.plant();
        let (path, scada) = write_config(&args, dir, &lock(&shared), server.addresses())?;
        tracing::info!(
            "heatctl configuration written to {} (SCADA slave on {scada}): heatctl run --config {} --clock-speed {}",
            path.display(),
            path.display(),
            args.speed
        );
    }
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    tracing::info!("stopping");
    server.shutdown().await;
    Ok(())
}
