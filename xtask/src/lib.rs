//! Library half of xtask: what both the `cargo xtask` command and the
//! integration tests in `tests/` need (driving QEMU, attaching gdb, locating the images).

pub mod gdb;
pub mod qemu;
pub mod symbolize;
pub mod workspace;
