//! `soak`: weeks of simulated operation at high speed over real Modbus (`plant-sim` and the
//! release `heatctl`), with a dead room node, a flapping room gateway and a reload a simulated
//! day; prints heatctl's memory, descriptors and log volume as a table and exits non-zero when
//! a bound fails (see `heatctl_hil::soak`).
//!
//! ```text
//! cargo build --release -p heatctl -p heatctl-plant -p heatctl-hil --bins
//! nice -n 19 target/release/soak --days 30 --speed 3000
//! ```

use std::process::ExitCode;

use clap::Parser;
use heatctl_hil::soak::{SoakOptions, run};

/// Soak heatctl against the simulated plant and check its resources.
#[derive(Parser, Debug)]
struct Args {
    /// Simulated days.
    #[arg(long, default_value_t = 30.0)]
    days: f64,
    /// Clock speed of the plant and heatctl (3000: a simulated day in 29 s of wall time).
    #[arg(long, default_value_t = 3000.0)]
    speed: f64,
    /// Simulated hours between samples.
    #[arg(long, default_value_t = 3.0)]
    sample_h: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let opts = SoakOptions {
        days: args.days,
        speed: args.speed,
        sample_h: args.sample_h,
        name: "soak".into(),
    };
    eprintln!(
        "soak: {} simulated days at {}x (about {:.0} s of wall time)",
        opts.days,
        opts.speed,
        opts.days * 86_400.0 / opts.speed
    );
    match run(&opts) {
        Ok(report) => {
            print!("{}", report.table());
            let v = report.violations();
            if v.is_empty() {
                println!("soak: every bound held");
                ExitCode::SUCCESS
            } else {
                for line in &v {
                    println!("soak: FAILED: {line}");
                }
                println!(
                    "soak: log and configuration kept in {}",
                    report.dir.display()
                );
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("soak: {e}");
            ExitCode::FAILURE
        }
    }
}
