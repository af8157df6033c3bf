//! The plant simulator: a district-heating substation and its buildings, after
//! `shared/docs/plant-model.md`.
//!
//! * [`Plant`] steps the physics in-process (`Plant::new`, `step`, `sensors`, `truth`,
//!   `set_valve1_cmd_pct`, ...): what the season scorecard uses.
//! * [`Scenario`] loads and validates a scenario TOML file.
//! * [`serve`] runs a plant in real or accelerated time behind its Modbus faces on loopback
//!   TCP ports: what `plant-sim` and `heatctl demo` use.

pub mod faces;
pub mod physics;
pub mod plant;
pub mod scenario;
pub mod serve;
pub mod weather;

pub use plant::{
    ApartmentEnergy, ApartmentInfo, HeatMeterReading, Plant, PlantError, PositionClass,
    RoomNodeReading, Sensors, SubstationTruth,
};
pub use scenario::{Fault, FaultKind, FaultTarget, Problem, Scenario, ScenarioError};
pub use serve::{
    FaceAddresses, GatewayAddress, PlantServer, ServeError, ServeOptions, SharedPlant, serve,
    serve_with,
};
pub use weather::{Weather, WeatherError};
