//! Helpers shared by the integration tests. A test file includes them with `mod support;`
//! (or `#[path = "support/mod.rs"] mod support;`).

pub mod ferroplane;
pub mod impair_relay;
pub mod netns;
