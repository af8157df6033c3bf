//! The season scorecard: simulate 15 Oct - 15 Apr of a scenario's substation under
//! each strategy and write `kpis.csv`, `kpis.md`, `daily.csv`, `flats.csv`, the plots and, with
//! `--variants`, `variants.csv`. `--check-aims` exits with status 1 when an aim of issue 14 is
//! not met.
//!
//! ```text
//! cargo run --release -p heatctl-hil --bin season -- \
//!     --scenario hil-tests/scenarios/default.toml \
//!     --weather hil-tests/weather/weather-chicago.csv --out target/season-chicago [--variants]
//! ```

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use heatctl::config::Config;
use heatctl_hil::season::o2pi_trials::PiStep;
use heatctl_hil::season::{
    self, B1Search, RunKind, RunResult, Setup, Strategy, Variant, matrix, plots, report, sweep,
};
use heatctl_plant::Scenario;
use indicatif::{ProgressBar, ProgressStyle};

/// Command line.
#[derive(Debug, Parser)]
#[command(
    about = "Season scorecard: heatctl against the baselines and oracles over a heating season"
)]
struct Args {
    /// Scenario file (hil-tests/scenarios/default.toml).
    #[arg(long)]
    scenario: PathBuf,
    /// Weather CSV replacing the scenario's; repeat it for several weather files (a matrix: each
    /// weather x seed in its own sub-directory, and a summary over all of them).
    #[arg(long)]
    weather: Vec<PathBuf>,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Strategies, comma-separated (B0,B1,R1,heatctl,heatctl_full,heatctl_hh,O1,O2,O2pi); by
    /// default all but O2pi.
    #[arg(long, value_delimiter = ',')]
    strategies: Option<Vec<String>>,
    /// Building seed replacing the scenario's (apartments, radiators, fouling, node placement
    /// and the fault variants' nodes are drawn from it).
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Several building seeds, comma-separated (a matrix, as with several `--weather`).
    #[arg(long, value_delimiter = ',')]
    seeds: Option<Vec<u64>>,
    /// Sweep heatctl's `[demand] target_c` (an in-memory copy of the configuration per
    /// target): `FROM:TO:STEP` (ends included) or a comma-separated list, °C. Adds B1, O2 and R1
    /// if not asked for, and writes sweep.csv and sweep.svg.
    #[arg(long)]
    sweep_target: Option<String>,
    /// Check the aims of issue 14 (item 5) after the run: print each with its figures and
    /// PASS/FAIL, and exit with status 1 if any fails or cannot be checked (its runs missing),
    /// in any weather x seed cell.
    #[arg(long)]
    check_aims: bool,
    /// Also run heatctl under the room-node fault variants (`season::Variant::ALL`).
    #[arg(long)]
    variants: bool,
    /// Also run B1+advice after B1 (B1's curve, the balancing advice of the first three weeks
    /// applied once) and B1+advice+curve (the same, the fixed curve then searched again as B1's
    /// was): both join the main table, and their gain over B1 is written to b1_advice.md.
    #[arg(long)]
    with_advice: bool,
    /// Also run heatctl_hh under the same room-node fault variants (`heatctl_hh_dead10`, ...).
    #[arg(long)]
    variants_household: bool,
    /// With `--variants` / `--variants-household`: run only these variants (their suffixes,
    /// comma-separated: dead10, lowlie5, ...), not all of them.
    #[arg(long, value_delimiter = ',')]
    only_variants: Vec<String>,
    /// Trace these apartments (indices as in flats.csv, comma-separated) in every run:
    /// `trace-<strategy>.csv` per run, with the outdoor temperature, the supply setpoint and
    /// t2 supply, each apartment's air temperature, its node's reading and its household
    /// valve's position (`season::trace`).
    #[arg(long, value_delimiter = ',')]
    trace_flats: Vec<usize>,
    /// With `--trace-flats`: the sample interval, s.
    #[arg(long, default_value_t = 600.0)]
    trace_interval_s: f64,
    /// heatctl configuration (default: config/season.toml of this source tree).
    #[arg(long)]
    config: Option<PathBuf>,
    /// heatctl_hh's configuration, the substation with a valve in every home; its variants
    /// run on it too (default: config/season-hh.toml of this source tree).
    #[arg(long)]
    config_hh: Option<PathBuf>,
    /// Control step, s.
    #[arg(long, default_value_t = season::DEFAULT_STEP_S)]
    step_s: f64,
    /// Override the season length, days (short trial runs).
    #[arg(long)]
    days: Option<f64>,
    /// Override the season start, hour of the weather year.
    #[arg(long)]
    start_hour: Option<f64>,
    /// Worker threads.
    #[arg(long, default_value_t = 2)]
    jobs: usize,
    /// B1 search: stop when the coldest apartment's P10 is this close to 18 °C, K.
    #[arg(long, default_value_t = 0.05)]
    b1_tolerance_k: f64,
    /// B1 search: most season runs, B0's included.
    #[arg(long, default_value_t = 6)]
    b1_max_runs: usize,
    /// O2: horizon over which a candidate setpoint is held and every flat must stay at 18 °C,
    /// h (the hour it is for, plus the lag).
    #[arg(long)]
    o2_horizon_h: Option<f64>,
    /// O2: the search's tolerance on the setpoint, K.
    #[arg(long)]
    o2_tolerance_k: Option<f64>,
    /// O2: the clones' step, s.
    #[arg(long)]
    o2_clone_step_s: Option<f64>,
    /// O2pi: proportional gain of the PI on the true coldest apartment, K/K.
    #[arg(long)]
    o2_kp_k_per_k: Option<f64>,
    /// O2pi: integral time, h.
    #[arg(long)]
    o2_ti_h: Option<f64>,
    /// O2pi: target of the coldest apartment, °C.
    #[arg(long)]
    o2_target_c: Option<f64>,
}

