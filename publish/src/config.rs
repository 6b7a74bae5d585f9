//! The `[publish]` settings an operator writes (TOML).

use crate::candidate::GatePolicy;
use crate::schedule::{parse_duration, Schedule, ScheduleError};
use serde::Deserialize;

/// Gate thresholds and schedule. Which target to publish to is the
/// caller's business (it owns the NATS connection settings).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishConfig {
    /// See [`GatePolicy::min_hosts`]; default 2.
    #[serde(default = "default_min_hosts")]
    pub min_hosts: u64,
    /// See [`GatePolicy::shrink_after`]; default `7d`.
    #[serde(default = "default_shrink_after")]
    pub shrink_after: String,
    /// E.g. `every 1h` (default).
    #[serde(default = "default_schedule")]
    pub schedule: String,
}

fn default_min_hosts() -> u64 {
    2
}
fn default_shrink_after() -> String {
    "7d".into()
}
fn default_schedule() -> String {
    "every 1h".into()
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig {
            min_hosts: default_min_hosts(),
            shrink_after: default_shrink_after(),
            schedule: default_schedule(),
        }
    }
}

impl PublishConfig {
    pub fn from_toml(s: &str) -> Result<PublishConfig, toml::de::Error> {
        toml::from_str(s)
    }

    pub fn gate_policy(&self) -> Result<GatePolicy, ScheduleError> {
        Ok(GatePolicy {
            min_hosts: self.min_hosts,
            shrink_after: parse_duration(&self.shrink_after)?,
        })
    }

    pub fn schedule(&self) -> Result<Schedule, ScheduleError> {
        Schedule::parse(&self.schedule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn parse_and_defaults() {
        let c = PublishConfig::from_toml("").unwrap();
        assert_eq!(c, PublishConfig::default());
        assert_eq!(c.gate_policy().unwrap(), GatePolicy::default());
        let c = PublishConfig::from_toml(
            "min_hosts = 3\nshrink_after = \"2d\"\nschedule = \"every 15m\"\n",
        )
        .unwrap();
        assert_eq!(
            c.gate_policy().unwrap(),
            GatePolicy {
                min_hosts: 3,
                shrink_after: Duration::from_secs(2 * 86_400)
            }
        );
        assert_eq!(c.schedule().unwrap().interval(), Duration::from_secs(900));
        let e = PublishConfig::from_toml("min_host = 3\n").unwrap_err();
        assert!(e.to_string().contains("unknown field `min_host`"), "{e}");
    }
}
