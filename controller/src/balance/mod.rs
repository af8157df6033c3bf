//! Balancing advice: heatctl keeps an hourly history of the room nodes (the recorder, a face
//! beside the control cycle), estimates from a few weeks of it which risers and buildings are
//! under- or over-supplied relative to their need, and recommends static balancing valve
//! changes (`heatctl balance`, the page's `/api/balance`). Method and assumptions:
//! docs/balancing.md.

pub mod emitter;
pub mod estimate;
pub mod record;
pub mod recorder;
pub mod report;

pub use estimate::{Advice, Confidence, GroupAdvice, KvAdvice, Settings, Verdict, estimate};
pub use record::{HourRecord, ReadHistory, RoomHour, read_history};

/// Read the history at `path` and advise with the configuration's `[history]` and risers.
///
/// # Errors
/// The history cannot be read at all (garbled lines are skipped and counted in the advice).
pub fn advise_from(
    path: &std::path::Path,
    config: &crate::config::Config,
) -> Result<Advice, record::HistoryError> {
    let read = read_history(path)?;
    Ok(advise(&read, config))
}

/// Advise from history already read.
#[must_use]
pub fn advise(read: &ReadHistory, config: &crate::config::Config) -> Advice {
    let h = &config.history;
    let settings = Settings::of(h, config.curve.design.as_ref());
    let mut advice = estimate(&read.hours, &settings, &|id: &str| {
        h.riser_of(id).map(str::to_owned)
    });
    advice.garbled_lines = read.garbled_lines;
    advice
}