/// Which table a run's result goes to.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Group {
    Main,
    Variant,
    /// heatctl at this `[demand] target_c`.
    Sweep(f64),
}

enum Job {
    /// B0 and the B1 search, then (with `--with-advice`) B1+advice and B1+advice+curve: one
    /// sequential chain, started first.
    B1Chain {
        want_b0: bool,
        want_b1: bool,
        advice: bool,
    },
    One {
        label: String,
        kind: RunKind,
        group: Group,
        /// Index of the run's setup (0: the cell's; sweep targets have their own).
        setup: usize,
    },
}

/// The B1 chain's results: the search, and B1+advice, B1+advice+curve with their Markdown.
struct ChainDone {
    search: B1Search,
    want_b0: bool,
    want_b1: bool,
    advice: Option<(RunResult, RunResult, String)>,
}

enum Done {
    Chain(Box<ChainDone>),
    One(Box<RunResult>, Group),
}

/// CPU seconds of one season run of `kind` on the default scenario (the schedule in
/// `kpis.md`, Hohhot, 2026-11-30: O2 with its clone searches 16, heatctl_hh with 600 nodes and
/// valves 11-14). The jobs after the B1 chain are started longest first, so that the workers
/// finish together; only the order matters.
fn cost(kind: RunKind) -> u32 {
    match kind {
        RunKind::Perfect => 16,
        RunKind::Heatctl {
            household: true, ..
        } => 13,
        RunKind::HeatctlFull => 10,
        RunKind::Heatctl { .. } => 6,
        RunKind::PerfectPi
        | RunKind::PiTrial(_)
        | RunKind::ReferenceRoom
        | RunKind::Curve { .. }
        | RunKind::CurveAdvice { .. } => 5,
        RunKind::Oracle => 2,
    }
}

/// config/`name` of this source tree: from the working directory when run from the tree's
/// root, else from the crate's.
fn default_config_path(name: &str) -> PathBuf {
    let here = Path::new("config").join(name);
    if here.exists() {
        here
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../config")
            .join(name)
    }
}

impl Args {
    /// heatctl's configuration file: `--config`, else config/season.toml.
    fn config_path(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| default_config_path("season.toml"))
    }

    /// heatctl_hh's configuration file: `--config-hh`, else config/season-hh.toml.
    fn config_hh_path(&self) -> PathBuf {
        self.config_hh
            .clone()
            .unwrap_or_else(|| default_config_path("season-hh.toml"))
    }
}

