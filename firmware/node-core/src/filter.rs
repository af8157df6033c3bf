//! Spike rejection, then smoothing, in integer milli-units.
//!
//! A raw sample that jumps more than `spike_limit` away from the last accepted one is held
//! back once. If the next sample confirms the new level (lies within `spike_limit` of the held
//! one), the step is real: the average restarts at the new level. Otherwise the held sample
//! was a single spike and is dropped. Accepted samples feed a moving average over the last
//! [`WINDOW`] samples, which reaches a constant input exactly after [`WINDOW`] samples.

/// Length of the moving average.
pub const WINDOW: usize = 4;

/// What the filter did with a sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Accepted into the average.
    Accepted,
    /// Held back as a possible spike.
    Rejected,
}

/// Spike rejection plus moving average.
#[derive(Debug, Clone)]
pub struct SpikeFilter {
    spike_limit: i32,
    window: [i32; WINDOW],
    filled: usize,
    next: usize,
    last_accepted: Option<i32>,
    held: Option<i32>,
}

impl SpikeFilter {
    /// A filter treating jumps larger than `spike_limit` (milli-units) as suspect.
    #[must_use]
    pub const fn new(spike_limit: i32) -> Self {
        Self {
            spike_limit,
            window: [0; WINDOW],
            filled: 0,
            next: 0,
            last_accepted: None,
            held: None,
        }
    }

    /// Forgets all history (after a sensor fault).
    pub fn reset(&mut self) {
        *self = Self::new(self.spike_limit);
    }

    /// Feeds one raw sample.
    pub fn push(&mut self, sample: i32) -> Verdict {
        let Some(last) = self.last_accepted else {
            self.accept(sample);
            return Verdict::Accepted;
        };
        if sample.abs_diff(last) <= self.spike_limit.unsigned_abs() {
            self.held = None;
            self.accept(sample);
            return Verdict::Accepted;
        }
        match self.held {
            Some(held) if sample.abs_diff(held) <= self.spike_limit.unsigned_abs() => {
                // Two samples agree on the new level: a real step.
                let limit = self.spike_limit;
                *self = Self::new(limit);
                self.accept(held);
                self.accept(sample);
                Verdict::Accepted
            }
            _ => {
                self.held = Some(sample);
                Verdict::Rejected
            }
        }
    }

    fn accept(&mut self, sample: i32) {
        self.window[self.next] = sample;
        self.next = (self.next + 1) % WINDOW;
        self.filled = (self.filled + 1).min(WINDOW);
        self.last_accepted = Some(sample);
    }

    /// The smoothed value, `None` before the first accepted sample.
    #[must_use]
    pub fn value(&self) -> Option<i32> {
        if self.filled == 0 {
            return None;
        }
        let sum: i64 = self.window[..self.filled]
            .iter()
            .map(|&v| i64::from(v))
            .sum();
        // filled <= WINDOW, and the mean of i32 values fits an i32.
        let n = i64::try_from(self.filled).unwrap_or(1);
        i32::try_from(div_round(sum, n)).ok()
    }
}

/// Integer division rounding half away from zero (`d > 0`).
#[must_use]
pub fn div_round(n: i64, d: i64) -> i64 {
    if n >= 0 {
        (n + d / 2) / d
    } else {
        (n - d / 2) / d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_exactly_after_a_window() {
        let mut f = SpikeFilter::new(2_000);
        assert_eq!(f.value(), None);
        for v in [20_000, 20_100, 20_200, 20_300] {
            assert_eq!(f.push(v), Verdict::Accepted);
        }
        assert_eq!(f.value(), Some(20_150));
        for _ in 0..WINDOW {
            f.push(20_500);
        }
        assert_eq!(f.value(), Some(20_500));
    }

    #[test]
    fn single_spike_is_dropped() {
        let mut f = SpikeFilter::new(2_000);
        for _ in 0..WINDOW {
            f.push(21_000);
        }
        assert_eq!(f.push(85_000), Verdict::Rejected);
        assert_eq!(f.value(), Some(21_000));
        assert_eq!(f.push(21_010), Verdict::Accepted);
        assert_eq!(f.value(), Some(21_003));
        // Two different spikes in a row do not confirm each other.
        assert_eq!(f.push(-40_000), Verdict::Rejected);
        assert_eq!(f.push(40_000), Verdict::Rejected);
        assert_eq!(f.value(), Some(21_003));
    }

    #[test]
    fn confirmed_step_restarts_the_average() {
        let mut f = SpikeFilter::new(2_000);
        for _ in 0..WINDOW {
            f.push(0);
        }
        assert_eq!(f.push(21_375), Verdict::Rejected);
        assert_eq!(f.push(21_375), Verdict::Accepted);
        assert_eq!(f.value(), Some(21_375));
        f.reset();
        assert_eq!(f.value(), None);
        assert_eq!(f.push(-5), Verdict::Accepted);
        assert_eq!(f.push(-6), Verdict::Accepted);
        assert_eq!(f.value(), Some(-6));
    }

    #[test]
    fn rounding_is_symmetric() {
        assert_eq!(div_round(5, 10), 1);
        assert_eq!(div_round(-5, 10), -1);
        assert_eq!(div_round(4, 10), 0);
        assert_eq!(div_round(-4, 10), 0);
    }
}
