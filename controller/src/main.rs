//! The `heatctl` command.

mod cli;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use heatctl::config;
use heatctl::control::curve::HeatingCurve;
use heatctl::runtime::{self, Clock, RunOptions, ScaledClock, WallClock};

use cli::{Cli, Command, LogFormat, ReportFormat};

/// Exit code of `check` (and `run` at start) on an invalid configuration.
const EXIT_INVALID_CONFIG: u8 = 2;
/// Exit code of bad command-line values (the code clap uses for usage errors).
#[cfg(feature = "demo")]
const EXIT_USAGE: u8 = 2;

/// Log to stderr; the level comes from RUST_LOG, else `default_level` (plain lines when not on a
/// terminal, syslog priorities under journald: see `heatctl::service::journal`).
fn init_logs(format: LogFormat, default_level: &str) {
    heatctl::service::journal::init_logs(format == LogFormat::Json, default_level);
}

fn print_problems(problems: &config::Problems) {
    for p in &problems.0 {
        eprintln!("{p}");
    }
}

fn check(path: &Path) -> ExitCode {
    match config::load(path) {
        Ok(loaded) => {
            println!(
                "{}: valid ({} links, {} devices, {} room nodes)",
                path.display(),
                loaded.config.links.len(),
                loaded.config.devices.len(),
                loaded.config.rooms.nodes.len()
            );
            ExitCode::SUCCESS
        }
        Err(problems) => {
            print_problems(&problems);
            ExitCode::from(EXIT_INVALID_CONFIG)
        }
    }
}