/// The configuration at `path`, every problem listed with its line.
fn load_config(path: &Path) -> Result<Config> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    heatctl::config::parse_str(&text, Some(path)).map_err(|p| anyhow::anyhow!("{p}"))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let config_path = args.config_path();
    let config = load_config(&config_path)?;
    let config_hh_path = args.config_hh_path();
    let config_hh = load_config(&config_hh_path)?;
    let targets = args
        .sweep_target
        .as_deref()
        .map(sweep::parse_targets)
        .transpose()?;
    let weathers: Vec<Option<PathBuf>> = if args.weather.is_empty() {
        vec![None]
    } else {
        args.weather.iter().cloned().map(Some).collect()
    };
    let seeds: Vec<Option<u64>> = match &args.seeds {
        Some(v) if v.is_empty() => bail!("--seeds: no seed given"),
        Some(v) => v.iter().copied().map(Some).collect(),
        None => vec![args.seed],
    };
    let unknown: Vec<&str> = args
        .only_variants
        .iter()
        .map(String::as_str)
        .filter(|o| !Variant::ALL.iter().any(|v| v.suffix() == *o))
        .collect();
    if !unknown.is_empty() {
        let known: Vec<&str> = Variant::ALL.iter().map(|v| v.suffix()).collect();
        bail!(
            "--only-variants: unknown {} (known: {})",
            unknown.join(", "),
            known.join(",")
        );
    }
    let is_matrix = weathers.len() * seeds.len() > 1;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let total_start = Instant::now();
    let mut cells = Vec::new();
    for weather in &weathers {
        for seed in &seeds {
            let mut scenario = Scenario::load(&args.scenario, weather.as_deref())
                .with_context(|| format!("loading {}", args.scenario.display()))?;
            if let Some(d) = args.days {
                scenario.season.length_days = d;
            }
            if let Some(h) = args.start_hour {
                scenario.season.start_hour_of_year = h;
            }
            if let Some(seed) = seed {
                scenario.seed = *seed;
            }
            let weather_name = scenario
                .weather_path
                .as_deref()
                .and_then(Path::file_stem)
                .map_or_else(|| "constant".into(), |f| f.to_string_lossy().into_owned());
            let dir = if is_matrix {
                format!("{weather_name}-seed{}", scenario.seed)
            } else {
                String::new()
            };
            let out = args.out.join(&dir);
            if is_matrix {
                println!(
                    "\n## {weather_name}, seed {} ({})\n",
                    scenario.seed,
                    out.display()
                );
            }
            let (runs, aims) = run_cell(
                &args,
                scenario.clone(),
                (config.clone(), config_hh.clone()),
                targets.as_deref(),
                &out,
            )?;
            cells.push(matrix::Cell {
                weather: weather_name,
                seed: scenario.seed,
                dir,
                runs,
                aims,
            });
        }
    }
    if is_matrix {
        std::fs::write(args.out.join("matrix.csv"), matrix::csv(&cells))?;
        std::fs::write(args.out.join("matrix_aims.csv"), matrix::aims_csv(&cells))?;
        let md = matrix::markdown(&cells);
        std::fs::write(
            args.out.join("matrix.md"),
            format!(
                "# Season scorecard over {} weather x seed cells\n\nScenario `{}`, heatctl \
                 configuration `{}`, heatctl_hh's `{}`; {:.1} s wall time in all.\n\n{md}",
                cells.len(),
                args.scenario.display(),
                config_path.display(),
                config_hh_path.display(),
                total_start.elapsed().as_secs_f64()
            ),
        )?;
        println!("\n# Matrix ({} cells)\n\n{md}", cells.len());
        println!(
            "wall time {:.1} s in all; wrote {}",
            total_start.elapsed().as_secs_f64(),
            args.out.join("matrix.md").display()
        );
    }
    if args.check_aims {
        let failed: Vec<&matrix::Cell> = cells
            .iter()
            .filter(|c| c.aims.iter().any(|a| !a.pass))
            .collect();
        if !failed.is_empty() {
            for c in failed {
                let (met, all) = c.aims_met();
                println!(
                    "{} seed {}: {} of {all} aims not met",
                    c.weather,
                    c.seed,
                    all - met
                );
            }
            std::process::exit(1);
        }
        println!("every aim met");
    }
    Ok(())
}

