//! Room-temperature node firmware core (`no_std`).
#![no_std]
