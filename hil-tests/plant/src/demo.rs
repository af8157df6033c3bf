//! The plant of `heatctl demo` (scenario and built-in weather, no file read), and how its
//! time maps to the controller's clock and to a calendar.

use std::path::{Path, PathBuf};

use crate::scenario::Scenario;
use crate::weather::Weather;

/// The demo plant: four blocks of 60 flats (15 floors x 4, 90 m², newer stock), hydraulically
/// unbalanced, radiators oversized by 0-40 %, room nodes in 80 % of the homes, in Hohhot from
/// 4 January 00:00 (a week that turns from -10 °C to -20 °C daily means). It starts off the
/// controller's target: flats at 17.5 °C (structure at 18 °C) and the primary valve at 25 %.
/// The weather is replaced by the built-in series (see [`demo_scenario`]), so the constant
/// written here is never used.
pub const DEMO_SCENARIO_TOML: &str = r#"
name = "heatctl demo"
seed = 20260104

[buildings]
count = 4
floors = 15
units_per_floor = 4
apartment_area_m2 = 90.0
stock = "new"
balanced = false

[weather]
constant_outdoor_c = -10.0

[season]
start_hour_of_year = 72.0
length_days = 365.0

[start]
room_c = 17.5
mass_c = 18.0
valve1_pct = 25.0

[time]
# Plant steps of 5 simulated seconds (exact for the flats; valve, exchanger and pipes sub-step):
# at 1440x this costs a third less CPU than 1 s steps, with the same heat and comfort figures.
step_s = 5.0

[household_valves]
enabled = false

[room_nodes]
share_pct = 80.0

[modbus]
bind_ip = "127.0.0.1"
substation_io_port = 0
heat_meter_port = 0
room_gateway_base_port = 0
valve_gateway_base_port = 0
"#;

/// The Hohhot weather year the demo runs in (hourly `hour,outdoor_c,ghi_w_m2`), built in.
pub const WEATHER_CSV: &str = include_str!("../../weather/weather-hohhot-synthetic.csv");

/// Name of the built-in weather series, in messages and in the scenario.
pub const WEATHER_NAME: &str = "weather-hohhot-synthetic.csv (built in)";

/// Unix time of 1 January 2025 00:00 UTC: the demo's weather year is shown as 2025 (a common
/// year starting on a Wednesday, like the 365-day weather file).
pub const YEAR_START_UNIX_UTC_S: f64 = 1_735_689_600.0;

/// The demo scenario, validated, with the built-in weather in place of any file: no file is
/// read.
///
/// # Errors
/// The built-in scenario text is invalid (a programming error, reported with every problem).
pub fn demo_scenario() -> anyhow::Result<Scenario> {
    let mut sc = Scenario::from_toml_str(DEMO_SCENARIO_TOML, Path::new("."), None, "demo")
        .map_err(|e| anyhow::anyhow!("the built-in demo scenario is invalid: {e}"))?;
    // The constant written in the text only kept the scenario loader from looking for a file;
    // the plant gets the built-in series through `Plant::with_weather`.
    sc.weather.constant_outdoor_c = None;
    sc.weather.file = PathBuf::from(WEATHER_NAME);
    sc.weather_path = None;
    Ok(sc)
}

/// The built-in weather series.
///
/// # Errors
/// The built-in text does not parse (a programming error).
pub fn demo_weather() -> anyhow::Result<Weather> {
    Weather::from_csv_str(WEATHER_CSV, WEATHER_NAME)
        .map_err(|e| anyhow::anyhow!("the built-in weather is invalid: {e}"))
}

/// The demo plant served on free loopback ports at `speed`, and heatctl's demo configuration
/// bound to its addresses (what a benchmark or a test runs the in-process runtime against).
///
/// # Errors
/// The built-in scenario, weather or configuration is invalid, or the plant cannot be served.
pub async fn serve_demo_plant(
    speed: f64,
) -> anyhow::Result<(
    crate::serve::PlantServer,
    heatctl_core::config::LoadedConfig,
)> {
    let plant = crate::Plant::with_weather(&demo_scenario()?, demo_weather()?);
    let server = crate::serve::serve_with(plant, crate::serve::ServeOptions::at_speed(speed))
        .await
        .map_err(|e| anyhow::anyhow!("cannot serve the demo plant: {e}"))?;
    let text = {
        let shared = server.plant();
        let p = crate::serve::lock(&shared);
        crate::binding::bind_to_plant(crate::binding::DEMO_TOML, &p, server.addresses())
    };
    let loaded = heatctl_core::config::parse_with_maps(
        &text,
        Path::new("demo.toml"),
        &crate::binding::DEVICE_MAPS,
    )
    .map_err(|p| anyhow::anyhow!("the bound demo configuration is invalid: {p}"))?;
    Ok((server, loaded))
}

