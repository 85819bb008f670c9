//! Implementations of the domain's `Bus` port.

mod local;

pub use local::LocalBus;
