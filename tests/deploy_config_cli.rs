//! The Kubernetes manifests' configs (deploy/kubernetes/**/*.toml, the
//! ConfigMaps kustomize generates) are real sandmine configs: the binary
//! loads each one without a config error, and rejects each with a
//! misspelt key (unknown keys are errors, so a typo in a ConfigMap would
//! stop the pod at start).

mod common;

use common::Fixture;
use std::path::{Path, PathBuf};

fn tomls(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            tomls(&p, out);
        } else if p.extension().is_some_and(|x| x == "toml") {
            out.push(p);
        }
    }
}

/// `query` reads the whole file first; the store is pointed at a port
/// where nothing listens, so a load that got past the config fails there.
fn load(f: &Fixture, cfg: &str) -> common::Out {
    f.sandmine(&[
        "query",
        "--config",
        cfg,
        "--set",
        "store.clickhouse.url=http://127.0.0.1:9",
        "--set",
        "store.clickhouse.connect_timeout_secs=1",
        "images",
    ])
}

#[test]
fn every_configmap_toml_loads_and_a_misspelt_key_does_not() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let mut files = Vec::new();
    tomls(&root, &mut files);
    files.sort();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "base/collector.toml",
            "base/sandmine.toml",
            "overlays/cri-containerd/collector.toml",
            "overlays/kafka/collector.toml",
            "overlays/kafka/sandmine.toml",
        ]
    );
    let f = Fixture::new();
    for file in &files {
        let o = load(&f, file.to_str().unwrap());
        for bad in [
            "unknown field",
            "invalid type",
            "invalid value",
            "missing field",
            "expected",
        ] {
            assert!(!o.stderr.contains(bad), "{}", o.describe());
        }
        assert_eq!(o.code(), Some(2), "{}", o.describe());
        assert!(o.stderr.contains("127.0.0.1:9"), "{}", o.describe());

        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains("\nlisten = "), "{}", file.display());
        let bad = f.write("bad.toml", &text.replace("\nlisten = ", "\nlisen = "));
        let o = load(&f, bad.to_str().unwrap());
        assert_eq!(o.code(), Some(2), "{}", o.describe());
        let line = common::one_error_line(&o);
        assert!(line.contains("unknown field `lisen`"), "{line}");
    }
}
