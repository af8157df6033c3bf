//! The command line (clap derive).

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// heatctl: district-heating substation controller.
#[derive(Debug, Parser)]
#[command(name = "heatctl", version, about)]
pub(crate) struct Cli {
    /// Log format (the level comes from RUST_LOG, default info).
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
    pub(crate) log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Format of the balancing report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ReportFormat {
    /// Markdown: a table per building and a plain-language summary.
    Md,
    /// CSV: one row per riser or building.
    Csv,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the controller against the field devices.
    Run {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Poll and compute everything, log the writes it would make, write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Run the clock this many times faster than real time (accelerated test rig).
        #[arg(long, default_value_t = 1.0)]
        clock_speed: f64,
        /// Keep the slow control state (demand shift, damped outdoor temperature) in this
        /// file, so a restart resumes where the controller was (e.g. /var/lib/heatctl/state.toml).
        #[arg(long)]
        state_file: Option<PathBuf>,
        /// Keep the audit log (audit.jsonl) and the platform link's queue in this directory
        /// (default: the state file's directory; neither: the audit log is kept in memory only).
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Check a configuration: exit 0 when valid, else 2 with every problem listed.
    Check {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
    },
    /// Print the heating curve as a table, and optionally plot it as SVG.
    Curve {
        /// Configuration file.
        #[arg(long)]
        config: PathBuf,
        /// Write an SVG plot of the curve to this file.
        #[arg(long)]
        svg: Option<PathBuf>,
        /// Step of the table, K.
        #[arg(long, default_value_t = 5)]
        step_k: u8,
    },
    /// Balancing advice from the hourly room history: which risers and buildings are under- or
    /// over-supplied and the static balancing valve changes (docs/balancing.md). Exit 0 with
    /// advice, 3 when the history is too short to advise (the report says why), 1 when it
    /// cannot be read.
    Balance {
        /// Configuration file (risers, design temperatures, target).
        #[arg(long)]
        config: PathBuf,
        /// The state directory, its history/ folder, or one rooms-YYYY-MM.jsonl file.
        #[arg(long)]
        from: PathBuf,
        /// Report format.
        #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
        format: ReportFormat,
        /// Write the report to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the SCADA register map as a Markdown table.
    ScadaMap,
    /// Show every station on a broker in a live table (station, online, outdoor, supply vs
    /// setpoint, rooms P10, share of homes at or above 18 °C, alarms, last seen, backlog).
    Fleet {
        /// Broker URL: mqtt://HOST[:PORT] or mqtts://HOST[:PORT].
        #[arg(long)]
        broker: String,
        /// Topic prefix the stations publish under.
        #[arg(long, default_value = heatctl::fleet::DEFAULT_PREFIX)]
        prefix: String,
        /// User name on the broker.
        #[arg(long)]
        username: Option<String>,
        /// File whose first line is the password.
        #[arg(long, requires = "username")]
        password_file: Option<PathBuf>,
        /// CA certificates (PEM) for an mqtts:// broker.
        #[arg(long)]
        ca_file: Option<PathBuf>,
        /// Listen --wait-s seconds, print one table and exit.
        #[arg(long)]
        once: bool,
        /// How long --once listens, seconds.
        #[arg(long, default_value_t = 5.0, requires = "once")]
        wait_s: f64,
        /// JSON instead of a table (with --once: one document; else one line per second).
        #[arg(long)]
        json: bool,
    },
    /// Print the platform link's MQTT topics and payloads as Markdown (`--json`: their JSON
    /// Schema, as shipped in docs/platform.schema.json).
    PlatformSchema {
        /// Print the JSON Schema instead of Markdown.
        #[arg(long)]
        json: bool,
    },
    /// Print the configuration reference (every key, type, unit, default, allowed values and
    /// meaning) as Markdown, generated from the schema.
    ConfigRef,
    #[cfg(feature = "demo")]
    /// Run heatctl against a simulated substation in this process: the first thing to try.
    /// Needs no file and no network; the SCADA slave listens on a free loopback port.
    Demo {
        /// Simulated seconds per wall second (1440: a simulated day in a minute).
        #[arg(long, default_value_t = heatctl::demo::DEFAULT_SPEED, allow_negative_numbers = true)]
        speed: f64,
        /// Stop after this many simulated hours (default: run until Ctrl-C).
        #[arg(long, allow_negative_numbers = true)]
        hours: Option<f64>,
        /// Serve the technician's page at this address (e.g. 127.0.0.1:8080; port 0: a free
        /// one); the URL is printed.
        #[arg(long, value_name = "ADDR")]
        web: Option<std::net::SocketAddr>,
        /// Write token of the page (at least 8 characters); without it the page is read-only.
        #[arg(long, value_name = "TOKEN", requires = "web")]
        web_token: Option<String>,
        /// Publish the demo station to this MQTT broker (mqtt://host:port): watch it with
        /// `mosquitto_sub -t 'heatctl/demo/#' -v`.
        #[arg(long, value_name = "URL")]
        platform: Option<String>,
    },
}
