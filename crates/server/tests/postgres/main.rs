//! Behaviour only PostgreSQL has: several processes on one database, outages
//! of a database server, moving an installation there. Needs a PostgreSQL
//! server (`./scripts/test` provides one; see `PALAVER_TEST_POSTGRES_URL`).

mod copy;
#[path = "../api/helpers.rs"]
mod helpers;
mod keys;
#[path = "../support/mail_sink.rs"]
mod mail_sink;
#[path = "../support/node.rs"]
mod node;
mod outage;
mod processes;
mod proxy;
mod schema;
