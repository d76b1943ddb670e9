//! The `#[ktest]` attribute (placeholder).
