//! The rig's child-process helpers ([`process`]), the season scorecard ([`season`]) and the
//! month-long soak ([`soak`]).

pub mod process;
pub mod season;
pub mod soak;
