//! Benchmark scenarios. Each returns figures that the binaries print as one
//! JSON line; `bench/run` combines them into a report.

pub mod store;
