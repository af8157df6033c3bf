//! The season scorecard: simulate 15 Oct - 15 Apr of a scenario's substation under
//! each strategy and write `kpis.csv`, `kpis.md`, `daily.csv`, the plots and, with
//! `--variants`, `variants.csv`.
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
use heatctl_hil::season::{
    self, B1Search, RunKind, RunResult, Setup, Strategy, Variant, plots, report,
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
    /// Weather CSV replacing the scenario's.
    #[arg(long)]
    weather: Option<PathBuf>,
    /// Output directory.
    #[arg(long)]
    out: PathBuf,
    /// Strategies, comma-separated (B0,B1,R1,heatctl,heatctl_hh,O1,O2); all by default.
    #[arg(long, value_delimiter = ',')]
    strategies: Option<Vec<String>>,
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
    /// heatctl configuration (default: config/season.toml of this source tree).
    #[arg(long)]
    config: Option<PathBuf>,
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
    /// O2: proportional gain of the PI on the true coldest apartment, K/K.
    #[arg(long)]
    o2_kp_k_per_k: Option<f64>,
    /// O2: integral time, h.
    #[arg(long)]
    o2_ti_h: Option<f64>,
    /// O2: target of the coldest apartment, °C.
    #[arg(long)]
    o2_target_c: Option<f64>,
}

enum Job {
    B1Search { want_b0: bool, want_b1: bool },
    One(String, RunKind),
}

enum Done {
    Search(Box<B1Search>, bool, bool),
    One(Box<RunResult>),
}

fn default_config_path() -> PathBuf {
    let here = Path::new("config/season.toml");
    if here.exists() {
        here.to_path_buf()
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/season.toml")
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let total_start = Instant::now();
    let mut scenario = Scenario::load(&args.scenario, args.weather.as_deref())
        .with_context(|| format!("loading {}", args.scenario.display()))?;
    if let Some(d) = args.days {
        scenario.season.length_days = d;
    }
    if let Some(h) = args.start_hour {
        scenario.season.start_hour_of_year = h;
    }
    let config_path = args.config.clone().unwrap_or_else(default_config_path);
    let text = std::fs::read_to_string(&config_path)
        .with_context(|| format!("reading {}", config_path.display()))?;
    let config = heatctl::config::parse_str(&text, Some(&config_path))
        .map_err(|p| anyhow::anyhow!("{p}"))?;
    let mut setup = Setup::new(scenario, config);
    setup.step_s = args.step_s;
    if let Some(v) = args.o2_kp_k_per_k {
        setup.perfect.kp_k_per_k = v;
    }
    if let Some(v) = args.o2_ti_h {
        setup.perfect.ti_h = v;
    }
    if let Some(v) = args.o2_target_c {
        setup.perfect.target_c = v;
    }

    let wanted: Vec<Strategy> = match &args.strategies {
        None => Strategy::ALL.to_vec(),
        Some(list) => {
            let mut v = Vec::new();
            for s in list {
                match Strategy::parse(s) {
                    Some(x) => v.push(x),
                    None => bail!("unknown strategy {s:?} (B0,B1,R1,heatctl,heatctl_hh,O1,O2)"),
                }
            }
            v
        }
    };
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;

    // Jobs: the B1 search first (it is sequential and the longest), then the others.
    let mut jobs = VecDeque::new();
    let want_b0 = wanted.contains(&Strategy::B0);
    let want_b1 = wanted.contains(&Strategy::B1);
    if want_b0 || want_b1 {
        jobs.push_back(Job::B1Search { want_b0, want_b1 });
    }
    for s in [
        Strategy::O2,
        Strategy::Heatctl,
        Strategy::HeatctlHh,
        Strategy::R1,
        Strategy::O1,
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
            Strategy::R1 => RunKind::ReferenceRoom,
            _ => RunKind::Oracle,
        };
        jobs.push_back(Job::One(s.name().to_string(), kind));
    }
    for (on, household, prefix) in [
        (args.variants, false, "heatctl"),
        (args.variants_household, true, "heatctl_hh"),
    ] {
        if !on {
            continue;
        }
        for v in Variant::ALL {
            jobs.push_back(Job::One(
                format!("{prefix}_{}", v.suffix()),
                RunKind::Heatctl {
                    household,
                    variant: Some(v),
                },
            ));
        }
    }
    let steps = setup.steps();
    let planned_runs = jobs
        .iter()
        .map(|j| match j {
            Job::B1Search { .. } => 3,
            Job::One(..) => 1,
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
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let job = queue
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .pop_front();
                    let Some(job) = job else { break };
                    let r = match job {
                        Job::B1Search { want_b0, want_b1 } => if want_b1 {
                            season::search_b1(
                                &setup,
                                args.b1_tolerance_k,
                                args.b1_max_runs.max(1),
                                &progress,
                                &on_new_run,
                            )
                        } else {
                            season::search_b1(&setup, f64::INFINITY, 1, &progress, &on_new_run)
                        }
                        .map(|s| Done::Search(Box::new(s), want_b0, want_b1)),
                        Job::One(label, kind) => season::run(&setup, &label, kind, &progress)
                            .map(|r| Done::One(Box::new(r))),
                    };
                    done.lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(r);
                }
            });
        }
    });
    pb.finish_and_clear();

    let mut runs: Vec<RunResult> = Vec::new();
    let mut search: Option<B1Search> = None;
    for d in done
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
    {
        match d? {
            Done::One(r) => runs.push(*r),
            Done::Search(s, want_b0, want_b1) => {
                if want_b0 {
                    runs.push(s.b0.clone());
                }
                if want_b1 {
                    let mut b1 = s.b1.clone();
                    // B1's wall time is the whole search (hindsight costs season runs).
                    b1.wall_s = s.wall_s;
                    runs.push(b1);
                }
                search = Some(*s);
            }
        }
    }
    let order = |label: &str| {
        Strategy::ALL
            .iter()
            .position(|s| s.name() == label)
            .unwrap_or(usize::MAX)
    };
    let (mut main_runs, mut variant_runs): (Vec<_>, Vec<_>) = runs
        .into_iter()
        .partition(|r| Strategy::parse(&r.label).is_some());
    main_runs.sort_by_key(|r| order(&r.label));
    variant_runs.sort_by_key(|r| {
        Variant::ALL
            .iter()
            .position(|v| r.label.ends_with(v.suffix()))
            .unwrap_or(usize::MAX)
    });

    let mut advice_md = None;
    if args.with_advice
        && let Some(b1_at) = main_runs.iter().position(|r| r.label == "B1")
    {
        let b1 = main_runs[b1_at].clone();
        let advised = season::run_b1_advice(&setup, &b1, &|_| {})?;
        let (tuned, _) = season::run_b1_advice_tuned(
            &setup,
            &advised,
            args.b1_tolerance_k,
            args.b1_max_runs.max(1),
            &|_| {},
        )?;
        let mut md = season::advice_gain_markdown(&b1, &[&advised, &tuned]);
        for n in &advised.notes {
            md.push_str(&format!("\n{n}\n"));
        }
        std::fs::write(args.out.join("b1_advice.md"), &md)?;
        advice_md = Some(md);
        main_runs.insert(b1_at + 1, tuned);
        main_runs.insert(b1_at + 1, advised);
    }
    let total_wall_s = total_start.elapsed().as_secs_f64();
    write_outputs(
        &args,
        &setup,
        &main_runs,
        &variant_runs,
        search.as_ref(),
        total_wall_s,
    )?;
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
    println!(
        "\nwall time {total_wall_s:.1} s; wrote {}",
        args.out.display()
    );
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

