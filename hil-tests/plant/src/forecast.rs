//! A simulated outdoor-temperature forecast service, as a utility's platform would publish it:
//! every hour a new forecast of the temperature `lead_h` hours ahead, with an error that is
//! realistic rather than zero. The error is a first-order autoregressive series (errors of
//! successive forecast runs are correlated, as real ones are: a model that misses a front misses
//! it for hours), drawn from the scenario's seed on its own stream, so every strategy of a season
//! sees the same forecast.
//!
//! Figures: the root-mean-square error of operational 2 m temperature forecasts a few hours to a
//! day ahead is about 1-2 K; the default 1.5 K with a 12 h correlation time sits in that range.

use rand_chacha::ChaCha8Rng;

use crate::plant::{Plant, gauss, seed_stream};

/// Seed stream of the forecast error (the plant's own streams are 1-3).
const FORECAST_STREAM: u64 = 11;

/// The forecast service of one season run.
#[derive(Debug, Clone)]
pub struct ForecastService {
    lead_h: f64,
    error_sd_k: f64,
    rho: f64,
    rng: ChaCha8Rng,
    /// Hour index (since the scenario start) of the last forecast issued.
    issued_hour: Option<i64>,
    error_k: f64,
    value_c: f64,
}

impl ForecastService {
    /// A service forecasting `lead_h` hours ahead with an error of standard deviation
    /// `error_sd_k` whose correlation between forecast runs decays with `correlation_h`.
    #[must_use]
    pub fn new(seed: u64, lead_h: f64, error_sd_k: f64, correlation_h: f64) -> Self {
        let mut rng = seed_stream(seed, FORECAST_STREAM);
        let error_k = error_sd_k * gauss(&mut rng);
        Self {
            lead_h,
            error_sd_k,
            rho: (-1.0 / correlation_h.max(1e-3)).exp(),
            rng,
            issued_hour: None,
            error_k,
            value_c: 0.0,
        }
    }

    /// The default service: 6 h ahead, 1.5 K error, 12 h correlation.
    #[must_use]
    pub fn default_for(seed: u64) -> Self {
        Self::new(seed, 6.0, 1.5, 12.0)
    }

    /// The forecast in force at the plant's time and its age, s: a new one is issued at every
    /// whole hour of simulated time.
    pub fn current(&mut self, plant: &Plant) -> (f64, f64) {
        let now_s = plant.time_s();
        let hour = (now_s / 3600.0).floor() as i64;
        if self.issued_hour != Some(hour) {
            if self.issued_hour.is_some() {
                self.next_error();
            }
            self.issued_hour = Some(hour);
            let issued_s = hour as f64 * 3600.0;
            self.value_c = plant.weather_outdoor_c(issued_s + self.lead_h * 3600.0) + self.error_k;
        }
        let age_s = now_s - self.issued_hour.map_or(now_s, |h| h as f64 * 3600.0);
        (self.value_c, age_s)
    }

    /// The next forecast run's error: the AR(1) step.
    fn next_error(&mut self) -> f64 {
        let innovation = (1.0 - self.rho * self.rho).sqrt() * self.error_sd_k;
        self.error_k = self.rho * self.error_k + innovation * gauss(&mut self.rng);
        self.error_k
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Scenario, Weather};
    use std::path::Path;

    #[test]
    fn a_forecast_is_issued_each_hour_for_the_lead_ahead_with_its_age() {
        // A year whose temperature is the hour number / 100, so the forecast's target is known.
        let mut csv = String::from("hour,outdoor_c,ghi_w_m2\n");
        for h in 0..8760 {
            csv.push_str(&format!("{h},{},0\n", f64::from(h) / 100.0));
        }
        let weather = Weather::from_csv_str(&csv, "ramp").unwrap();
        let text = "seed = 3\n[buildings]\ncount = 1\nfloors = 2\nunits_per_floor = 2\n\
                    [season]\nstart_hour_of_year = 1000.0\n";
        let sc = Scenario::from_toml_str(text, Path::new("."), None, "test").unwrap();
        let mut plant = Plant::with_weather(&sc, weather);
        let mut f = ForecastService::new(sc.seed, 6.0, 0.0, 12.0);
        let (v0, age0) = f.current(&plant);
        // Issued at hour 0 of the scenario for hour 6 (hour of year 1006, placed at 1005.5 +
        // 0.5 by the file's mid-hour convention): 10.055 °C, no error, age 0.
        assert!((v0 - plant.weather_outdoor_c(6.0 * 3600.0)).abs() < 1e-12);
        assert!((v0 - 10.055).abs() < 1e-9, "{v0}");
        assert_eq!(age0, 0.0);
        for _ in 0..30 {
            plant.step(60.0);
        }
        let (v30, age30) = f.current(&plant);
        assert_eq!(v30, v0, "the same forecast until the next hour");
        assert!((age30 - 1800.0).abs() < 1e-6);
        for _ in 0..30 {
            plant.step(60.0);
        }
        let (v60, age60) = f.current(&plant);
        assert!(
            (v60 - (v0 + 0.01)).abs() < 1e-9,
            "a new one an hour later: {v60}"
        );
        assert!(age60.abs() < 1e-6);
        // With an error: off the truth, but by a plausible amount.
        let mut g = ForecastService::default_for(sc.seed);
        let (e, _) = g.current(&plant);
        let truth = plant.weather_outdoor_c(plant.time_s() + 6.0 * 3600.0);
        assert!(e != truth && (e - truth).abs() < 6.0, "{e} against {truth}");
    }

    #[test]
    fn the_error_has_the_asked_spread_and_correlation() {
        // The series alone (no plant): the step the service takes each hour.
        let mut s = ForecastService::new(42, 6.0, 1.5, 12.0);
        let e: Vec<f64> = (0..20_000).map(|_| s.next_error()).collect();
        let n = e.len() as f64;
        let mean = e.iter().sum::<f64>() / n;
        let sd = (e.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        let lag1 = e
            .windows(2)
            .map(|w| (w[0] - mean) * (w[1] - mean))
            .sum::<f64>()
            / ((n - 1.0) * sd * sd);
        assert!(mean.abs() < 0.2, "mean {mean}");
        assert!((sd - 1.5).abs() < 0.15, "sd {sd}");
        assert!(
            (lag1 - (-1.0f64 / 12.0).exp()).abs() < 0.05,
            "lag-1 correlation {lag1}"
        );
    }
}