/// One weather x seed: every run, the outputs in `out`, the tables printed. Returns the runs
/// (main table, then variants) and the aims.
fn run_cell(
    args: &Args,
    scenario: Scenario,
    (config, config_hh): (Config, Config),
    targets: Option<&[f64]>,
    out: &Path,
) -> Result<(Vec<RunResult>, Vec<report::Aim>)> {
    let total_start = Instant::now();
    let mut setup = Setup::new(scenario, config);
    setup.config_hh = Some(config_hh);
    setup.step_s = args.step_s;
    if !args.trace_flats.is_empty() {
        if !(args.trace_interval_s.is_finite() && args.trace_interval_s > 0.0) {
            bail!("--trace-interval-s must be positive");
        }
        setup.trace = Some(season::trace::TraceSpec {
            flats: args.trace_flats.clone(),
            interval_s: args.trace_interval_s,
        });
    }
    if let Some(v) = args.o2_kp_k_per_k {
        setup.perfect.kp_k_per_k = v;
    }
    if let Some(v) = args.o2_ti_h {
        setup.perfect.ti_h = v;
    }
    if let Some(v) = args.o2_target_c {
        setup.perfect.target_c = v;
    }
    if let Some(v) = args.o2_horizon_h {
        if !(v.is_finite() && v > 0.0) {
            bail!("--o2-horizon-h must be positive");
        }
        setup.hindsight.horizon_h = v;
    }
    if let Some(v) = args.o2_clone_step_s {
        if !(v.is_finite() && v > 0.0) {
            bail!("--o2-clone-step-s must be positive");
        }
        setup.hindsight.clone_step_s = v;
    }
    if let Some(v) = args.o2_tolerance_k {
        if !(v.is_finite() && v > 0.0) {
            bail!("--o2-tolerance-k must be positive");
        }
        setup.hindsight.tolerance_k = v;
    }

    let mut wanted: Vec<Strategy> = match &args.strategies {
        None => Strategy::DEFAULT.to_vec(),
        Some(list) => {
            let mut v = Vec::new();
            for s in list {
                match Strategy::parse(s) {
                    Some(x) => v.push(x),
                    None => {
                        let known: Vec<&str> = Strategy::ALL.iter().map(|x| x.name()).collect();
                        let trials: Vec<&str> = PiStep::ALL.iter().map(|x| x.name()).collect();
                        bail!(
                            "unknown strategy {s:?} ({}, or an O2pi trial step: {})",
                            known.join(","),
                            trials.join(",")
                        )
                    }
                }
            }
            v
        }
    };
    if targets.is_some() {
        // The sweep's reference points.
        for s in [Strategy::B1, Strategy::O2, Strategy::R1] {
            if !wanted.contains(&s) {
                wanted.push(s);
            }
        }
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;

    // The setups: the cell's, then one per sweep target with `[demand] target_c` overridden.
    let mut setups = vec![setup];
    for &t in targets.unwrap_or_default() {
        let mut s = setups[0].clone();
        s.config.demand.target_c = t;
        setups.push(s);
    }
    let setup = &setups[0];

    // Jobs: the B1 chain first (sequential and the longest), then the others longest first.
    let mut jobs = VecDeque::new();
    let want_b0 = wanted.contains(&Strategy::B0);
    let want_b1 = wanted.contains(&Strategy::B1);
    if want_b0 || want_b1 {
        jobs.push_back(Job::B1Chain {
            want_b0,
            want_b1,
            advice: want_b1 && args.with_advice,
        });
    }
    let mut others = Vec::new();
    for s in [
        Strategy::O2,
        Strategy::HeatctlHh,
        Strategy::Heatctl,
        Strategy::HeatctlFull,
        Strategy::R1,
        Strategy::O1,
        Strategy::O2pi,
    ] {
        if !wanted.contains(&s) {
            continue;
        }
        let kind = match s {
            Strategy::O2 => RunKind::Perfect,
            Strategy::Heatctl => RunKind::Heatctl {
                household: false,
                variant: None,
            },
            Strategy::HeatctlHh => RunKind::Heatctl {
                household: true,
                variant: None,
            },
            Strategy::HeatctlFull => RunKind::HeatctlFull,
            Strategy::O2pi => RunKind::PerfectPi,
            Strategy::R1 => RunKind::ReferenceRoom,
            _ => RunKind::Oracle,
        };
        others.push(Job::One {
            label: s.name().to_string(),
            kind,
            group: Group::Main,
            setup: 0,
        });
    }
    // The experimental steps from O2pi toward heatctl (season::o2pi_trials), in the order asked.
    for s in &wanted {
        if let Strategy::PiTrial(step) = s {
            others.push(Job::One {
                label: s.name().to_string(),
                kind: RunKind::PiTrial(*step),
                group: Group::Main,
                setup: 0,
            });
        }
    }
    for (on, household, prefix) in [
        (args.variants, false, "heatctl"),
        (args.variants_household, true, "heatctl_hh"),
    ] {
        if !on {
            continue;
        }
        for v in Variant::ALL.into_iter().filter(|v| {
            args.only_variants.is_empty() || args.only_variants.iter().any(|o| o == v.suffix())
        }) {
            others.push(Job::One {
                label: format!("{prefix}_{}", v.suffix()),
                kind: RunKind::Heatctl {
                    household,
                    variant: Some(v),
                },
                group: Group::Variant,
                setup: 0,
            });
        }
    }
    for (i, &t) in targets.unwrap_or_default().iter().enumerate() {
        others.push(Job::One {
            label: sweep::label(t),
            kind: RunKind::Heatctl {
                household: false,
                variant: None,
            },
            group: Group::Sweep(t),
            setup: i + 1,
        });
    }
    // Longest first (a stable sort: equal costs keep their order).
    others.sort_by_key(|j| match j {
        Job::One { kind, .. } => std::cmp::Reverse(cost(*kind)),
        Job::B1Chain { .. } => std::cmp::Reverse(u32::MAX),
    });
    jobs.extend(others);

    let steps = setup.steps();
    let planned_runs = jobs
        .iter()
        .map(|j| match j {
            Job::B1Chain { advice, .. } => 3 + if *advice { 2 } else { 0 },
            Job::One { .. } => 1,
        })
        .sum::<u64>();
    let pb = ProgressBar::new(planned_runs * steps);
    pb.set_style(
        ProgressStyle::with_template(
            "{spinner} {msg} [{elapsed_precise}] [{bar:40}] {percent:>3}% eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_message(format!(
        "{} on {}",
        setup.scenario.name,
        setup
            .scenario
            .weather_path
            .as_deref()
            .and_then(Path::file_name)
            .map_or_else(
                || "constant weather".into(),
                |f| f.to_string_lossy().into_owned()
            )
    ));
    let progress = |n: u64| pb.inc(n);
    let b1_extra_runs = Mutex::new(0u64);
    let on_new_run = || {
        let mut k = b1_extra_runs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *k += 1;
        // The plan counted 3 runs for the search; lengthen the bar past that.
        if *k > 2 {
            pb.inc_length(steps);
        }
    };

    let queue = Mutex::new(jobs);
    let done: Mutex<Vec<Result<Done>>> = Mutex::new(Vec::new());
    let workers = args.jobs.max(1);
    let tolerance_k = args.b1_tolerance_k;
    let max_runs = args.b1_max_runs.max(1);
    let run_chain = |want_b0: bool, want_b1: bool, advice: bool| -> Result<Done> {
        let search = if want_b1 {
            season::search_b1(setup, tolerance_k, max_runs, &progress, &on_new_run)
        } else {
            season::search_b1(setup, f64::INFINITY, 1, &progress, &on_new_run)
        }?;
        let advice = if advice {
            let b1 = &search.b1;
            let advised = season::run_b1_advice(setup, b1, &progress)?;
            let (tuned, _) =
                season::run_b1_advice_tuned(setup, &advised, tolerance_k, max_runs, &progress)?;
            let mut md = season::advice_gain_markdown(b1, &[&advised, &tuned]);
            for n in &advised.notes {
                md.push_str(&format!("\n{n}\n"));
            }
            Some((advised, tuned, md))
        } else {
            None
        };
        Ok(Done::Chain(Box::new(ChainDone {
            search,
            want_b0,
            want_b1,
            advice,
        })))
    };
    let times: Mutex<Vec<JobTime>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for worker in 0..workers {
            let (queue, done, times, run_chain, setups, progress) =
                (&queue, &done, &times, &run_chain, &setups, &progress);
            scope.spawn(move || {
                loop {
                    let job = queue
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .pop_front();
                    let Some(job) = job else { break };
                    let name = match &job {
                        Job::B1Chain { advice: true, .. } => "B0, B1 search, advice".to_string(),
                        Job::B1Chain { .. } => "B0, B1 search".to_string(),
                        Job::One { label, .. } => label.clone(),
                    };
                    let (cpu0, wall0) = (thread_cpu_s(), Instant::now());
                    let r = match job {
                        Job::B1Chain {
                            want_b0,
                            want_b1,
                            advice,
                        } => run_chain(want_b0, want_b1, advice),
                        Job::One {
                            label,
                            kind,
                            group,
                            setup,
                        } => season::run(&setups[setup], &label, kind, progress)
                            .map(|r| Done::One(Box::new(r), group)),
                    };
                    times
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(JobTime {
                            worker,
                            name,
                            cpu_s: thread_cpu_s().zip(cpu0).map(|(b, a)| b - a),
                            wall_s: wall0.elapsed().as_secs_f64(),
                        });
                    done.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(r);
                }
            });
        }
    });
    pb.finish_and_clear();

    let mut main_runs: Vec<RunResult> = Vec::new();
    let mut variant_runs: Vec<RunResult> = Vec::new();
    let mut sweep_runs: Vec<(f64, RunResult)> = Vec::new();
    let mut search: Option<B1Search> = None;
    let mut advice: Option<(RunResult, RunResult, String)> = None;
    for d in done
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        match d? {
            Done::One(r, Group::Main) => main_runs.push(*r),
            Done::One(r, Group::Variant) => variant_runs.push(*r),
            Done::One(r, Group::Sweep(t)) => sweep_runs.push((t, *r)),
            Done::Chain(c) => {
                let c = *c;
                if c.want_b0 {
                    main_runs.push(c.search.b0.clone());
                }
                if c.want_b1 {
                    let mut b1 = c.search.b1.clone();
                    // B1's wall time is the whole search (hindsight costs season runs).
                    b1.wall_s = c.search.wall_s;
                    main_runs.push(b1);
                }
                search = Some(c.search);
                advice = c.advice;
            }
        }
    }
    let order = |label: &str| {
        Strategy::ALL
            .iter()
            .position(|s| s.name() == label)
            .unwrap_or(usize::MAX)
    };
    main_runs.sort_by_key(|r| order(&r.label));
    variant_runs.sort_by_key(|r| {
        (
            r.label.starts_with("heatctl_hh"),
            Variant::ALL
                .iter()
                .position(|v| r.label.ends_with(v.suffix()))
                .unwrap_or(usize::MAX),
        )
    });
    sweep_runs.sort_by(|a, b| a.0.total_cmp(&b.0));

    let mut advice_md = None;
    if let Some((advised, tuned, md)) = advice
        && let Some(b1_at) = main_runs.iter().position(|r| r.label == "B1")
    {
        std::fs::write(out.join("b1_advice.md"), &md)?;
        advice_md = Some(md);
        main_runs.insert(b1_at + 1, tuned);
        main_runs.insert(b1_at + 1, advised);
    }
    let total_wall_s = total_start.elapsed().as_secs_f64();
    let schedule = schedule_markdown(
        &times
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
        workers,
    );
    write_outputs(
        args,
        out,
        setup,
        &main_runs,
        &variant_runs,
        search.as_ref(),
        total_wall_s,
    )?;
    {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(out.join("kpis.md"))?;
        write!(f, "{schedule}")?;
    }
    if !sweep_runs.is_empty() {
        write_sweep(out, setup, &main_runs, &sweep_runs)?;
    }
    if let Some(md) = advice_md {
        println!("{md}");
    }
    print!("{}", report::markdown_table(&main_runs));
    if !variant_runs.is_empty() {
        println!();
        print!(
            "{}",
            report::markdown_table(&variant_table(&main_runs, &variant_runs))
        );
    }
    let aims = report::aims(&main_runs, &variant_runs);
    let capture = report::capture_markdown(&main_runs);
    if !capture.is_empty() {
        println!("\ncapture (B1 - strategy) / (B1 - O2):\n\n{capture}");
    }
    println!("\nwall time {total_wall_s:.1} s; wrote {}", out.display());
    if let Some(line) = schedule.lines().find(|l| l.starts_with("Workers' CPU")) {
        println!("{line}");
    }
    if args.check_aims {
        println!("\naims (issue 14, item 5):\n");
        print!("{}", report::aims_markdown(&aims));
        let failed = aims.iter().filter(|a| !a.pass).count();
        if failed > 0 {
            println!("\n{failed} of {} aims not met", aims.len());
        } else {
            println!("\nevery aim met");
        }
    }
    let mut runs = main_runs;
    runs.extend(variant_runs);
    Ok((runs, aims))
}

