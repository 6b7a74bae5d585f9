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
//! A value from the environment or `--set` takes the type of the key it
//! sets (its default's type): a number, a boolean or a list is read as a
//! TOML literal (`10`, `true`, `["a", "b"]`); a string key (and a key with
//! no default, such as a password) takes the text as it is, so
//! `SANDMINE_BROKER__PASSWORD=123456` is the string "123456" and a quoted
//! password keeps its quotes. `--set` also accepts a TOML string literal
//! for a string key (`--set 'broker.url="nats://h:4222"'`), unquoted, so
//! `--set 'broker.password="\"x\""'` sets `"x"` with its quotes; from the
//! environment the text is always taken as it is.
//!
//! Every section is a typed struct with `deny_unknown_fields`: a misspelt
//! key is an error that names it, never silently ignored.

use crate::settings::Settings;
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
    // Global: `sandmine query image X --config F` works as well as
    // `sandmine query --config F image X` (query has subcommands).
    #[arg(long, value_name = "FILE", env = "SANDMINE_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Override one setting: `--set broker.url=nats://h:4222`. Repeatable;
    /// wins over the file and over SANDMINE_<SECTION>__<KEY> variables.
    #[arg(long = "set", value_name = "KEY=VALUE", global = true)]
    pub set: Vec<String>,
}

impl ConfigArgs {
    /// Loads the typed config: defaults, file, environment, `--set`.
    pub fn load(&self) -> Result<Settings> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        load_from(
            self.config.as_deref(),
            &env,
            &self.set,
            &Settings::key_types(),
        )
    }
}

/// Where an override comes from: `--set` also takes TOML string literals.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Source {
    Env,
    Flag,
}

/// [`ConfigArgs::load`] with the environment and the key types passed in
/// (for tests).
pub fn load_from<T: DeserializeOwned>(
    file: Option<&Path>,
    env: &[(String, String)],
    sets: &[String],
    key_types: &Table,
) -> Result<T> {
    let text = match file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config file {}", path.display()))?,
        ),
        None => None,
    };
    let name = file.map(|p| p.display().to_string());
    load_text(name.as_deref().zip(text.as_deref()), env, sets, key_types)
}

/// [`load_from`] with the file already read: `file` is its name (for
/// messages) and its text. Does no I/O (the config fuzz target's entry).
pub fn load_text<T: DeserializeOwned>(
    file: Option<(&str, &str)>,
    env: &[(String, String)],
    sets: &[String],
    key_types: &Table,
) -> Result<T> {
    let mut table = match file {
        Some((name, text)) => text
            .parse::<Table>()
            .map_err(|e| anyhow::anyhow!("{name}: {}", one_line(&e.to_string())))?,
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
        let value = typed_value(v, key_type(key_types, &path), Source::Env);
        set_path(&mut table, &path, value)
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
        let value = typed_value(v.trim(), key_type(key_types, &path), Source::Flag);
        set_path(&mut table, &path, value).with_context(|| format!("--set {s}"))?;
    }
    let what = file.map_or("configuration", |(name, _)| name);
    T::deserialize(Value::Table(table))
        .map_err(|e| anyhow::anyhow!("{what}: {}", one_line(&e.to_string())))
}

/// The default value at `path`, whose type an override takes.
fn key_type<'a>(types: &'a Table, path: &[String]) -> Option<&'a Value> {
    let (last, parents) = path.split_last()?;
    let mut t = types;
    for p in parents {
        t = t.get(p)?.as_table()?;
    }
    t.get(last)
}

/// An override's text as the type of the key it sets (see the module
/// documentation).
fn typed_value(text: &str, key_type: Option<&Value>, source: Source) -> Value {
    match key_type {
        None | Some(Value::String(_)) => {
            let quoted = text.starts_with('"') || text.starts_with('\'');
            match toml_literal(text) {
                Some(Value::String(s)) if quoted && source == Source::Flag => Value::String(s),
                _ => Value::String(text.to_string()),
            }
        }
        // Numbers, booleans, lists, tables: a TOML literal; anything else
        // stays text, and the typed load names the key and what it expects.
        Some(_) => toml_literal(text).unwrap_or_else(|| Value::String(text.to_string())),
    }
}

