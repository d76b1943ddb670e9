//! The central event dispatcher (placeholder; see issue 3).
#![cfg_attr(not(test), no_std)]
