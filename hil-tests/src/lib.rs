//! Shared helpers of the rig.
