//! The configuration file's shape: one section per component, each owned
//! by the crate that uses it. See docs/CONFIG.md for every key.

use aggregator::ingest::AggregatorConfig;
use serde::{Deserialize, Serialize};

#[derive(Deserialize, Serialize, Debug, Clone)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `sandmine collect` / `standalone`: the per-host daemon.
    pub collector: collector::daemon::DaemonConfig,
    /// Where deltas go (collector) and come from (aggregator).
    pub broker: transport::BrokerConfig,
    /// ClickHouse, or the embedded store.
    pub store: aggregator::store::StoreConfig,
    /// `sandmine aggregate`: batching and retries.
    pub aggregator: AggregatorConfig,
    /// Prometheus endpoints.
    pub metrics: MetricsConfig,
    /// Publishing compiled profiles (`publish`, and on a schedule inside
    /// `aggregate` and `standalone`).
    pub publish: publish::PublishConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            collector: Default::default(),
            broker: Default::default(),
            // ClickHouse on localhost, database "sandmine".
            store: aggregator::store::StoreConfig::ClickHouse(Default::default()),
            aggregator: Default::default(),
            metrics: Default::default(),
            publish: Default::default(),
        }
    }
}

/// `[metrics]`: Prometheus endpoints.
#[derive(Deserialize, Serialize, Debug, Clone, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// `host:port` where the running command (collect, aggregate,
    /// standalone) serves Prometheus `/metrics`; empty = off.
    pub listen: String,
}

impl Settings {
    /// Every key with a default, as TOML values: what a value from the
    /// environment or `--set` is converted to (a key with no default, such
    /// as a password, takes a string). Both brokers' keys are listed, as
    /// the file may pick either.
    pub fn key_types() -> toml::Table {
        let mut t = toml::Table::try_from(Settings::default()).unwrap_or_default();
        let kafka = transport::BrokerConfig::Kafka(Default::default());
        if let (Ok(toml::Value::Table(k)), Some(toml::Value::Table(b))) =
            (toml::Value::try_from(kafka), t.get_mut("broker"))
        {
            for (key, v) in k {
                b.entry(key).or_insert(v);
            }
        }
        t
    }
}
