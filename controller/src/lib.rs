//! heatctl: a controller for district-heating substations.
//!
//! The crate is split the way the product is: [`config`] is the technician's schema,
//! [`control`] the whole control law as sans-I/O code (no clock reads, no sockets, no files).
//! Field I/O and the runtime sit at the edges and feed [`control::Controller::step`]; each
//! cycle ends in one [`station::StationSnapshot`], which every face (SCADA, logs, state file,
//! the demo) reads.

pub mod audit;
pub mod balance;
#[cfg(feature = "demo")]
pub mod demo;
pub mod faces;
pub mod fleet;
#[doc(hidden)]
pub mod fuzzing;
pub mod gate;
pub use heatctl_core::{config, control};
pub mod field;
pub mod platform;
/// The queue on disk, by its earlier path (the queue's tests and benchmark use it).
pub use platform::queue as platform_queue;
pub mod runtime;
pub mod scada;
pub mod service;
pub mod state_dir;
pub mod station;
pub mod web;

/// A boxed, sendable future: what the crate's big async entry points (the runtime, the web
/// page, the SCADA slave) return instead of being `async fn`s.
///
/// An async body is compiled in the crate that polls it, not in the crate that defines it (it
/// is generic-like: never shared between crates in an optimised build). Returned as a plain
/// `async fn`, the runtime's whole state machine was compiled again in the `heatctl` binary and
/// in every test that runs the controller; boxed here, it is compiled once, in this crate, and
/// the callers only poll it through the box. One allocation per call, at start-up.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
