//! The plant simulator.
