//! Configuration of the long-running commands (`collect`, `aggregate`,
//! `standalone`, `compile`, `publish`): one TOML file, overridden by the
//! environment, overridden by flags.
//!
//! Precedence, lowest first:
//! 1. built-in defaults (each section's `Default`);
//! 2. the file given by `--config FILE` (or `$SANDMINE_CONFIG`);
//! 3. environment variables `SANDMINE_<SECTION>__<KEY>` (double underscore
//!    between levels: `SANDMINE_BROKER__URL=nats://10.0.0.5:4222`);
//! 4. `--set section.key=value` flags, in order.
//!
//! Values from the environment and `--set` are parsed as TOML literals
//! (`10`, `true`, `"a"`, `["a", "b"]`) and fall back to plain strings, so
//! `--set broker.url=nats://h:4222` needs no quotes.
//!
//! Every section is a typed struct with `deny_unknown_fields`: a misspelt
//! key is an error that names it, never silently ignored.

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// Environment variables that are config overrides contain this.
const ENV_SEP: &str = "__";
const ENV_PREFIX: &str = "SANDMINE_";

/// The flags every configured command takes.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ConfigArgs {
    /// TOML configuration file (see docs/CONFIG.md). Also $SANDMINE_CONFIG.
    #[arg(long, value_name = "FILE", env = "SANDMINE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Override one setting: `--set broker.url=nats://h:4222`. Repeatable;
    /// wins over the file and over SANDMINE_<SECTION>__<KEY> variables.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl ConfigArgs {
    /// Loads the typed config: defaults, file, environment, `--set`.
    pub fn load<T: DeserializeOwned>(&self) -> Result<T> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        load_from(self.config.as_deref(), &env, &self.set)
    }
}

/// [`ConfigArgs::load`] with the environment passed in (for tests).
pub fn load_from<T: DeserializeOwned>(
    file: Option<&Path>,
    env: &[(String, String)],
    sets: &[String],
) -> Result<T> {
    let mut table = match file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?;
            text.parse::<Table>()
                .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), one_line(&e.to_string())))?
        }
        None => Table::new(),
    };
    let mut env_overrides: Vec<(&str, &str)> = env
        .iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix(ENV_PREFIX)?;
            rest.contains(ENV_SEP).then_some((rest, v.as_str()))
        })
        .collect();
    env_overrides.sort();
    for (k, v) in env_overrides {
        let path: Vec<String> = k.split(ENV_SEP).map(|p| p.to_ascii_lowercase()).collect();
        set_path(&mut table, &path, parse_value(v))
            .with_context(|| format!("environment variable {ENV_PREFIX}{k}"))?;
    }
    for s in sets {
        let Some((k, v)) = s.split_once('=') else {
            bail!("--set {s:?}: expected KEY=VALUE, e.g. --set broker.url=nats://h:4222");
        };
        let path: Vec<String> = k.trim().split('.').map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            bail!("--set {s:?}: empty key part");
        }
        set_path(&mut table, &path, parse_value(v.trim())).with_context(|| format!("--set {s}"))?;
    }
    let what = file
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "configuration".to_string());
    T::deserialize(Value::Table(table))
        .map_err(|e| anyhow::anyhow!("{what}: {}", one_line(&e.to_string())))
}

fn parse_value(s: &str) -> Value {
    // A TOML literal if it is one (`10`, `true`, `["a"]`, `"x"`), else the
    // raw string.
    format!("v = {s}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(s.to_string()))
}

fn set_path(table: &mut Table, path: &[String], value: Value) -> Result<()> {
    let (last, parents) = path.split_last().context("empty key")?;
    let mut t = table;
    for p in parents {
        let entry = t
            .entry(p.clone())
            .or_insert_with(|| Value::Table(Table::new()));
        t = match entry {
            Value::Table(inner) => inner,
            _ => bail!("{p} is a value, not a section"),
        };
    }
    t.insert(last.clone(), value);
    Ok(())
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        #[serde(default)]
        broker: Broker,
    }
    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Broker {
        url: String,
        batch: u32,
    }
    impl Default for Broker {
        fn default() -> Self {
            Broker {
                url: "nats://127.0.0.1:4222".into(),
                batch: 10,
            }
        }
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn precedence_is_default_file_env_flag() {
        let f = file("[broker]\nurl = \"nats://file:1\"\nbatch = 5\n");
        let c: Cfg = load_from(Some(f.path()), &[], &[]).unwrap();
        assert_eq!(c.broker.url, "nats://file:1");
        assert_eq!(c.broker.batch, 5);
        let env = vec![(
            "SANDMINE_BROKER__URL".to_string(),
            "nats://env:2".to_string(),
        )];
        let c: Cfg = load_from(Some(f.path()), &env, &[]).unwrap();
        assert_eq!(c.broker.url, "nats://env:2");
        let c: Cfg = load_from(
            Some(f.path()),
            &env,
            &["broker.url=nats://flag:3".into(), "broker.batch=7".into()],
        )
        .unwrap();
        assert_eq!(
            c.broker,
            Broker {
                url: "nats://flag:3".into(),
                batch: 7
            }
        );
        let c: Cfg = load_from(None, &[], &[]).unwrap();
        assert_eq!(c.broker, Broker::default());
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let f = file("[broker]\nurll = \"x\"\n");
        let e = load_from::<Cfg>(Some(f.path()), &[], &[]).unwrap_err();
        assert!(e.to_string().contains("unknown field `urll`"), "{e}");
        let e = load_from::<Cfg>(None, &[], &["brokr.url=x".into()]).unwrap_err();
        assert!(e.to_string().contains("unknown field `brokr`"), "{e}");
        let env = vec![("SANDMINE_BROKER__BATCHH".to_string(), "1".to_string())];
        let e = load_from::<Cfg>(None, &env, &[]).unwrap_err();
        assert!(e.to_string().contains("unknown field `batchh`"), "{e}");
        // Variables without the double underscore are not config.
        let env = vec![("SANDMINE_CGROUP".to_string(), "v1".to_string())];
        assert!(load_from::<Cfg>(None, &env, &[]).is_ok());
    }

    #[test]
    fn bad_values_and_files_are_clear() {
        let e = load_from::<Cfg>(None, &[], &["broker.batch=many".into()]).unwrap_err();
        assert!(e.to_string().contains("invalid type"), "{e}");
        let f = file("[broker\n");
        let e = load_from::<Cfg>(Some(f.path()), &[], &[]).unwrap_err();
        assert!(
            e.to_string().contains(&f.path().display().to_string()),
            "{e}"
        );
        let e = load_from::<Cfg>(Some(Path::new("/nonexistent.toml")), &[], &[]).unwrap_err();
        assert!(
            format!("{e:#}").contains("cannot read config file /nonexistent.toml"),
            "{e:#}"
        );
        let e = load_from::<Cfg>(None, &[], &["novalue".into()]).unwrap_err();
        assert!(e.to_string().contains("expected KEY=VALUE"), "{e}");
    }
}
