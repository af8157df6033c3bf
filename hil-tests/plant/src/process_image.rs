//! heatctl's process image read straight from the plant (no Modbus): what the season scorecard
//! feeds the control core with.
//!
//! A sensor fault that makes a reading unusable (the plant's `None`: a sentinel, a flagged meter
//! value) or a non-finite value becomes an invalid sample, as the field layer would mark it.
//! Substation signals are fresh (the field polls them every few seconds); a room node's sample
//! carries its age since the node's last report.

use heatctl_core::control::{ProcessImage, Sample, Signal};

use crate::plant::{Plant, RoomNodeReading};

/// A substation reading as the field layer delivers it.
fn fresh(v: Option<f64>) -> Option<Sample> {
    Some(
        v.filter(|x| x.is_finite())
            .map_or_else(Sample::invalid, Sample::fresh),
    )
}

/// Set the substation signals of `img` from the plant's sensors now (room entries untouched).
pub fn set_substation(plant: &Plant, img: &mut ProcessImage) {
    let s = plant.sensors_substation();
    img.set(Signal::TOut, fresh(s.t_out_c));
    img.set(Signal::T1Supply, fresh(s.t1_supply_c));
    img.set(Signal::T1Return, fresh(s.t1_return_c));
    img.set(Signal::T2Supply, fresh(s.t2_supply_c));
    img.set(Signal::T2Return, fresh(s.t2_return_c));
    img.set(Signal::Power1Kw, fresh(s.heat_meter.power_kw));
    img.set(Signal::Flow1M3h, fresh(s.heat_meter.flow_m3h));
    img.set(Signal::Valve1PosPct, fresh(s.valve1_pos_pct));
    img.set(Signal::Dp2StationKpa, fresh(s.dp2_station_kpa));
    img.set(Signal::Dp2IndexKpa, fresh(s.dp2_index_kpa));
    img.set(Signal::Pump2SpeedPct, fresh(Some(s.pump2_speed_pct)));
    img.set(Signal::Pump2PowerKw, fresh(s.pump2_power_kw));
    img.set(Signal::Flow2M3h, fresh(s.flow2_m3h));
}

/// Seconds since the node's last report, at plant time `now_s`.
#[must_use]
pub fn report_age_s(r: &RoomNodeReading, now_s: f64) -> f64 {
    (now_s - r.last_report_s).max(0.0)
}

/// A room node's sample at plant time `now_s`: None before its first report (nothing read
/// yet), invalid when its temperature is faulted, else its published temperature with its age.
#[must_use]
pub fn room_sample(r: &RoomNodeReading, now_s: f64) -> Option<Sample> {
    if r.sample_counter == 0 {
        return None;
    }
    Some(match r.temperature_c {
        Some(v) => Sample::aged(v, report_age_s(r, now_s)),
        None => Sample::invalid(),
    })
}

/// The position of apartment `apartment`'s household valve as a sample (None without valves).
#[must_use]
pub fn household_valve_sample(plant: &Plant, apartment: usize) -> Option<Sample> {
    plant
        .household_valve(apartment)
        .map(|(pos, _)| Sample::fresh(pos))
}

/// The whole process image of a plant whose configured room nodes are the plant's nodes in
/// order ([`crate::naming::room_nodes`]), healthy field devices: substation signals, every
/// node's sample, and the household valves' positions where `with_valves`.
pub fn fill(plant: &Plant, with_valves: bool, img: &mut ProcessImage) {
    set_substation(plant, img);
    let now = plant.time_s();
    for k in 0..img.rooms.len() {
        let reading = plant.room_node(k);
        img.rooms[k] = reading.as_ref().and_then(|r| room_sample(r, now));
        if let Some(v) = img.hh_valve_pos_pct.get_mut(k) {
            *v = if with_valves {
                reading.and_then(|r| household_valve_sample(plant, r.apartment))
            } else {
                None
            };
        }
    }
}
