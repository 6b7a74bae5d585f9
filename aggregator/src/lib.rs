//! Fleet aggregator: merges collector deltas into ClickHouse or the
//! embedded SQLite store, counting each delta exactly once.
//!
//! - [`enrolled`]: the registry of enrolled hosts (`enrolled_hosts`):
//!   which key may sign for which host, and revocation.
//! - [`ingest`]: the aggregation loop: fetch a batch from the broker,
//!   decode (or dead-letter), insert, and only then ack.
//! - [`runtime_base`]: the runtime's must-allow base, derived from the
//!   runtime-phase calls in the store (no probe containers, no eBPF).
//! - [`store`]: the stores, their schema and migrations, and the answers
//!   ([`schemas::fleet::ImageObservations`]) the compiler reads.

pub mod enrolled;
pub mod ingest;
pub mod runtime_base;
pub mod store;
