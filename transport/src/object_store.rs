//! Small blobs (published profiles) in a NATS object store bucket.
//! Needs nats-server 2.10 or newer: on older servers `put`/`get` fail with
//! [`TransportError::Unsupported`] before touching the server's state.

use async_nats::jetstream::object_store::{self, GetErrorKind};
use tokio::io::AsyncReadExt;

use crate::config::NatsConfig;
use crate::nats::connect_object_store;
use crate::TransportError;

async fn bucket(
    cfg: &NatsConfig,
    js: &async_nats::jetstream::Context,
    bucket: &str,
    create: bool,
) -> Result<Option<object_store::ObjectStore>, TransportError> {
    let op = format!("open object store {bucket}");
    match tokio::time::timeout(cfg.timeout, js.get_object_store(bucket)).await {
        Err(_) => return Err(TransportError::nats_timeout(&cfg.url, op, cfg.timeout)),
        Ok(Ok(b)) => return Ok(Some(b)),
        Ok(Err(e)) => {
            if !create {
                // A missing bucket and a missing object look the same to a
                // reader.
                log::debug!("nats: {op}: {e}");
                return Ok(None);
            }
        }
    }
    let config = object_store::Config {
        bucket: bucket.to_string(),
        ..Default::default()
    };
    let op = format!("create object store {bucket}");
    match tokio::time::timeout(cfg.timeout, js.create_object_store(config)).await {
        Err(_) => Err(TransportError::nats_timeout(&cfg.url, op, cfg.timeout)),
        Ok(Err(e)) => Err(TransportError::nats(&cfg.url, op, e)),
        Ok(Ok(b)) => Ok(Some(b)),
    }
}

/// Stores `data` as `name` in `bucket` (created if missing), replacing any
/// previous object of that name.
pub async fn put(
    cfg: &NatsConfig,
    bucket_name: &str,
    name: &str,
    data: &[u8],
) -> Result<(), TransportError> {
    let (_client, js) = connect_object_store(cfg).await?;
    let Some(b) = bucket(cfg, &js, bucket_name, true).await? else {
        return Err(TransportError::nats(
            &cfg.url,
            format!("open object store {bucket_name}"),
            "bucket vanished",
        ));
    };
    let mut reader = data;
    let op = format!("put object {bucket_name}/{name}");
    // Large objects go in 128 KiB chunks, each acked; allow one timeout per
    // MiB on top of the base timeout.
    let limit = cfg.timeout * (1 + u32::try_from(data.len() >> 20).unwrap_or(u32::MAX / 2));
    match tokio::time::timeout(limit, b.put(name, &mut reader)).await {
        Err(_) => Err(TransportError::nats_timeout(&cfg.url, op, limit)),
        Ok(Err(e)) => Err(TransportError::nats(&cfg.url, op, e)),
        Ok(Ok(_info)) => Ok(()),
    }
}

/// Reads object `name` from `bucket`; [`TransportError::NotFound`] if the
/// bucket or the object does not exist.
pub async fn get(
    cfg: &NatsConfig,
    bucket_name: &str,
    name: &str,
) -> Result<Vec<u8>, TransportError> {
    let not_found = || TransportError::NotFound {
        broker: "NATS",
        url: cfg.url.clone(),
        bucket: bucket_name.to_string(),
        name: name.to_string(),
    };
    let (_client, js) = connect_object_store(cfg).await?;
    let Some(b) = bucket(cfg, &js, bucket_name, false).await? else {
        return Err(not_found());
    };
    let op = format!("get object {bucket_name}/{name}");
    let read = async {
        let mut obj = match b.get(name).await {
            Ok(o) => o,
            Err(e) if e.kind() == GetErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(TransportError::nats(&cfg.url, op.as_str(), e)),
        };
        let mut out = Vec::new();
        obj.read_to_end(&mut out)
            .await
            .map_err(|e| TransportError::nats(&cfg.url, op.as_str(), e))?;
        Ok(Some(out))
    };
    let limit = cfg.timeout * 4;
    match tokio::time::timeout(limit, read).await {
        Err(_) => Err(TransportError::nats_timeout(&cfg.url, op, limit)),
        Ok(Err(e)) => Err(e),
        Ok(Ok(None)) => Err(not_found()),
        Ok(Ok(Some(v))) => Ok(v),
    }
}
