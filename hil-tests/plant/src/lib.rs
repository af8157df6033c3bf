//! The plant simulator: a district-heating substation and its buildings (the model of
//! `hil-tests/MODEL.md`), and every adapter between it and heatctl.
//!
//! * [`Plant`] steps the physics in-process (`Plant::new`, `step`, `sensors`, `truth`,
//!   `set_valve1_cmd_pct`, ...): what the season scorecard uses.
//! * [`Scenario`] loads and validates a scenario TOML file.
//! * [`serve`] runs a plant in real or accelerated time behind its Modbus faces on TCP ports:
//!   what `plant-sim`, `heatctl demo` and the closed-loop rig use.
//! * The heatctl side: [`naming`] (ids, buildings, links and positions of the plant's devices in
//!   a heatctl configuration), [`binding`] (a configuration bound to a served plant, and the
//!   device maps it refers to), [`process_image`] (heatctl's process image read from the plant
//!   without Modbus, for the season scorecard) and [`demo`] (the plant of `heatctl demo`).

pub mod binding;
pub mod demo;
pub mod faces;
pub mod forecast;
pub mod naming;
pub mod physics;
pub mod plant;
pub mod process_image;
pub mod scenario;
pub mod serve;
pub mod weather;

pub use plant::{
    ApartmentEnergy, ApartmentInfo, HeatMeterReading, Plant, PlantError, PositionClass,
    RoomNodeReading, Sensors, StoredHeat, SubstationTruth,
};
pub use scenario::{Fault, FaultKind, FaultTarget, Problem, Scenario, ScenarioError};
pub use serve::{
    FaceAddresses, GatewayAddress, PlantServer, ServeError, ServeFuture, ServeOptions, SharedPlant,
    serve, serve_with,
};
pub use weather::{Weather, WeatherError};
