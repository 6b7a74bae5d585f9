//! Broker clients (see Cargo.toml).