/// One job of the worker pool: which worker ran it, its CPU and wall time.
struct JobTime {
    worker: usize,
    name: String,
    cpu_s: Option<f64>,
    wall_s: f64,
}

/// CPU time of the calling thread, s (user + system, from /proc/thread-self/stat; None where
/// that cannot be read).
fn thread_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name in parentheses: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok());
    // Linux reports them in USER_HZ, 100 per second on every architecture it exposes to /proc.
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// The pool's schedule for `kpis.md`: each worker's jobs in order with their CPU and wall time,
/// and each worker's CPU total: the largest is the cell's wall time on idle cores.
fn schedule_markdown(times: &[JobTime], workers: usize) -> String {
    let mut s = String::from("\n## Schedule (the worker pool)\n\n");
    let totals: Vec<Option<f64>> = (0..workers)
        .map(|w| {
            times
                .iter()
                .filter(|t| t.worker == w)
                .map(|t| t.cpu_s)
                .sum::<Option<f64>>()
        })
        .collect();
    if totals.iter().all(Option::is_some) {
        let v: Vec<f64> = totals.iter().flatten().copied().collect();
        let _ = writeln!(
            s,
            "Workers' CPU s: {} (the largest, {:.1} s, is the wall time on {workers} idle \
             cores; sum {:.1} s).\n",
            v.iter()
                .map(|c| format!("{c:.1}"))
                .collect::<Vec<_>>()
                .join(", "),
            v.iter().copied().fold(0.0, f64::max),
            v.iter().sum::<f64>()
        );
    }
    let _ = writeln!(s, "| worker | job | CPU s | wall s |\n|---:|---|---:|---:|");
    for w in 0..workers {
        for t in times.iter().filter(|t| t.worker == w) {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {:.1} |",
                w + 1,
                t.name,
                t.cpu_s.map_or_else(|| "n/a".into(), |c| format!("{c:.1}")),
                t.wall_s
            );
        }
    }
    s
}

