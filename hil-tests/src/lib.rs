//! Shared helpers of the rig, and the season scorecard ([`season`]).

pub mod rig;
pub mod season;
