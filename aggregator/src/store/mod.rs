//! The fleet store: where decoded envelopes land, exactly once each, and
//! what answers the compiler and the analytics read back.
//!
//! Two back ends with the same answers: [`ClickHouseStore`] for a fleet
//! and [`EmbeddedStore`] (one SQLite file) for a single host. Both turn
//! envelopes into rows with [`rows::explode`] and answers back into
//! [`ImageObservations`] with [`rows::assemble`]; the idempotency key is
//! (host_id, boot_id, seq) in both. See `docs/STORE.md`.

pub mod clickhouse;
pub mod embedded;
pub mod rows;
pub mod sql;

pub use self::clickhouse::{ClickHouseConfig, ClickHouseStore};
pub use self::embedded::{EmbeddedConfig, EmbeddedStore};

use schemas::fleet::ImageObservations;
use schemas::wire::Envelope;
use schemas::Abi;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// (image, abi, nr, calls, hosts, containers): fleet-wide raw totals.
pub type TotalsRow = (String, Abi, u32, u64, u64, u64);

/// (runtime, image, abi, nr): a syscall some container of the image made
/// in `Phase::Runtime` (after the runtime's filter, before the
/// entrypoint), under that runtime (`ContainerRef::runtime`: docker,
/// podman, containerd, cri-o).
pub type RuntimeSyscallRow = (String, String, Abi, u32);

/// Which store, and how to reach it. In TOML:
/// `[store.clickhouse]` with [`ClickHouseConfig`]'s keys, or
/// `[store.embedded]` with `path`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub enum StoreConfig {
    #[serde(rename = "clickhouse")]
    ClickHouse(ClickHouseConfig),
    #[serde(rename = "embedded")]
    Embedded(EmbeddedConfig),
}

/// Rows written by one insert, per table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsertStats {
    pub calls: u64,
    pub incidence: u64,
    pub containers: u64,
    /// Envelopes the store recognised as already stored and skipped (the
    /// embedded store's ledger; ClickHouse rewrites identical rows instead
    /// and reports 0 here).
    pub duplicates: u64,
}

impl InsertStats {
    pub fn rows(&self) -> u64 {
        self.calls + self.incidence + self.containers
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("ClickHouse at {url} rejected the credentials of user {user:?}: {message}")]
    Auth {
        url: String,
        user: String,
        message: String,
    },
    #[error("ClickHouse at {url} is unreachable: {message}")]
    Unavailable { url: String, message: String },
    #[error("ClickHouse at {url} did not answer within {secs} s")]
    Timeout { url: String, secs: u64 },
    #[error("ClickHouse at {url}: {message}")]
    ClickHouse { url: String, message: String },
    #[error("TLS setup for {url}: {reason}")]
    Tls { url: String, reason: String },
    #[error("store configuration: {0}")]
    Config(String),
    #[error("embedded store {path}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("embedded store: {0}")]
    Embedded(String),
    #[error(transparent)]
    UnknownAbi(#[from] rows::UnknownAbi),
}

impl StoreError {
    /// Worth retrying later (the server may come back); anything else
    /// needs an operator.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. }
                | StoreError::Timeout { .. }
                | StoreError::ClickHouse { .. }
                | StoreError::Sqlite { .. }
        )
    }
}

/// A fleet store of either kind.
#[derive(Clone, Debug)]
pub enum Store {
    ClickHouse(ClickHouseStore),
    Embedded(EmbeddedStore),
}

impl Store {
    /// Connects (or opens the file) and applies missing migrations.
    pub async fn open(cfg: &StoreConfig) -> Result<Store, StoreError> {
        Ok(match cfg {
            StoreConfig::ClickHouse(c) => Store::ClickHouse(ClickHouseStore::open(c).await?),
            StoreConfig::Embedded(c) => Store::Embedded(EmbeddedStore::open(c).await?),
        })
    }

    /// Stores a batch. Idempotent: an envelope stored before (same host,
    /// boot, seq) changes nothing, whatever the batching. On `Err` nothing
    /// or part of the batch is stored; retrying the same batch is correct.
    pub async fn insert(&self, batch: &[Envelope]) -> Result<InsertStats, StoreError> {
        match self {
            Store::ClickHouse(s) => s.insert(&rows::explode(batch)).await,
            Store::Embedded(s) => s.insert(batch).await,
        }
    }

    /// Image names with at least one container, sorted.
    pub async fn images(&self) -> Result<Vec<String>, StoreError> {
        match self {
            Store::ClickHouse(s) => s.images().await,
            Store::Embedded(s) => s.images().await,
        }
    }

    /// Everything known about one image; `None` if it has no container.
    pub async fn image_observations(
        &self,
        image: &str,
    ) -> Result<Option<ImageObservations>, StoreError> {
        match self {
            Store::ClickHouse(s) => s.image_observations(image).await,
            Store::Embedded(s) => s.image_observations(image).await,
        }
    }

    /// Per (image, abi, nr), sorted: calls, distinct hosts, distinct
    /// containers.
    pub async fn syscall_totals(&self) -> Result<Vec<TotalsRow>, StoreError> {
        match self {
            Store::ClickHouse(s) => s.syscall_totals().await,
            Store::Embedded(s) => s.syscall_totals().await,
        }
    }

    /// Every syscall made in `Phase::Runtime`, per runtime and image,
    /// sorted: what [`crate::runtime_base`] derives the runtime base from.
    pub async fn runtime_syscalls(&self) -> Result<Vec<RuntimeSyscallRow>, StoreError> {
        match self {
            Store::ClickHouse(s) => s.runtime_syscalls().await,
            Store::Embedded(s) => s.runtime_syscalls().await,
        }
    }

    /// Applied schema versions.
    pub async fn applied_migrations(&self) -> Result<Vec<u32>, StoreError> {
        match self {
            Store::ClickHouse(s) => s.applied_migrations().await,
            Store::Embedded(s) => s.applied_migrations().await,
        }
    }
}
