//! An object store bucket (NATS JetStream object store, bucket
//! [`BUCKET`]): objects `<slug>/<file>` for every file of the publication,
//! then `<slug>/current.json` (the commit point). Objects of files a later
//! version no longer has stay behind; consumers list files from
//! `current.json`, never by listing the bucket.
//!
//! The store itself is behind the small [`ObjectStore`] trait so the
//! target does not depend on a particular client.

use super::{meta_bytes, parse_meta, Publication, Target};
use crate::candidate::PublishedMeta;
use crate::PublishError;
use std::future::Future;

/// The bucket profiles are published to.
pub const BUCKET: &str = "sandmine-profiles";

/// A store failure, as text from the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

/// Put and get whole objects by name in one bucket.
pub trait ObjectStore: Sync {
    fn put(&self, name: &str, data: &[u8]) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// `Ok(None)` when the object does not exist.
    fn get(&self, name: &str) -> impl Future<Output = Result<Option<Vec<u8>>, StoreError>> + Send;
    fn describe(&self) -> String;
}

pub struct ObjectStoreTarget<S> {
    store: S,
}

impl<S: ObjectStore> ObjectStoreTarget<S> {
    pub fn new(store: S) -> Self {
        ObjectStoreTarget { store }
    }

    pub fn store(&self) -> &S {
        &self.store
    }
}

impl<S: ObjectStore> Target for ObjectStoreTarget<S> {
    fn describe(&self) -> String {
        format!("object-store:{}", self.store.describe())
    }

    async fn current(&self, slug: &str) -> Result<Option<PublishedMeta>, PublishError> {
        let name = format!("{slug}/current.json");
        match self.store.get(&name).await? {
            Some(b) => parse_meta(&b, &format!("{}/{name}", self.store.describe())).map(Some),
            None => Ok(None),
        }
    }

    async fn publish(&self, p: &Publication) -> Result<(), PublishError> {
        for p in std::iter::once(p.clone()).chain(p.aliases()) {
            let slug = &p.meta.slug;
            for (rel, bytes) in &p.files {
                self.store.put(&format!("{slug}/{rel}"), bytes).await?;
            }
            self.store
                .put(&format!("{slug}/current.json"), &meta_bytes(&p.meta))
                .await?;
        }
        Ok(())
    }
}
