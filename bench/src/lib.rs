//! Benchmark scenarios. Each returns figures that the binaries print as one
//! JSON line; `bench/run` combines them into a report.

pub mod broker_floor;
pub mod cluster;
pub mod connections;
pub mod link;
pub mod members;
pub mod netns;
pub mod report;
pub mod server;
pub mod soak;
pub mod stages;
pub mod store;
pub mod traffic;
