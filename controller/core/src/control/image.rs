//! The process image: what the field layer measured, with age and validity, handed to
//! [`super::Controller::step`].

use crate::signal::Signal;

/// One measured value as the field layer delivers it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Engineering value (°C, %, kW, m³/h).
    pub value: f64,
    /// Seconds since it was read from the device.
    pub age_s: f64,
    /// False when the field layer already knows it is unusable (sentinel, outside the map's
    /// valid range, communication lost).
    pub valid: bool,
}

impl Sample {
    /// A fresh, valid reading.
    #[must_use]
    pub fn fresh(value: f64) -> Self {
        Self {
            value,
            age_s: 0.0,
            valid: true,
        }
    }

    /// A reading of the given age.
    #[must_use]
    pub fn aged(value: f64, age_s: f64) -> Self {
        Self {
            value,
            age_s,
            valid: true,
        }
    }

    /// A reading the field layer marked invalid.
    #[must_use]
    pub fn invalid() -> Self {
        Self {
            value: f64::NAN,
            age_s: 0.0,
            valid: false,
        }
    }
}

/// Everything the controller sees in one step. `None` means "not connected / never read".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessImage {
    /// Substation signals, indexed by [`Signal::index`].
    pub signals: [Option<Sample>; Signal::COUNT],
    /// Room temperatures, °C, one per configured node (`rooms.nodes` order).
    pub rooms: Vec<Option<Sample>>,
    /// Household valve position feedback, %, one per configured node (`None` where the node has
    /// no valve or it was not read).
    pub hh_valve_pos_pct: Vec<Option<Sample>>,
}

impl ProcessImage {
    /// An image sized for `nodes` room nodes, everything unread.
    #[must_use]
    pub fn with_rooms(nodes: usize) -> Self {
        Self {
            signals: [None; Signal::COUNT],
            rooms: vec![None; nodes],
            hh_valve_pos_pct: vec![None; nodes],
        }
    }

    /// The sample of a signal.
    #[must_use]
    pub fn get(&self, s: Signal) -> Option<Sample> {
        self.signals[s.index()]
    }

    /// Set the sample of a signal.
    pub fn set(&mut self, s: Signal, sample: Option<Sample>) {
        self.signals[s.index()] = sample;
    }
}
