//! Control core.
