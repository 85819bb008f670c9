//! Implementations of the domain's `Bus` port: in-process for a single node,
//! Kafka for a cluster.

mod kafka;
mod local;
mod security;

pub use kafka::{BusState, KafkaBus, KafkaConfig};
pub use local::LocalBus;
pub use security::{KafkaSecurity, KafkaSecurityOptions, SaslMechanism, SecurityProtocol};
