//! The fleet store: where decoded envelopes land, exactly once each, and
//! what answers the compiler and the analytics read back.
//!
//! Two back ends with the same answers: [`ClickHouseStore`] for a fleet
//! and [`EmbeddedStore`] (one SQLite file) for a single host. Both turn
//! envelopes into rows with [`rows::explode`] and answers back into
//! [`ImageObservations`] with [`rows::assemble`]; the idempotency key is
//! (host_id, boot_id, seq) in both. See `docs/STORE.md`.

pub mod analytics;
pub mod backup;
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
    #[error(transparent)]
    BadStoredText(#[from] rows::BadStoredText),
    #[error(transparent)]
    UnknownExecKind(#[from] rows::UnknownExecKind),
}

impl StoreError {
    /// Worth retrying later (the server may come back); anything else
    /// needs an operator, or (see [`StoreError::refuses_rows`]) is the
    /// data's own fault.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unavailable { .. } | StoreError::Timeout { .. } => true,
            StoreError::ClickHouse { .. } | StoreError::Sqlite { .. } => !self.refuses_rows(),
            _ => false,
        }
    }

    /// The store refused the rows themselves (a constraint, a type, a
    /// value out of range): the same rows fail the same way on every
    /// retry, while other rows would be taken. The aggregator then splits
    /// the batch to find the message at fault and dead-letters it. An
    /// outage, an overload, a timeout, a full disk or a configuration
    /// problem is not such an error: it is retried.
    pub fn refuses_rows(&self) -> bool {
        match self {
            StoreError::Sqlite { source, .. } => sqlite_refuses_rows(source),
            StoreError::ClickHouse { message, .. } => clickhouse_refuses_rows(message),
            StoreError::UnknownAbi(_) => true,
            _ => false,
        }
    }
}

/// SQLite result codes about the data: a constraint (`CHECK`, `NOT NULL`,
/// a trigger's `RAISE(ABORT)`), a type or size, a value rusqlite cannot
/// convert. Busy, locked, I/O, full, read-only and corrupt are not.
fn sqlite_refuses_rows(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode as C;
    match e {
        rusqlite::Error::SqliteFailure(f, _) => matches!(
            f.code,
            C::ConstraintViolation | C::TypeMismatch | C::TooBig | C::ParameterOutOfRange
        ),
        rusqlite::Error::ToSqlConversionFailure(_)
        | rusqlite::Error::IntegralValueOutOfRange(..) => true,
        _ => false,
    }
}

/// ClickHouse exception codes about the data (parse, type, range,
/// constraint, a `throwIf` check, which is how an operator constrains a
/// column on 18.16): `Code: N` in the message. Every other code (overload 202,
/// memory 241, too many parts 252, timeouts, network) is retried.
pub const CLICKHOUSE_DATA_ERRORS: [u32; 14] = [
    6,   // CANNOT_PARSE_TEXT
    26,  // CANNOT_PARSE_QUOTED_STRING
    27,  // CANNOT_PARSE_INPUT_ASSERTION_FAILED
    38,  // CANNOT_PARSE_DATE
    41,  // CANNOT_PARSE_DATETIME
    53,  // TYPE_MISMATCH
    69,  // ARGUMENT_OUT_OF_BOUND
    70,  // CANNOT_CONVERT_TYPE
    72,  // CANNOT_PARSE_NUMBER
    117, // INCORRECT_DATA
    131, // TOO_LARGE_STRING_SIZE
    321, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    395, // FUNCTION_THROW_IF_VALUE_IS_NON_ZERO (a check on a column: throwIf)
    469, // VIOLATED_CONSTRAINT
];