/// Unix time (s) of the served demo plant's present simulated time: where a scaled clock for
/// heatctl starts, with local time `utc_offset_h` ahead of UTC.
///
/// # Errors
/// The built-in scenario is invalid (a programming error).
pub fn demo_clock_start_unix_s(
    server: &crate::serve::PlantServer,
    utc_offset_h: f64,
) -> anyhow::Result<f64> {
    let start_hour_of_year = demo_scenario()?.season.start_hour_of_year;
    let now_s = crate::serve::lock(&server.plant()).time_s();
    Ok(plant_unix_s(start_hour_of_year, now_s, utc_offset_h))
}

/// Unix time (s) of the plant's simulated time `plant_time_s` for a plant whose time 0 is
/// `start_hour_of_year` local time, with local time `utc_offset_h` ahead of UTC.
#[must_use]
pub fn plant_unix_s(start_hour_of_year: f64, plant_time_s: f64, utc_offset_h: f64) -> f64 {
    YEAR_START_UNIX_UTC_S - utc_offset_h * 3600.0 + start_hour_of_year * 3600.0 + plant_time_s
}

const MONTHS: [(&str, u32); 12] = [
    ("Jan", 31),
    ("Feb", 28),
    ("Mar", 31),
    ("Apr", 30),
    ("May", 31),
    ("Jun", 30),
    ("Jul", 31),
    ("Aug", 31),
    ("Sep", 30),
    ("Oct", 31),
    ("Nov", 30),
    ("Dec", 31),
];
/// Weekdays from 1 January 2025, a Wednesday.
const WEEKDAYS: [&str; 7] = ["Wed", "Thu", "Fri", "Sat", "Sun", "Mon", "Tue"];

/// Local calendar time of an hour of the weather year, e.g. `Sat 04 Jan 06:00` (the year wraps
/// after 365 days, as the weather does).
#[must_use]
pub fn calendar(hour_of_year: f64) -> String {
    let minutes = (hour_of_year * 60.0).floor().rem_euclid(365.0 * 1440.0) as u32;
    let day = minutes / 1440;
    let (hh, mm) = ((minutes % 1440) / 60, minutes % 60);
    let mut left = day;
    let mut month = MONTHS[11];
    for m in MONTHS {
        if left < m.1 {
            month = m;
            break;
        }
        left -= m.1;
    }
    let weekday = WEEKDAYS[(day % 7) as usize];
    format!("{weekday} {:02} {} {hh:02}:{mm:02}", left + 1, month.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scenario_and_weather_need_no_file() {
        let sc = demo_scenario().unwrap();
        assert_eq!(sc.apartment_count(), 240);
        assert!(sc.weather_path.is_none() && sc.weather.constant_outdoor_c.is_none());
        let w = demo_weather().unwrap();
        assert_eq!(w.hours(), 8760);
        // The demo's week is cold: 4 to 8 January below -5 °C every hour.
        let (t_out, _) = w.at_hour(sc.season.start_hour_of_year + 48.0);
        assert!(t_out < -5.0, "{t_out}");
    }

    #[test]
    fn calendar_names_the_local_day_and_time() {
        assert_eq!(calendar(0.0), "Wed 01 Jan 00:00");
        assert_eq!(calendar(72.0 + 6.5), "Sat 04 Jan 06:30");
        assert_eq!(calendar(31.0 * 24.0), "Sat 01 Feb 00:00");
        assert_eq!(calendar(8759.99), "Wed 31 Dec 23:59");
        assert_eq!(calendar(8760.0), "Wed 01 Jan 00:00");
    }

    #[test]
    fn the_controller_clock_sees_the_plant_time_of_day() {
        // Plant time 0 is 4 January 00:00 local; 6.5 h later it is Saturday 06:30 local.
        let unix = plant_unix_s(72.0, 6.5 * 3600.0, 8.0);
        let (weekday_from_monday, minute) = heatctl_core::control::limiters::local_time(unix, 8.0);
        assert_eq!(minute, 6 * 60 + 30);
        assert_eq!(weekday_from_monday, 5, "Saturday");
    }
}
