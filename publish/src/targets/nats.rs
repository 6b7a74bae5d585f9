//! [`ObjectStore`] over a NATS JetStream object store (via `transport`,
//! which needs nats-server 2.10 or newer).

use super::object_store::{ObjectStore, StoreError, BUCKET};
use transport::{NatsConfig, TransportError};

/// One bucket on a NATS server. Each call opens its own connection
/// (publishing is a few objects per image per round, so connection reuse
/// does not matter); the bucket is created on the first put.
#[derive(Debug, Clone)]
pub struct NatsObjectStore {
    cfg: NatsConfig,
    bucket: String,
}

impl NatsObjectStore {
    /// The profiles bucket, [`BUCKET`].
    pub fn new(cfg: NatsConfig) -> NatsObjectStore {
        Self::with_bucket(cfg, BUCKET)
    }

    pub fn with_bucket(cfg: NatsConfig, bucket: &str) -> NatsObjectStore {
        NatsObjectStore {
            cfg,
            bucket: bucket.to_string(),
        }
    }
}

impl ObjectStore for NatsObjectStore {
    async fn put(&self, name: &str, data: &[u8]) -> Result<(), StoreError> {
        transport::object_store::put(&self.cfg, &self.bucket, name, data)
            .await
            .map_err(|e| StoreError(e.to_string()))
    }

    async fn get(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        match transport::object_store::get(&self.cfg, &self.bucket, name).await {
            Ok(v) => Ok(Some(v)),
            Err(TransportError::NotFound { .. }) => Ok(None),
            Err(e) => Err(StoreError(e.to_string())),
        }
    }

    fn describe(&self) -> String {
        format!("{}/{}", self.cfg.url, self.bucket)
    }
}
