//! Fleet aggregator: merges collector deltas into ClickHouse or the
//! embedded SQLite store, counting each delta exactly once.
//!
//! - [`store`]: the stores, their schema and migrations, and the answers
//!   ([`schemas::fleet::ImageObservations`]) the compiler reads.

pub mod store;
