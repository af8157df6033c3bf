//! Repeated failures in the log without flooding it: a subject (a link's connection, a
//! device's reads, a point's writes) logs one line when it starts failing, then at most one
//! line per window with a count ("failed 37 times in the last 10 min"), and one line when it
//! works again. A dead device polled every second for a month logs a few dozen lines a day,
//! not 86,400.
//!
//! The window starts at [`FAILURE_LOG_WINDOW_S`] and doubles with each summary of the same
//! outage, up to [`FAILURE_LOG_MAX_WINDOW_S`]: the first ten minutes are told in detail, a
//! device dead for a week is recalled once an hour.

use std::collections::HashMap;

/// The first summary window of a failing subject, clock seconds.
pub const FAILURE_LOG_WINDOW_S: f64 = 600.0;
/// The longest summary window, clock seconds.
pub const FAILURE_LOG_MAX_WINDOW_S: f64 = 3600.0;

/// What failed (the subject of the log lines).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FailureSubject {
    /// A link: its connection cannot be opened or is lost (a gateway down, a cable out).
    Link {
        /// The link's name.
        link: String,
    },
    /// Reading a device.
    Read {
        /// The device's name.
        device: String,
    },
    /// Writing a point of a device (write or read-back).
    Write {
        /// The device's name.
        device: String,
        /// The point's name.
        point: String,
    },
    /// Writing a file of the state directory (the state file).
    File {
        /// The file.
        path: String,
    },
}

impl std::fmt::Display for FailureSubject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FailureSubject::Link { link } => write!(f, "link {link}"),
            FailureSubject::Read { device } => write!(f, "device {device}: read"),
            FailureSubject::Write { device, point } => write!(f, "device {device}: write {point}"),
            FailureSubject::File { path } => write!(f, "file {path}: write"),
        }
    }
}

/// A line to log, decided by [`FailureLog`].
#[derive(Debug, Clone, PartialEq)]
pub enum FailureEvent {
    /// The subject failed after working (or for the first time): log at once.
    Started {
        /// Why.
        error: String,
    },
    /// The subject keeps failing: `count` more failures over the last `window_s`.
    Repeated {
        /// Failures since the previous line.
        count: u64,
        /// Clock seconds since the previous line.
        window_s: f64,
        /// The last error.
        error: String,
    },
    /// The subject works again after `failures` failures over `outage_s`.
    Recovered {
        /// Failures of the outage.
        failures: u64,
        /// Clock seconds from the first failure to the recovery.
        outage_s: f64,
    },
}

#[derive(Debug, Clone)]
struct Outage {
    since_s: f64,
    window_start_s: f64,
    window_s: f64,
    in_window: u64,
    total: u64,
}

/// The rate limiter: which subjects are failing, since when, how often.
#[derive(Debug, Clone, Default)]
pub struct FailureLog {
    outages: HashMap<FailureSubject, Outage>,
}

impl FailureLog {
    /// `subject` failed at `now_s` with `error`: the line to log, if any.
    pub fn failure(
        &mut self,
        subject: &FailureSubject,
        error: &str,
        now_s: f64,
    ) -> Option<FailureEvent> {
        let Some(o) = self.outages.get_mut(subject) else {
            self.outages.insert(
                subject.clone(),
                Outage {
                    since_s: now_s,
                    window_start_s: now_s,
                    window_s: FAILURE_LOG_WINDOW_S,
                    in_window: 0,
                    total: 1,
                },
            );
            return Some(FailureEvent::Started {
                error: error.to_owned(),
            });
        };
        o.total += 1;
        o.in_window += 1;
        // A clock stepped backwards restarts the window rather than silencing the subject.
        if now_s < o.window_start_s {
            o.window_start_s = now_s;
        }
        let elapsed_s = now_s - o.window_start_s;
        if elapsed_s < o.window_s {
            return None;
        }
        let event = FailureEvent::Repeated {
            count: o.in_window,
            window_s: elapsed_s,
            error: error.to_owned(),
        };
        o.window_start_s = now_s;
        o.in_window = 0;
        o.window_s = (o.window_s * 2.0).min(FAILURE_LOG_MAX_WINDOW_S);
        Some(event)
    }

    /// `subject` worked at `now_s`: the line to log when it was failing.
    pub fn success(&mut self, subject: &FailureSubject, now_s: f64) -> Option<FailureEvent> {
        let o = self.outages.remove(subject)?;
        Some(FailureEvent::Recovered {
            failures: o.total,
            outage_s: (now_s - o.since_s).max(0.0),
        })
    }

    /// Whether nothing is failing.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.outages.is_empty()
    }

    /// Whether `subject` is failing.
    #[must_use]
    pub fn is_failing(&self, subject: &FailureSubject) -> bool {
        self.outages.contains_key(subject)
    }

    /// Forget the subjects `keep` rejects (devices and links gone after a reload).
    pub fn retain(&mut self, mut keep: impl FnMut(&FailureSubject) -> bool) {
        self.outages.retain(|s, _| keep(s));
    }
}

