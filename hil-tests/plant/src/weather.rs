//! Hourly weather (`hour,outdoor_c,ghi_w_m2`), linearly interpolated.

use std::path::Path;

/// Why a weather file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum WeatherError {
    /// The file could not be read.
    #[error("cannot read weather file {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A line could not be parsed.
    #[error("weather file {path}, line {line}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// An hourly weather year (or any whole number of hours), wrapping around at its end.
#[derive(Debug, Clone)]
pub struct Weather {
    outdoor_c: Vec<f64>,
    ghi_w_m2: Vec<f64>,
}

impl Weather {
    /// Constant weather (tests).
    pub fn constant(outdoor_c: f64, ghi_w_m2: f64) -> Weather {
        Weather {
            outdoor_c: vec![outdoor_c],
            ghi_w_m2: vec![ghi_w_m2],
        }
    }

    /// Read a CSV file with the header `hour,outdoor_c,ghi_w_m2`.
    pub fn from_csv_file(path: &Path) -> Result<Weather, WeatherError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| WeatherError::Io {
            path: p.clone(),
            source,
        })?;
        Weather::from_csv_str(&text, &p)
    }

    /// Parse CSV text; `name` is used in error messages.
    pub fn from_csv_str(text: &str, name: &str) -> Result<Weather, WeatherError> {
        let err = |line: usize, message: String| WeatherError::Parse {
            path: name.to_owned(),
            line,
            message,
        };
        let mut lines = text.lines().enumerate();
        let header = lines.next().map(|(_, l)| l.trim()).unwrap_or("");
        let cols: Vec<&str> = header.split(',').map(str::trim).collect();
        let find = |n: &str| cols.iter().position(|c| *c == n);
        let (Some(ih), Some(it), Some(ig)) = (find("hour"), find("outdoor_c"), find("ghi_w_m2"))
        else {
            return Err(err(
                1,
                format!("header must name hour,outdoor_c,ghi_w_m2, found `{header}`"),
            ));
        };
        let mut outdoor_c = Vec::new();
        let mut ghi_w_m2 = Vec::new();
        for (i, line) in lines {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let get = |k: usize| -> Result<f64, WeatherError> {
                f.get(k)
                    .ok_or_else(|| err(i + 1, "missing column".to_owned()))?
                    .parse::<f64>()
                    .map_err(|e| err(i + 1, e.to_string()))
            };
            let hour = get(ih)?;
            if (hour - outdoor_c.len() as f64).abs() > 1e-9 {
                return Err(err(
                    i + 1,
                    format!("expected hour {}, found {hour}", outdoor_c.len()),
                ));
            }
            outdoor_c.push(get(it)?);
            ghi_w_m2.push(get(ig)?.max(0.0));
        }
        if outdoor_c.is_empty() {
            return Err(err(2, "no data rows".to_owned()));
        }
        Ok(Weather {
            outdoor_c,
            ghi_w_m2,
        })
    }

    /// Number of hourly rows.
    pub fn hours(&self) -> usize {
        self.outdoor_c.len()
    }

    /// Outdoor temperature (°C) and global horizontal irradiation (W/m²) at `hour_of_year`
    /// (hours since the start of the file's year). Row `h` is the mean of hour [h, h+1): it is
    /// placed at h + 0.5 and interpolated linearly, wrapping around the year.
    pub fn at_hour(&self, hour_of_year: f64) -> (f64, f64) {
        let n = self.outdoor_c.len();
        if n == 1 {
            return (self.outdoor_c[0], self.ghi_w_m2[0]);
        }
        let x = (hour_of_year - 0.5).rem_euclid(n as f64);
        let i0 = (x.floor() as usize).min(n - 1);
        let i1 = (i0 + 1) % n;
        let w = x - i0 as f64;
        (
            self.outdoor_c[i0] + w * (self.outdoor_c[i1] - self.outdoor_c[i0]),
            self.ghi_w_m2[i0] + w * (self.ghi_w_m2[i1] - self.ghi_w_m2[i0]),
        )
    }
}
