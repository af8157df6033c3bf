//! The process image: what the field layer measured, with age and validity, handed to
//! [`super::Controller::step`].

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

/// Substation signals the controller knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    /// Outdoor temperature, °C.
    TOut,
    /// Primary supply temperature, °C.
    T1Supply,
    /// Primary return temperature, °C.
    T1Return,
    /// Secondary supply temperature, °C.
    T2Supply,
    /// Secondary return temperature, °C.
    T2Return,
    /// Heat-meter power, kW.
    Power1Kw,
    /// Heat-meter flow, m³/h.
    Flow1M3h,
    /// Primary valve position feedback, %.
    Valve1PosPct,
}

impl Signal {
    /// Every signal, in the order of [`crate::config::Signals::resolved`].
    pub const ALL: [Signal; 8] = [
        Signal::TOut,
        Signal::T1Supply,
        Signal::T1Return,
        Signal::T2Supply,
        Signal::T2Return,
        Signal::Power1Kw,
        Signal::Flow1M3h,
        Signal::Valve1PosPct,
    ];

    /// Its name in configuration files (`[points]`, `[signals]`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Signal::TOut => "t_out",
            Signal::T1Supply => "t1_supply",
            Signal::T1Return => "t1_return",
            Signal::T2Supply => "t2_supply",
            Signal::T2Return => "t2_return",
            Signal::Power1Kw => "power1_kw",
            Signal::Flow1M3h => "flow1_m3h",
            Signal::Valve1PosPct => "valve1_pos_pct",
        }
    }

    /// Index into arrays over [`Signal::ALL`].
    #[must_use]
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Everything the controller sees in one step. `None` means "not connected / never read".
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessImage {
    /// Substation signals, indexed by [`Signal::index`].
    pub signals: [Option<Sample>; 8],
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
            signals: [None; 8],
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
