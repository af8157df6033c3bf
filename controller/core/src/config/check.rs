//! What every table's check is made of: the allowed range of each numeric key (which the
//! configuration reference prints too) and a collector of problems.

use super::problems::Problem;

/// The allowed range of one numeric key of a table `T`, and how to read the key.
pub(crate) struct Bound<T> {
    /// The key in its table.
    pub(crate) key: &'static str,
    /// Smallest allowed value.
    pub(crate) min: f64,
    /// Largest allowed value.
    pub(crate) max: f64,
    /// The key's value in a table.
    pub(crate) get: fn(&T) -> f64,
}

/// The [`Bound`]s of a table's numeric keys: `bounds!(Table { key: min..=max, ... })`.
macro_rules! bounds {
    ($t:ty { $($key:ident: $min:literal ..= $max:literal),* $(,)? }) => {
        &[$($crate::config::check::Bound::<$t> {
            key: stringify!($key),
            min: $min,
            max: $max,
            get: |t: &$t| t.$key,
        }),*]
    };
}
pub(crate) use bounds;

/// A table's rules as the reference shows them: the allowed range of its numeric keys and, for
/// keys checked otherwise, what is allowed in words.
pub(crate) trait Rules: Sized + 'static {
    /// Ranges of the numeric keys.
    const BOUNDS: &'static [Bound<Self>] = &[];
    /// `(key, what is allowed)` for keys checked by other rules than a range.
    const ALLOWED: &'static [(&'static str, &'static str)] = &[];

    /// What is allowed for `key`, in words (`None`: anything of its type).
    fn allowed(key: &str) -> Option<String> {
        Self::BOUNDS
            .iter()
            .find(|b| b.key == key)
            .map(|b| format!("{} to {}", b.min, b.max))
            .or_else(|| {
                Self::ALLOWED
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, a)| (*a).to_owned())
            })
    }
}

/// Collects problems.
#[derive(Default)]
pub(crate) struct Checker {
    pub(crate) out: Vec<Problem>,
}

impl Checker {
    /// A problem at `path`.
    pub(crate) fn fail(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.out.push(Problem::at(path, message));
    }

    /// `v` must be finite and within `lo..=hi`.
    pub(crate) fn range(&mut self, path: &str, v: f64, lo: f64, hi: f64) {
        if !v.is_finite() || v < lo || v > hi {
            self.fail(path, format!("{v} is out of range: allowed {lo} to {hi}"));
        }
    }

    /// Every bounded key of the table `t` at `at` must be in its range.
    pub(crate) fn bounds<T: Rules>(&mut self, at: &str, t: &T) {
        for b in T::BOUNDS {
            self.range(&format!("{at}.{}", b.key), (b.get)(t), b.min, b.max);
        }
    }

    /// `lo` must be below `hi`.
    pub(crate) fn below(&mut self, lo_path: &str, lo: f64, hi_path: &str, hi: f64) {
        if lo >= hi {
            self.fail(lo_path, format!("{lo} must be below {hi_path} ({hi})"));
        }
    }

    /// The `what` of the points at `path` must be strictly increasing.
    pub(crate) fn increasing(&mut self, path: &str, xs: impl Iterator<Item = f64>, what: &str) {
        let mut prev: Option<f64> = None;
        for (i, x) in xs.enumerate() {
            if let Some(p) = prev
                && x <= p
            {
                self.fail(
                    format!("{path}[{i}].{what}"),
                    format!("points must be strictly increasing in {what}: {x} follows {p}"),
                );
            }
            prev = Some(x);
        }
    }
}