/// `sweep.csv`, `sweep.svg` and `sweep.md`: heatctl at each target against B1, O2 and R1.
fn write_sweep(
    out: &Path,
    setup: &Setup,
    main_runs: &[RunResult],
    sweep_runs: &[(f64, RunResult)],
) -> Result<()> {
    let points: Vec<(f64, &RunResult)> = sweep_runs.iter().map(|(t, r)| (*t, r)).collect();
    let refs: Vec<&RunResult> = ["B1", "O2", "R1"]
        .iter()
        .filter_map(|l| find(main_runs, l))
        .collect();
    let csv = sweep::csv(&points, &refs, find(main_runs, "B1"), find(main_runs, "O2"));
    std::fs::write(out.join("sweep.csv"), &csv)?;
    let title = format!(
        "{}, {}, seed {}: heatctl's [demand] target_c swept",
        setup.scenario.name,
        setup
            .scenario
            .weather_path
            .as_deref()
            .and_then(Path::file_stem)
            .map_or_else(
                || "constant weather".into(),
                |f| f.to_string_lossy().into_owned()
            ),
        setup.scenario.seed
    );
    sweep::svg(&out.join("sweep.svg"), &points, &refs, &title)?;
    let mut md = format!("# {title}\n\n");
    let _ = writeln!(
        md,
        "Energy against the worst flat's K·h below 18 °C, [sweep.svg](sweep.svg); capture = \
         (B1 - run) / (B1 - O2).\n\n| run | target °C | energy kWh/m² | worst K·h | capture |\n|---|---:|---:|---:|---:|"
    );
    for line in csv.lines().skip(1) {
        let _ = writeln!(
            md,
            "| {} |",
            line.split(',').collect::<Vec<_>>().join(" | ")
        );
    }
    std::fs::write(out.join("sweep.md"), &md)?;
    println!("{md}");
    Ok(())
}

