//! Domains: ELF extension objects linked at load time (placeholder; see issue 4).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]
