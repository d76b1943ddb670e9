//! Test fixture: a well-formed, signed object with no extension descriptor
//! (the crate never invokes `spindle_sdk::extension!`). The loader must say
//! the descriptor is missing.
#![no_std]
#![forbid(unsafe_code)]

/// Something to compile.
pub fn answer() -> u64 {
    spindle_sdk::clock::ticks() + 42
}