/// The rows of the variants table: heatctl and its variants, then heatctl_hh and its variants.
fn variant_table(runs: &[RunResult], variants: &[RunResult]) -> Vec<RunResult> {
    let mut v = Vec::new();
    for (base, hh) in [("heatctl", false), ("heatctl_hh", true)] {
        let mine: Vec<&RunResult> = variants
            .iter()
            .filter(|r| r.label.starts_with("heatctl_hh") == hh)
            .collect();
        if mine.is_empty() {
            continue;
        }
        v.extend(find(runs, base).cloned());
        v.extend(mine.into_iter().cloned());
    }
    v
}

fn find<'a>(runs: &'a [RunResult], label: &str) -> Option<&'a RunResult> {
    runs.iter().find(|r| r.label == label)
}

fn write_outputs(
    args: &Args,
    out: &Path,
    setup: &Setup,
    runs: &[RunResult],
    variants: &[RunResult],
    search: Option<&B1Search>,
    total_wall_s: f64,
) -> Result<()> {
    std::fs::write(out.join("kpis.csv"), report::csv(runs))?;
    let vruns = variant_table(runs, variants);
    if !vruns.is_empty() {
        std::fs::write(out.join("variants.csv"), report::variants_csv(&vruns))?;
    }
    let all: Vec<RunResult> = runs.iter().chain(variants).cloned().collect();
    std::fs::write(out.join("flats.csv"), report::flats_csv(&all))?;
    for r in &all {
        if let Some(t) = &r.trace {
            std::fs::write(out.join(format!("trace-{}.csv", r.label)), t.csv())?;
        }
    }
    let mut daily = String::from(
        "strategy,day,t_out_c,room_min_c,room_p10_c,room_median_c,room_p90_c,setpoint_c,t2_supply_c,cumulative_kwh_m2\n",
    );
    for r in &all {
        for d in &r.days {
            let _ = writeln!(
                daily,
                "{},{},{:.2},{:.2},{:.2},{:.2},{:.2},{},{:.2},{:.3}",
                r.label,
                d.day,
                d.t_out_c,
                d.room_min_c,
                d.room_p10_c,
                d.room_median_c,
                d.room_p90_c,
                if d.setpoint_c.is_finite() {
                    format!("{:.2}", d.setpoint_c)
                } else {
                    String::new()
                },
                d.t2_supply_c,
                d.cumulative_kwh_m2
            );
        }
    }
    std::fs::write(out.join("daily.csv"), daily)?;
    plots::room_temperatures(&out.join("rooms.svg"), runs)?;
    plots::supply_vs_outdoor(&out.join("supply_vs_outdoor.svg"), runs)?;
    plots::cumulative_heat(&out.join("cumulative_heat.svg"), runs)?;

    let sc = &setup.scenario;
    let mut md = String::new();
    let _ = writeln!(md, "# Season scorecard: {}\n", sc.name);
    let _ = writeln!(
        md,
        "Scenario `{}` ({} apartments in {} buildings, seed {}), weather `{}`, season from hour {} \
         for {} days, control step {} s, heatctl configuration `{}`, heatctl_hh's `{}`. Whole \
         scorecard: {:.1} s wall time.\n",
        args.scenario.display(),
        sc.apartment_count(),
        sc.buildings.count,
        sc.seed,
        sc.weather_path
            .as_deref()
            .map_or_else(|| "constant".into(), |p| p.display().to_string()),
        sc.season.start_hour_of_year,
        sc.season.length_days,
        setup.step_s,
        args.config_path().display(),
        args.config_hh_path().display(),
        total_wall_s
    );
    let _ = writeln!(md, "## KPIs\n");
    md.push_str(&report::markdown_table(runs));
    let capture = report::capture_markdown(runs);
    if !capture.is_empty() {
        let _ = writeln!(md, "\n## Capture: (B1 - strategy) / (B1 - O2)\n");
        md.push_str(&capture);
    }
    let _ = writeln!(md, "\n## Aims (issue 14, item 5)\n");
    md.push_str(&report::aims_markdown(&report::aims(runs, variants)));
    if !vruns.is_empty() {
        let _ = writeln!(md, "\n## Robustness variants (heatctl)\n");
        md.push_str(&report::markdown_table(&vruns));
        let naming = report::naming_markdown(&vruns);
        if !naming.is_empty() {
            let _ = writeln!(
                md,
                "\nThe variants' faulty nodes and the suspect-node alarm (code {}: a node is named \
                 while the alarm is raised and the controller's verdict on it is not \"used\"; \
                 `id@hours` named since, to the end; `@-` not named at the end; `/droppedN` N \
                 earlier runs of naming ended):\n",
                season::suspects::SUSPECT_NODES_ALARM.number()
            );
            md.push_str(&naming);
        }
    }
    let _ = writeln!(md, "\n## Supporting figures\n");
    md.push_str(&report::markdown_extra(&all));
    if let Some(s) = search {
        let _ = writeln!(
            md,
            "\n## B1 search (coldest apartment's P10 to 18 °C)\n\n{} season runs, {:.1} s:\n",
            s.points.len(),
            s.wall_s
        );
        for p in &s.points {
            let _ = writeln!(
                md,
                "- shift {:+.3} K -> coldest P10 {:.3} °C",
                p.shift_k, p.coldest_p10_c
            );
        }
        if let Some(k) = season::curve_shift_k(&s.b1) {
            let _ = writeln!(md, "\nB1 = design curve {k:+.3} K.");
        }
    }
    let notes: Vec<&String> = all.iter().flat_map(|r| r.notes.iter()).collect();
    if !notes.is_empty() {
        let _ = writeln!(md, "\n## Notes\n");
        for n in notes {
            let _ = writeln!(md, "- {n}");
        }
    }
    let _ = writeln!(
        md,
        "\n## Plots\n\n- [rooms.svg](rooms.svg): daily P10 / median / P90 room temperature per strategy\n\
         - [supply_vs_outdoor.svg](supply_vs_outdoor.svg): setpoint and secondary supply against outdoor temperature\n\
         - [cumulative_heat.svg](cumulative_heat.svg): cumulative heat\n\n\
         Definitions: hil-tests/SEASON.md."
    );
    std::fs::write(out.join("kpis.md"), md)?;
    Ok(())
}
