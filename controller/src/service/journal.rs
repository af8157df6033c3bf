//! Log lines for journald and for pipes: no colour codes unless stderr is a terminal, and under
//! journald each line starts with its syslog priority (`<3>` error, `<4>` warning, `<6>` info,
//! `<7>` debug and trace), which journald strips and records as the entry's `PRIORITY`, so
//! `journalctl -p warning -u heatctl` filters as expected. journald adds its own time stamps,
//! so none are written then.
//!
//! journald is recognised the way systemd documents it: `JOURNAL_STREAM` holds
//! `<device>:<inode>` of the stream, and it is in use only when that matches stderr (a
//! program started from a service's shell inherits the variable but not the stream).

use std::fmt;
use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The syslog priority journald records for a tracing level.
#[must_use]
pub fn syslog_priority(level: Level) -> u8 {
    match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Whether `journal_stream` (the value of `JOURNAL_STREAM`) names the stream with device `dev`
/// and inode `ino`.
#[must_use]
pub fn stream_matches(journal_stream: &str, dev: u64, ino: u64) -> bool {
    let Some((d, i)) = journal_stream.trim().split_once(':') else {
        return false;
    };
    d.parse::<u64>().ok() == Some(dev) && i.parse::<u64>().ok() == Some(ino)
}

/// Whether stderr is connected to journald (see the module documentation).
#[must_use]
pub fn stderr_is_journal() -> bool {
    let Some(value) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let meta = std::io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata());
    match meta {
        Ok(m) => stream_matches(&value.to_string_lossy(), m.dev(), m.ino()),
        Err(_) => false,
    }
}

/// An event format that writes the syslog priority prefix, then the line `inner` writes.
#[derive(Debug, Clone)]
pub struct SyslogPrefixed<F> {
    inner: F,
}

impl<F> SyslogPrefixed<F> {
    /// Prefix the lines of `inner`.
    pub fn new(inner: F) -> Self {
        Self { inner }
    }
}

impl<S, N, F> FormatEvent<S, N> for SyslogPrefixed<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(writer, "<{}>", syslog_priority(*event.metadata().level()))?;
        self.inner.format_event(ctx, writer, event)
    }
}

/// Install the process's log subscriber: to stderr, the level from `RUST_LOG`, else
/// `default_level`; human-readable lines or (`json`) one JSON object per line; colour only on
/// a terminal; under journald with priority prefixes and without time stamps.
pub fn init_logs(json: bool, default_level: &str) {
    use tracing_subscriber::fmt::format;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let journal = stderr_is_journal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A log that cannot be written (a full disk under a redirected stderr, a file-size
        // limit) loses its lines; reporting that on stderr would panic the process
        // (`eprintln!`) and stop the control loop.
        .log_internal_errors(false)
        .with_ansi(!journal && std::io::stderr().is_terminal());
    match (json, journal) {
        (false, false) => builder.init(),
        (false, true) => builder
            .event_format(SyslogPrefixed::new(
                format().without_time().with_ansi(false),
            ))
            .init(),
        (true, false) => builder.json().init(),
        (true, true) => builder
            .json()
            .event_format(SyslogPrefixed::new(format().json().without_time()))
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_are_syslog_levels() {
        assert_eq!(syslog_priority(Level::ERROR), 3);
        assert_eq!(syslog_priority(Level::WARN), 4);
        assert_eq!(syslog_priority(Level::INFO), 6);
        assert_eq!(syslog_priority(Level::DEBUG), 7);
        assert_eq!(syslog_priority(Level::TRACE), 7);
    }

    #[test]
    fn journal_stream_must_name_this_stream() {
        assert!(stream_matches("64768:1234", 64768, 1234));
        assert!(!stream_matches("64768:1235", 64768, 1234));
        assert!(!stream_matches("1:1234", 64768, 1234));
        assert!(!stream_matches("64768", 64768, 1234));
        assert!(!stream_matches("", 0, 0));
    }
}
