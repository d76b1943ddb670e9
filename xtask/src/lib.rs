//! Library half of xtask: what both the `cargo xtask` command and the
//! integration tests in `tests/` need (driving QEMU, attaching gdb, locating
//! the images, the trust policy for extensions' dependencies).

pub mod gdb;
pub mod push;
pub mod qemu;
pub mod scaffold;
pub mod symbolize;
pub mod trust;
pub mod workspace;
