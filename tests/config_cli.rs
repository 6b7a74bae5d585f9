//! Configuration through the real binary: the committed example files
//! load, and values from the environment and `--set` keep their type
//! (an all-digit or quoted password stays a string).

mod common;

use common::Fixture;
use std::path::Path;
use testsvc::Nats;

/// A config error names a key or a type; a load that got past the config
/// fails on the (absent) server instead.
fn assert_no_config_error(o: &common::Out) {
    for bad in [
        "unknown field",
        "invalid type",
        "invalid value",
        "missing field",
        "expected",
    ] {
        assert!(!o.stderr.contains(bad), "{}", o.describe());
    }
}

#[test]
fn the_example_files_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/examples");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let names: Vec<_> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "aggregator.toml",
            "collector.toml",
            "kafka.toml",
            "standalone.toml"
        ]
    );
    let f = Fixture::new();
    for file in &files {
        let cfg = file.to_str().unwrap();
        // Every key parses: `query` reads the whole file first. The
        // ClickHouse ones then fail on the connection (nothing listens
        // there); the embedded one is pointed at a fresh file and works.
        let o = f.sandmine(&[
            "query",
            "--config",
            cfg,
            "--set",
            "store.clickhouse.url=http://127.0.0.1:9",
            "--set",
            "store.clickhouse.connect_timeout_secs=1",
            "images",
        ]);
        assert_no_config_error(&o);
        if cfg.ends_with("standalone.toml") {
            let db = f.arg("standalone.db");
            let o = f.sandmine(&[
                "query",
                "--config",
                cfg,
                "--set",
                &format!("store.embedded.path={db}"),
                "images",
            ]);
            assert_eq!(o.code(), Some(0), "{}", o.describe());
            assert_eq!(o.stdout, "", "{}", o.describe());
        } else {
            assert_eq!(o.code(), Some(2), "{}", o.describe());
            assert!(o.stderr.contains("127.0.0.1:9"), "{}", o.describe());
        }
    }
}

/// `replay-dead-letters --dry-run` against a NATS server that wants
/// `password`, the password given by `env` and `set`.
fn replay(f: &Fixture, nats: &Nats, env: &[(&str, &str)], set: &[&str]) -> common::Out {
    let cfg = f.write(
        "broker.toml",
        &format!(
            "[broker]\nkind = \"nats\"\nurl = \"{}\"\nuser = \"agg\"\ntimeout = \"3s\"\n",
            nats.url()
        ),
    );
    let mut args = vec![
        "replay-dead-letters".to_string(),
        "--dry-run".to_string(),
        "--config".to_string(),
        cfg.to_str().unwrap().to_string(),
    ];
    for s in set {
        args.extend(["--set".to_string(), s.to_string()]);
    }
    let mut cmd = std::process::Command::new(common::SANDMINE);
    cmd.args(&args).envs(env.iter().copied());
    f.run_cmd(cmd, common::RUN_TIMEOUT)
}

fn assert_accepted(o: &common::Out) {
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stderr.contains("would replay 0 message(s)"),
        "{}",
        o.describe()
    );
}

fn assert_rejected(o: &common::Out) {
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    assert!(
        common::one_error_line(o).contains("authorization violation"),
        "{}",
        o.describe()
    );
}

#[test]
fn an_all_digit_password_is_a_string() {
    let nats = Nats::start_with_conf("authorization { user: agg, password: \"007123\" }");
    let f = Fixture::new();
    assert_accepted(&replay(
        &f,
        &nats,
        &[("SANDMINE_BROKER__PASSWORD", "007123")],
        &[],
    ));
    assert_accepted(&replay(&f, &nats, &[], &["broker.password=007123"]));
    assert_rejected(&replay(&f, &nats, &[], &["broker.password=7123"]));
}

#[test]
fn a_quoted_password_keeps_its_quotes() {
    let nats = Nats::start_with_conf("authorization { user: agg, password: '\"pw\"' }");
    let f = Fixture::new();
    // From the environment, the text as it is.
    assert_accepted(&replay(
        &f,
        &nats,
        &[("SANDMINE_BROKER__PASSWORD", "\"pw\"")],
        &[],
    ));
    // `--set` takes a TOML string: quotes inside it are escaped, and a
    // plain TOML string is unquoted (`--set 'k="v"'` has always meant v).
    assert_accepted(&replay(&f, &nats, &[], &[r#"broker.password="\"pw\"""#]));
    assert_accepted(&replay(&f, &nats, &[], &[r#"broker.password='"pw"'"#]));
    assert_rejected(&replay(&f, &nats, &[], &[r#"broker.password="pw""#]));
}

/// `[collector] max_wire_version` outside the versions this build writes
/// is a config error that says which versions are; inside, it loads.
#[test]
fn max_wire_version_is_checked_at_load() {
    let f = Fixture::new();
    let db = f.arg("store.db");
    let store = format!("store.embedded.path={db}");
    for v in ["0", "9"] {
        let set = format!("collector.max_wire_version={v}");
        let o = f.sandmine(&["query", "--set", &store, "--set", &set, "images"]);
        assert_eq!(o.code(), Some(2), "{}", o.describe());
        let line = common::one_error_line(&o);
        assert!(
            line.contains(&format!(
                "max_wire_version {v} is not a wire version this collector writes (1 to 8)"
            )),
            "{line}"
        );
    }
    for v in ["1", "2", "3", "4", "5", "6", "7", "8"] {
        let set = format!("collector.max_wire_version={v}");
        let o = f.sandmine(&["query", "--set", &store, "--set", &set, "images"]);
        assert_eq!(o.code(), Some(0), "{}", o.describe());
    }
}
