//! `[schedule]`: setback periods and boost; days and times are typed and parsed once, at load.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::check::{Bound, Checker, Rules, bounds};

/// A day a setback period applies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Day {
    /// Monday.
    Mon,
    /// Tuesday.
    Tue,
    /// Wednesday.
    Wed,
    /// Thursday.
    Thu,
    /// Friday.
    Fri,
    /// Saturday.
    Sat,
    /// Sunday.
    Sun,
    /// Every day.
    All,
}

impl Day {
    /// Every value, Monday first, `All` last.
    pub const ALL: [Day; 8] = [
        Day::Mon,
        Day::Tue,
        Day::Wed,
        Day::Thu,
        Day::Fri,
        Day::Sat,
        Day::Sun,
        Day::All,
    ];

    /// Its name in configuration files.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Day::Mon => "mon",
            Day::Tue => "tue",
            Day::Wed => "wed",
            Day::Thu => "thu",
            Day::Fri => "fri",
            Day::Sat => "sat",
            Day::Sun => "sun",
            Day::All => "all",
        }
    }

    /// Whether it includes the weekday `weekday` (0 = Monday .. 6 = Sunday).
    #[must_use]
    pub fn includes(self, weekday: usize) -> bool {
        self == Day::All || self as usize == weekday
    }
}

impl Serialize for Day {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Day {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Day::ALL
            .into_iter()
            .find(|day| day.name() == text)
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "unknown day {text:?}: use mon, tue, wed, thu, fri, sat, sun or all"
                ))
            })
    }
}

/// A local time of day, to the minute ("HH:MM" in configuration files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay {
    minute_of_day: u16,
}

impl TimeOfDay {
    /// Parse "HH:MM" (00:00 to 23:59).
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let (h, m) = text.split_once(':')?;
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60 && text.len() == 5).then_some(Self {
            minute_of_day: h * 60 + m,
        })
    }

    /// Minutes after midnight, 0..1440.
    #[must_use]
    pub fn minute_of_day(self) -> u32 {
        u32::from(self.minute_of_day)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}",
            self.minute_of_day / 60,
            self.minute_of_day % 60
        )
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        TimeOfDay::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a time HH:MM")))
    }
}

/// A setback period in local time.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SetbackPeriod {
    /// Days it applies: any of "mon","tue","wed","thu","fri","sat","sun" or "all".
    pub days: Vec<Day>,
    /// Start, local time "HH:MM".
    pub start: TimeOfDay,
    /// End, local time "HH:MM" (may be past midnight: "22:00" to "05:00").
    pub end: TimeOfDay,
}

/// Schedules: setback lowers the setpoint in given periods (offices, schools, public buildings),
/// weakened when it is very cold; a boost follows each setback to recover the building.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Schedule {
    /// Whether the schedule is used.
    pub enabled: bool,
    /// Setpoint reduction during setback, K.
    pub setback_k: f64,
    /// Setback periods.
    pub periods: Vec<SetbackPeriod>,
    /// At and above this damped outdoor temperature setback applies in full, °C.
    pub full_setback_above_c: f64,
    /// At and below this damped outdoor temperature there is no setback, °C (linear between).
    pub no_setback_below_c: f64,
    /// Setpoint raise after a setback ends, K.
    pub boost_k: f64,
    /// How long the boost lasts, seconds.
    pub boost_s: f64,
}
impl Default for Schedule {
    fn default() -> Self {
        Self {
            enabled: false,
            setback_k: 5.0,
            periods: Vec::new(),
            full_setback_above_c: 0.0,
            no_setback_below_c: -12.0,
            boost_k: 5.0,
            boost_s: 3600.0,
        }
    }
}

impl Rules for SetbackPeriod {
    const ALLOWED: &'static [(&'static str, &'static str)] = &[("end", "not equal to start")];
}

impl Rules for Schedule {
    const BOUNDS: &'static [Bound<Self>] = bounds!(Schedule {
        setback_k: 0.0..=30.0,
        boost_k: 0.0..=30.0,
        boost_s: 0.0..=86_400.0,
    });
    const ALLOWED: &'static [(&'static str, &'static str)] = &[
        ("no_setback_below_c", "below full_setback_above_c"),
        ("periods", "at least one when enabled"),
    ];
}

impl Schedule {
    pub(crate) fn check(&self, k: &mut Checker) {
        let s = self;
        k.bounds("schedule", s);
        k.below(
            "schedule.no_setback_below_c",
            s.no_setback_below_c,
            "schedule.full_setback_above_c",
            s.full_setback_above_c,
        );
        if s.enabled && s.periods.is_empty() {
            k.fail(
                "schedule.periods",
                "an enabled schedule needs at least one setback period",
            );
        }
        for (i, p) in s.periods.iter().enumerate() {
            if p.start == p.end {
                k.fail(
                    format!("schedule.periods[{i}].end"),
                    "a period must not start and end at the same time",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_times_parse_once_and_print_back() {
        let p: SetbackPeriod =
            toml::from_str("days = [\"mon\", \"all\"]\nstart = \"22:00\"\nend = \"05:30\"\n")
                .expect("a period");
        assert_eq!(p.days, vec![Day::Mon, Day::All]);
        assert_eq!(p.start.minute_of_day(), 22 * 60);
        assert_eq!(p.end.to_string(), "05:30");
        assert!(Day::Sun.includes(6) && !Day::Sun.includes(0) && Day::All.includes(3));
        let back = toml::to_string(&p).expect("serialises");
        assert_eq!(toml::from_str::<SetbackPeriod>(&back).expect("parses"), p);
        for bad in ["24:00", "7:00", "12:60", "noon"] {
            assert_eq!(TimeOfDay::parse(bad), None, "{bad}");
        }
        let err = toml::from_str::<SetbackPeriod>(
            "days = [\"someday\"]\nstart = \"22:00\"\nend = \"05:00\"\n",
        )
        .expect_err("unknown day");
        assert!(err.to_string().contains("unknown day \"someday\""), "{err}");
    }
}