fn curve(path: &Path, svg: Option<&Path>, step_k: u8) -> anyhow::Result<ExitCode> {
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(problems) => {
            print_problems(&problems);
            return Ok(ExitCode::from(EXIT_INVALID_CONFIG));
        }
    };
    let curve = HeatingCurve::new(&loaded.config.curve);
    let step = i32::from(step_k.max(1));
    println!("| outdoor °C | supply setpoint °C |");
    println!("|---:|---:|");
    let points: Vec<(f64, f64)> = (-30..=20)
        .map(f64::from)
        .map(|t| (t, curve.supply_c(t, 0.0)))
        .collect();
    for (t, s) in points
        .iter()
        .filter(|(t, _)| (*t as i32).rem_euclid(step) == 0)
    {
        println!("| {t:.0} | {s:.1} |");
    }
    if let Some(file) = svg {
        plot_svg(file, &points, &loaded.config.site.name)?;
        eprintln!("wrote {}", file.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn plot_svg(file: &Path, points: &[(f64, f64)], site: &str) -> anyhow::Result<()> {
    use plotters::prelude::*;
    let root = SVGBackend::new(file, (800, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let lo = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let mut chart = ChartBuilder::on(&root)
        .caption(format!("Heating curve: {site}"), ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(-30.0..20.0, (lo - 5.0).floor()..(hi + 5.0).ceil())?;
    chart
        .configure_mesh()
        .x_desc("outdoor temperature, °C")
        .y_desc("secondary supply setpoint, °C")
        .draw()?;
    chart.draw_series(LineSeries::new(points.iter().copied(), &RED))?;
    root.present()?;
    Ok(())
}

fn run(
    path: &Path,
    dry_run: bool,
    clock_speed: f64,
    state_file: Option<&Path>,
    state_dir: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    // Check before starting anything, so every problem is listed the way `check` lists it.
    if let Err(problems) = config::load(path) {
        print_problems(&problems);
        return Ok(ExitCode::from(EXIT_INVALID_CONFIG));
    }
    let clock: Arc<dyn Clock> = if clock_speed == 1.0 {
        Arc::new(WallClock)
    } else {
        Arc::new(ScaledClock::new(clock_speed))
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(runtime::run(RunOptions {
        config_path: path.to_path_buf(),
        dry_run,
        clock,
        state_path: state_file.map(Path::to_path_buf),
        state_dir: state_dir
            .map(Path::to_path_buf)
            .or_else(|| state_file.and_then(Path::parent).map(Path::to_path_buf)),
    }))?;
    Ok(ExitCode::SUCCESS)
}

/// Exit code of `balance` when the history is too short to advise.
const EXIT_NO_ADVICE: u8 = 3;

/// `heatctl balance`: the balancing advice from the room history.
fn balance(
    path: &Path,
    from: &Path,
    format: ReportFormat,
    out: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let loaded = match config::load(path) {
        Ok(l) => l,
        Err(problems) => {
            print_problems(&problems);
            return Ok(ExitCode::from(EXIT_INVALID_CONFIG));
        }
    };
    let read = heatctl::balance::read_history(from)?;
    if read.garbled_lines > 0 {
        eprintln!(
            "heatctl balance: {} garbled line(s) skipped; the first: {}",
            read.garbled_lines,
            read.first_garbled.as_deref().unwrap_or("")
        );
    }
    let advice = heatctl::balance::advise(&read, &loaded.config);
    let text = match format {
        ReportFormat::Md => heatctl::balance::report::markdown(&advice, &loaded.config.site.name),
        ReportFormat::Csv => heatctl::balance::report::csv(&advice),
    };
    match out {
        Some(f) => {
            std::fs::write(f, &text)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", f.display()))?;
            eprintln!("wrote {}", f.display());
        }
        None => print!("{text}"),
    }
    if let Some(why) = &advice.refused {
        eprintln!("heatctl balance: no advice: {why}");
        return Ok(ExitCode::from(EXIT_NO_ADVICE));
    }
    Ok(ExitCode::SUCCESS)
}

/// `heatctl fleet`: every station on a broker.
fn fleet(opts: heatctl::fleet::FleetOptions) -> anyhow::Result<ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(heatctl::fleet::run(opts))?;
    Ok(ExitCode::SUCCESS)
}

/// `heatctl demo`: the simulated plant and heatctl in this process.
#[cfg(feature = "demo")]
fn demo(
    speed: f64,
    hours: Option<f64>,
    platform: Option<String>,
    web: Option<std::net::SocketAddr>,
    web_token: Option<String>,
) -> anyhow::Result<ExitCode> {
    let opts = heatctl::demo::DemoOptions {
        speed,
        hours,
        platform,
        web,
        web_token,
    };
    if let Err(message) = opts.validate() {
        eprintln!("heatctl demo: {message}");
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(heatctl::demo::run(opts))?;
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own status; the runtime's routine log lines would drown it.
    let default_level = match cli.command {
        #[cfg(feature = "demo")]
        Command::Demo { .. } => "warn",
        Command::Fleet { .. } => "warn",
        _ => "info",
    };
    init_logs(cli.log_format, default_level);
    let result = match cli.command {
        Command::Check { config } => Ok(check(&config)),
        Command::Curve {
            config,
            svg,
            step_k,
        } => curve(&config, svg.as_deref(), step_k),
        Command::Balance {
            config,
            from,
            format,
            out,
        } => balance(&config, &from, format, out.as_deref()),
        Command::ScadaMap => {
            print!("{}", heatctl::scada::map::markdown());
            Ok(ExitCode::SUCCESS)
        }
        Command::PlatformSchema { json } => {
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&heatctl::platform::payload::json_schema())
                        .unwrap_or_default()
                );
            } else {
                print!("{}", heatctl::platform::payload::schema_markdown());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::ConfigRef => {
            print!("{}", heatctl::config::reference::markdown());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run {
            config,
            dry_run,
            clock_speed,
            state_file,
            state_dir,
        } => run(
            &config,
            dry_run,
            clock_speed,
            state_file.as_deref(),
            state_dir.as_deref(),
        ),
        Command::Fleet {
            broker,
            prefix,
            username,
            password_file,
            ca_file,
            once,
            wait_s,
            json,
        } => fleet(heatctl::fleet::FleetOptions {
            broker,
            prefix,
            username,
            password_file,
            ca_file,
            once,
            wait_s,
            json,
        }),
        #[cfg(feature = "demo")]
        Command::Demo {
            speed,
            hours,
            platform,
            web,
            web_token,
        } => demo(speed, hours, platform, web, web_token),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("heatctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}