/// `text` as one TOML value, if it is one.
fn toml_literal(text: &str) -> Option<Value> {
    format!("v = {text}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
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

    #[derive(Deserialize, serde::Serialize, Debug, PartialEq, Default)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        #[serde(default)]
        broker: Broker,
    }
    #[derive(Deserialize, serde::Serialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Broker {
        url: String,
        batch: u32,
        password: Option<String>,
        tls: bool,
    }
    impl Default for Broker {
        fn default() -> Self {
            Broker {
                url: "nats://127.0.0.1:4222".into(),
                batch: 10,
                password: None,
                tls: false,
            }
        }
    }

    fn types() -> Table {
        Table::try_from(Cfg::default()).unwrap()
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    #[test]
    fn precedence_is_default_file_env_flag() {
        let f = file("[broker]\nurl = \"nats://file:1\"\nbatch = 5\n");
        let c: Cfg = load_from(Some(f.path()), &[], &[], &types()).unwrap();
        assert_eq!(c.broker.url, "nats://file:1");
        assert_eq!(c.broker.batch, 5);
        let env = vec![(
            "SANDMINE_BROKER__URL".to_string(),
            "nats://env:2".to_string(),
        )];
        let c: Cfg = load_from(Some(f.path()), &env, &[], &types()).unwrap();
        assert_eq!(c.broker.url, "nats://env:2");
        let c: Cfg = load_from(
            Some(f.path()),
            &env,
            &["broker.url=nats://flag:3".into(), "broker.batch=7".into()],
            &types(),
        )
        .unwrap();
        assert_eq!(
            c.broker,
            Broker {
                url: "nats://flag:3".into(),
                batch: 7,
                password: None,
                tls: false,
            }
        );
        let c: Cfg = load_from(None, &[], &[], &types()).unwrap();
        assert_eq!(c.broker, Broker::default());
    }

    #[test]
    fn unknown_keys_are_errors_that_name_the_key() {
        let f = file("[broker]\nurll = \"x\"\n");
        let e = load_from::<Cfg>(Some(f.path()), &[], &[], &types()).unwrap_err();
        assert!(e.to_string().contains("unknown field `urll`"), "{e}");
        let e = load_from::<Cfg>(None, &[], &["brokr.url=x".into()], &types()).unwrap_err();
        assert!(e.to_string().contains("unknown field `brokr`"), "{e}");
        let env = vec![("SANDMINE_BROKER__BATCHH".to_string(), "1".to_string())];
        let e = load_from::<Cfg>(None, &env, &[], &types()).unwrap_err();
        assert!(e.to_string().contains("unknown field `batchh`"), "{e}");
        // Variables without the double underscore are not config.
        let env = vec![("SANDMINE_CGROUP".to_string(), "v1".to_string())];
        assert!(load_from::<Cfg>(None, &env, &[], &types()).is_ok());
    }

    #[test]
    fn bad_values_and_files_are_clear() {
        let e = load_from::<Cfg>(None, &[], &["broker.batch=many".into()], &types()).unwrap_err();
        assert!(e.to_string().contains("invalid type"), "{e}");
        let f = file("[broker\n");
        let e = load_from::<Cfg>(Some(f.path()), &[], &[], &types()).unwrap_err();
        assert!(
            e.to_string().contains(&f.path().display().to_string()),
            "{e}"
        );
        let e =
            load_from::<Cfg>(Some(Path::new("/nonexistent.toml")), &[], &[], &types()).unwrap_err();
        assert!(
            format!("{e:#}").contains("cannot read config file /nonexistent.toml"),
            "{e:#}"
        );
        let e = load_from::<Cfg>(None, &[], &["novalue".into()], &types()).unwrap_err();
        assert!(e.to_string().contains("expected KEY=VALUE"), "{e}");
    }

    #[test]
    fn strings_stay_strings() {
        let env = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        let load = |env: &[(String, String)], sets: &[&str]| -> Broker {
            let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
            load_from::<Cfg>(None, env, &sets, &types()).unwrap().broker
        };
        // An all-digit password is a string, from either source.
        let b = load(&env("SANDMINE_BROKER__PASSWORD", "123456"), &[]);
        assert_eq!(b.password.as_deref(), Some("123456"));
        let b = load(&[], &["broker.password=007"]);
        assert_eq!(b.password.as_deref(), Some("007"));
        // A quoted one keeps its quotes from the environment; `--set`
        // takes a TOML string literal, so quotes are written escaped.
        let b = load(&env("SANDMINE_BROKER__PASSWORD", "\"p w\""), &[]);
        assert_eq!(b.password.as_deref(), Some("\"p w\""));
        let b = load(&[], &[r#"broker.password="\"x\"""#]);
        assert_eq!(b.password.as_deref(), Some("\"x\""));
        let b = load(&[], &["broker.password='single'"]);
        assert_eq!(b.password.as_deref(), Some("single"));
        // Other TOML-looking text is a string too.
        for p in ["true", "1.5", "[1]", "1979-05-27", "a=b", "#x"] {
            let b = load(&env("SANDMINE_BROKER__PASSWORD", p), &[]);
            assert_eq!(b.password.as_deref(), Some(p));
            let b = load(&[], &[&format!("broker.password={p}")]);
            assert_eq!(b.password.as_deref(), Some(p), "--set {p}");
        }
        // Numbers and booleans still take their type, from either source.
        let b = load(&env("SANDMINE_BROKER__BATCH", "42"), &["broker.tls=true"]);
        assert_eq!((b.batch, b.tls), (42, true));
        let e =
            load_from::<Cfg>(None, &env("SANDMINE_BROKER__TLS", "yes"), &[], &types()).unwrap_err();
        assert!(
            e.to_string().contains("invalid type: string \"yes\""),
            "{e}"
        );
    }

    /// CI's replay of the config fuzz campaign (fuzz/README.md): every
    /// committed corpus input and reproducer through the target's harness,
    /// which panics on a broken invariant.
    #[test]
    fn fuzz_corpus_replays() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let mut n = 0;
        for dir in ["corpus", "regressions"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir).join("config")) else {
                continue;
            };
            let mut files: Vec<_> = entries
                .map(|e| e.expect("readable directory entry").path())
                .collect();
            files.sort();
            for f in files {
                let data = std::fs::read(&f).expect("readable corpus file");
                if std::panic::catch_unwind(|| crate::harness_config::config(&data)).is_err() {
                    panic!("{} broke an invariant (message above)", f.display());
                }
                n += 1;
            }
        }
        assert!(n >= 40, "{n} config inputs replayed, expected at least 40");
    }
}