fn aims(runs: &[RunResult]) -> String {
    let mut s = String::new();
    let h = find(runs, "heatctl");
    let hh = find(runs, "heatctl_hh");
    let b1 = find(runs, "B1");
    let o1 = find(runs, "O1");
    let o2 = find(runs, "O2");
    let yes = |ok: bool| if ok { "met" } else { "NOT met" };
    if let (Some(h), Some(b1)) = (h, b1) {
        let d = report::energy_diff_pct(h, b1);
        let _ = writeln!(
            s,
            "- heatctl energy below B1's: {} ({:+.2} % against B1)",
            yes(d < 0.0),
            d
        );
        let _ = writeln!(
            s,
            "- heatctl tdis_worst no worse than B1's: {} ({:.1} vs {:.1} K·h)",
            yes(h.kpis.tdis_worst_kh <= b1.kpis.tdis_worst_kh + 1e-9),
            h.kpis.tdis_worst_kh,
            b1.kpis.tdis_worst_kh
        );
    }
    if let (Some(h), Some(o2)) = (h, o2) {
        let d = report::energy_diff_pct(h, o2);
        let _ = writeln!(
            s,
            "- heatctl energy within 3 % of O2: {} ({:+.2} % against O2)",
            yes(d <= 3.0),
            d
        );
    }
    if let (Some(hh), Some(o1)) = (hh, o1) {
        let d = report::energy_diff_pct(hh, o1);
        let dd = 100.0 * (hh.extra.delivered_kwh_m2 / o1.kpis.energy_kwh_m2 - 1.0);
        let _ = writeln!(
            s,
            "- heatctl_hh energy within 5 % of O1: {} ({:+.2} % against O1's ideal-heater heat; \
             heat delivered into the flats {:+.2} %, the rest is trunk pipe loss O1 does not have)",
            yes(d <= 5.0),
            d,
            dd
        );
    }
    s
}

fn write_outputs(
    args: &Args,
    setup: &Setup,
    runs: &[RunResult],
    variants: &[RunResult],
    search: Option<&B1Search>,
    total_wall_s: f64,
) -> Result<()> {
    let out = &args.out;
    std::fs::write(out.join("kpis.csv"), report::csv(runs))?;
    let vruns = variant_table(runs, variants);
    if !vruns.is_empty() {
        std::fs::write(out.join("variants.csv"), report::csv(&vruns))?;
    }
    let all: Vec<RunResult> = runs.iter().chain(variants).cloned().collect();
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
         for {} days, control step {} s, heatctl configuration `{}`. Whole scorecard: {:.1} s wall \
         time.\n",
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
        args.config
            .clone()
            .unwrap_or_else(default_config_path)
            .display(),
        total_wall_s
    );
    let _ = writeln!(md, "## KPIs\n");
    md.push_str(&report::markdown_table(runs));
    let _ = writeln!(md, "\n## Aims\n");
    md.push_str(&aims(runs));
    if !vruns.is_empty() {
        let _ = writeln!(md, "\n## Robustness variants (heatctl)\n");
        md.push_str(&report::markdown_table(&vruns));
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
