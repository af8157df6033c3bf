//! heatctl's core, free of I/O: [`config`] is the technician's schema and its validation,
//! [`control`] the whole control law (no clock reads, no sockets). The product crate `heatctl`
//! re-exports both and adds the field layer, the runtime and the faces; the simulator crate
//! uses them to bind a configuration to a simulated plant and to feed the control law in the
//! season scorecard. [`signal`] names the measured quantities both share.

pub mod config;
pub mod control;
#[doc(hidden)]
pub mod fuzzing;
pub mod signal;
