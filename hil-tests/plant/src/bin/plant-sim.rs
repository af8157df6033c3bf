//! `plant-sim`: serve a simulated substation on loopback Modbus ports until Ctrl-C.
//!
//! `cargo run --release -p heatctl-plant --bin plant-sim -- --scenario PATH [--speed X]`

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use heatctl_plant::{Plant, Scenario, ServeOptions, serve_with};

/// Serve a simulated district-heating substation and its buildings over Modbus.
#[derive(Debug, Parser)]
#[command(name = "plant-sim", version)]
struct Args {
    /// Scenario TOML file.
    #[arg(long)]
    scenario: PathBuf,
    /// Simulated seconds per wall second (1 = real time; the rig's controller uses the same).
    #[arg(long, default_value_t = 1.0)]
    speed: f64,
    /// Weather CSV replacing the scenario's weather file.
    #[arg(long)]
    weather: Option<PathBuf>,
    /// Wall seconds between status lines.
    #[arg(long, default_value_t = 10.0)]
    status_every_s: f64,
    /// Only validate the scenario and build the plant, print a summary, and exit.
    #[arg(long)]
    check: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let scenario = Scenario::load(&args.scenario, args.weather.as_deref())?;
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
    let a = server.addresses();
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
    tokio::signal::ctrl_c()
        .await
        .context("waiting for Ctrl-C")?;
    tracing::info!("stopping");
    server.shutdown().await;
    Ok(())
}
