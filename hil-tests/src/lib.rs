//! The rig's child-process helpers ([`process`]), and the season scorecard ([`season`]).

pub mod process;
pub mod season;