/// Log `event` of `subject` (warning for failures, info for a recovery).
pub fn emit(subject: &FailureSubject, event: &FailureEvent) {
    let (link, device, point) = match subject {
        FailureSubject::File { path } => (None, None, Some(path.as_str())),
        FailureSubject::Link { link } => (Some(link.as_str()), None, None),
        FailureSubject::Read { device } => (None, Some(device.as_str()), None),
        FailureSubject::Write { device, point } => {
            (None, Some(device.as_str()), Some(point.as_str()))
        }
    };
    let link = link.unwrap_or("");
    let device = device.unwrap_or("");
    let point = point.unwrap_or("");
    match event {
        FailureEvent::Started { error } => {
            tracing::warn!(link, device, point, %error, "{subject} failed");
        }
        FailureEvent::Repeated {
            count,
            window_s,
            error,
        } => {
            tracing::warn!(
                link,
                device,
                point,
                count,
                %error,
                "{subject} failed {count} times in the last {}",
                span_text(*window_s)
            );
        }
        FailureEvent::Recovered { failures, outage_s } => {
            tracing::info!(
                link,
                device,
                point,
                failures,
                outage_s,
                "{subject} works again after {failures} failures over {}",
                span_text(*outage_s)
            );
        }
    }
}

/// "37 s", "10 min", "2.5 h".
fn span_text(s: f64) -> String {
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(d: &str) -> FailureSubject {
        FailureSubject::Read { device: d.into() }
    }

    #[test]
    fn first_failure_logged_then_counted_per_window_then_recovery() {
        let mut log = FailureLog::default();
        let s = read("room:3");
        assert_eq!(
            log.failure(&s, "timeout", 0.0),
            Some(FailureEvent::Started {
                error: "timeout".into()
            })
        );
        assert!(log.is_failing(&s));
        // One failure a second: silent inside the first 10 minutes.
        for t in 1..600 {
            assert_eq!(log.failure(&s, "timeout", f64::from(t)), None, "at {t} s");
        }
        assert_eq!(
            log.failure(&s, "timeout", 600.0),
            Some(FailureEvent::Repeated {
                count: 600,
                window_s: 600.0,
                error: "timeout".into()
            })
        );
        // The next window is twice as long.
        for t in 601..1800 {
            assert_eq!(log.failure(&s, "timeout", f64::from(t)), None, "at {t} s");
        }
        assert!(matches!(
            log.failure(&s, "timeout", 1800.0),
            Some(FailureEvent::Repeated { count: 1200, .. })
        ));
        assert_eq!(
            log.success(&s, 1900.0),
            Some(FailureEvent::Recovered {
                failures: 1801,
                outage_s: 1900.0
            })
        );
        assert!(!log.is_failing(&s));
        assert_eq!(
            log.success(&s, 1901.0),
            None,
            "a working subject logs nothing"
        );
        // A new outage starts with a line again.
        assert!(matches!(
            log.failure(&s, "refused", 2000.0),
            Some(FailureEvent::Started { .. })
        ));
    }

    #[test]
    fn a_month_of_failures_every_second_is_a_few_lines_a_day() {
        let mut log = FailureLog::default();
        let s = read("room:9");
        let day_s = 86_400;
        let lines = (0..30 * day_s)
            .filter(|&t| log.failure(&s, "timeout", f64::from(t)).is_some())
            .count();
        // 10, 20, 40 min, then hourly: at most 25 lines a day.
        assert!(lines <= 30 * 25, "{lines} lines");
        assert!(lines >= 30 * 23, "still reminded every hour: {lines} lines");
    }

    #[test]
    fn subjects_are_independent_and_a_clock_step_back_does_not_silence() {
        let mut log = FailureLog::default();
        let a = read("a");
        let w = FailureSubject::Write {
            device: "a".into(),
            point: "cmd".into(),
        };
        assert!(log.failure(&a, "timeout", 100.0).is_some());
        assert!(log.failure(&w, "exception", 100.0).is_some());
        assert!(log.success(&w, 101.0).is_some());
        assert!(log.is_failing(&a));
        // The clock steps back an hour: the window restarts there, the next summary comes
        // 10 minutes later (not an hour and 10 minutes).
        assert_eq!(log.failure(&a, "timeout", -3500.0), None);
        assert!(log.failure(&a, "timeout", -2900.0).is_some());
        log.retain(|s| *s != a);
        assert!(!log.is_failing(&a));
    }

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span_text(37.0), "37 s");
        assert_eq!(span_text(600.0), "10 min");
        assert_eq!(span_text(9000.0), "2.5 h");
    }
}