fn clickhouse_refuses_rows(message: &str) -> bool {
    let Some(at) = message.find("Code: ") else {
        return false;
    };
    let digits: String = message[at + 6..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits
        .parse::<u32>()
        .is_ok_and(|c| CLICKHOUSE_DATA_ERRORS.contains(&c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clickhouse_codes_tell_data_from_outages() {
        let e = |m: &str| StoreError::ClickHouse {
            url: "u".into(),
            message: m.into(),
        };
        for (m, refuses) in [
            ("bad response: Code: 53, e.displayText() = DB::Exception: Type mismatch", true),
            ("bad response: Code: 27. DB::Exception: Cannot parse input", true),
            ("bad response: Code: 202, e.displayText() = DB::Exception: Too many simultaneous queries", false),
            ("bad response: Code: 241. DB::Exception: Memory limit exceeded", false),
            ("bad response: Code: 252. Too many parts", false),
            ("bad response: Code: 5300", false),
            ("503 Service Unavailable", false),
        ] {
            assert_eq!((e(m).refuses_rows(), e(m).is_transient()), (refuses, !refuses), "{m}");
        }
        let down = StoreError::Unavailable {
            url: "u".into(),
            message: "refused".into(),
        };
        assert_eq!((down.refuses_rows(), down.is_transient()), (false, true));
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

    /// Retention (`sandmine store prune`): removes what was last seen
    /// before `cutoff_ms` and returns the rows removed (with `dry_run`:
    /// that would be) per table. Embedded: one transaction, the ledger
    /// kept ([`EmbeddedStore::prune`]). ClickHouse: a mutation per table,
    /// each waited for at most `wait` ([`ClickHouseStore::prune`]); no
    /// ledger, so the caller must keep the cutoff beyond the redelivery
    /// horizon.
    pub async fn prune(
        &self,
        cutoff_ms: u64,
        dry_run: bool,
        wait: std::time::Duration,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Vec<(&'static str, u64)>, StoreError> {
        match self {
            Store::ClickHouse(s) => s.prune(cutoff_ms, dry_run, wait, progress).await,
            Store::Embedded(s) => s.prune(cutoff_ms, dry_run).await,
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

    /// `query uses`: per image, its use of one syscall in a window (see
    /// [`analytics::SyscallUse`]), sorted by image.
    pub async fn syscall_uses(
        &self,
        abi: Abi,
        nr: u32,
        window: analytics::Window,
    ) -> Result<Vec<analytics::SyscallUse>, StoreError> {
        match self {
            Store::ClickHouse(s) => s.syscall_uses(abi, nr, window).await,
            Store::Embedded(s) => s.syscall_uses(abi, nr, window).await,
        }
    }

    /// `query drift`: the syscalls an image gained and lost, since a time
    /// or between two of its digests; `None` if the image has no
    /// container.
    pub async fn drift(
        &self,
        image: &str,
        base: &analytics::DriftBase,
    ) -> Result<Option<analytics::Drift>, StoreError> {
        match base {
            analytics::DriftBase::Since(ms) => Ok(self
                .image_observations(image)
                .await?
                .map(|o| analytics::drift_since(&o, *ms))),
            analytics::DriftBase::Digests { from, to } => {
                if self.image_observations(image).await?.is_none() {
                    return Ok(None);
                }
                let rows = match self {
                    Store::ClickHouse(s) => s.digest_syscalls(image, from, to).await?,
                    Store::Embedded(s) => s.digest_syscalls(image, from, to).await?,
                };
                Ok(Some(analytics::drift_between(rows, from, to)?))
            }
        }
    }

    /// `query usage`: per hour, an image's calls, hosts and new containers,
    /// of one syscall or of all (see [`analytics::UsageRow`]), sorted.
    pub async fn usage(
        &self,
        image: &str,
        syscall: Option<(Abi, u32)>,
    ) -> Result<Vec<analytics::UsageRow>, StoreError> {
        match self {
            Store::ClickHouse(s) => s.usage(image, syscall).await,
            Store::Embedded(s) => s.usage(image, syscall).await,
        }
    }

    /// `query breaks`: per (image, abi, nr) used in the window, of one
    /// image or of all, the hosts, containers, calls and last seen (the
    /// definitions of [`analytics::SyscallUse`]), sorted.
    pub async fn window_syscalls(
        &self,
        image: Option<&str>,
        window: analytics::Window,
    ) -> Result<Vec<analytics::ImageSyscallUse>, StoreError> {
        match self {
            Store::ClickHouse(s) => s.window_syscalls(image, window).await,
            Store::Embedded(s) => s.window_syscalls(image, window).await,
        }
    }

    /// `query breaks`: per image (of one, or of all), the distinct hosts
    /// and containers whose use of any of `syscalls` overlaps the window
    /// (the definition of [`analytics::SyscallUse`]'s, for a set), sorted
    /// by image; images that used none of them are left out.
    pub async fn reach(
        &self,
        image: Option<&str>,
        syscalls: &std::collections::BTreeSet<(Abi, u32)>,
        window: analytics::Window,
    ) -> Result<Vec<analytics::ImageReach>, StoreError> {
        if syscalls.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<u64> = syscalls
            .iter()
            .map(|&(abi, nr)| analytics::syscall_key(abi, nr))
            .collect();
        match self {
            Store::ClickHouse(s) => s.reach(image, &keys, window).await,
            Store::Embedded(s) => s.reach(image, &keys, window).await,
        }
    }

    /// `query denials`: per (image, abi, nr, action, profile version), the
    /// seccomp denials of one image or of all, in collector intervals that
    /// ended from the hour of `since_ms` on (whole hours on both stores),
    /// with their hosts, containers, first and last seen; sorted.
    pub async fn denials(
        &self,
        image: Option<&str>,
        since_ms: Option<u64>,
    ) -> Result<Vec<analytics::ImageDenials>, StoreError> {
        let from = since_ms.map_or(0, |s| s / rows::HOUR_MS * rows::HOUR_MS);
        let raw = match self {
            Store::ClickHouse(s) => s.denials(image, from).await?,
            Store::Embedded(s) => s.denials(image, from).await?,
        };
        Ok(analytics::assemble_denials(raw)?)
    }

    /// Applied schema versions.
    pub async fn applied_migrations(&self) -> Result<Vec<u32>, StoreError> {
        match self {
            Store::ClickHouse(s) => s.applied_migrations().await,
            Store::Embedded(s) => s.applied_migrations().await,
        }
    }
}
