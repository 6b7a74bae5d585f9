//! Golden outputs: every file the compiler writes, for committed inputs, byte
//! for byte.
//!
//! The inputs are real and synthetic observations committed under
//! `tests/fixtures/golden/`:
//! - `mine/*.observation.json`: what `sandmine mine --observation` and
//!   `mine-image --observation` wrote for the workloads the CLI tests mine
//!   (a python3 socket call, `ls`, busybox httpd under wget, the i386 probe);
//!   each is compiled as `mine` does, a fleet of one under the single-host
//!   policy (`*.profile.json`), and as `mine-image --mining-profile` does,
//!   without the baseline (`*.bare.profile.json`);
//! - `fleet/pool-*.json`: six images of the compile benchmark's pool
//!   (`bench_compile 200 1 dump DIR` writes all 200; these six are small,
//!   one has i386 calls, their hosts range from 2 to 41) and
//!   `variant-000.json` (pool-000 reversed, with unnamed numbers and an x32
//!   call), each compiled under the policies in
//!   `fleet/policies/*.toml` into `fleet/out/<image>/<policy>/`: every
//!   format, both reports, and `explain` for a few syscalls.
//!
//! A change of the compiler that changes an output fails here with the first
//! differing line. When the change is intended, `SANDMINE_BLESS=1 cargo test
//! -p policy-compiler --test golden` rewrites the expected files, and the
//! commit's diff of `tests/fixtures/golden/` is the before/after of every
//! output.

use policy_compiler::policy::Policy;
use schemas::fleet::ImageObservations;
use schemas::{Abi, Observation};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const NOW_MS: u64 = 1_700_000_000_000 + 400 * 3_600_000;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden")
}

fn bless() -> bool {
    std::env::var_os("SANDMINE_BLESS").is_some_and(|v| v == "1")
}

/// Compare `got` with the file at `path` (or write it when blessing);
/// collects mismatches instead of stopping at the first.
fn check(path: &Path, got: &[u8], failures: &mut Vec<String>) {
    if bless() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, got).unwrap();
        return;
    }
    let want = match std::fs::read(path) {
        Ok(w) => w,
        Err(e) => {
            failures.push(format!("{}: {e}", path.display()));
            return;
        }
    };
    if want != got {
        let (w, g) = (String::from_utf8_lossy(&want), String::from_utf8_lossy(got));
        let line = w
            .lines()
            .zip(g.lines())
            .position(|(a, b)| a != b)
            .unwrap_or_else(|| w.lines().count().min(g.lines().count()));
        failures.push(format!(
            "{}: differs at line {}:\n  want: {}\n  got:  {}",
            path.display(),
            line + 1,
            w.lines().nth(line).unwrap_or("<end>"),
            g.lines().nth(line).unwrap_or("<end>")
        ));
    }
}

/// Files of `dir` with the given suffix, sorted.
fn inputs(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no *{suffix} in {}", dir.display());
    v
}

fn stem(p: &Path, suffix: &str) -> String {
    let name = p.file_name().unwrap().to_string_lossy();
    name.strip_suffix(suffix).unwrap().to_string()
}

#[test]
fn mine_profiles_are_unchanged() {
    let dir = root().join("mine");
    let mut failures = Vec::new();
    for input in inputs(&dir, ".observation.json") {
        let name = stem(&input, ".observation.json");
        let obs: Observation =
            serde_json::from_str(&std::fs::read_to_string(&input).unwrap()).unwrap();
        for (suffix, baseline) in [("profile.json", true), ("bare.profile.json", false)] {
            // As `sandmine mine` does: a fleet of one under the
            // single-host policy.
            let policy = Policy {
                baseline,
                ..Policy::single_host()
            };
            let image = ImageObservations::single_run(
                &name,
                "unconfined",
                &obs,
                &BTreeMap::new(),
                NOW_MS,
                NOW_MS,
            );
            let c =
                policy_compiler::compile_image(&image, &policy.resolve().unwrap(), NOW_MS).unwrap();
            let got = c.profile.to_json().unwrap();
            check(
                &dir.join(format!("{name}.{suffix}")),
                got.as_bytes(),
                &mut failures,
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The syscalls `explain` is asked about, per ABI.
const EXPLAINED: &[&str] = &[
    "read", "ptrace", "mount", "getpid", "clone3", "clone", "exit",
];

#[test]
fn fleet_outputs_are_unchanged() {
    let dir = root().join("fleet");
    let mut policies: BTreeMap<String, Policy> = BTreeMap::new();
    for p in inputs(&dir.join("policies"), ".toml") {
        let policy = Policy::from_toml(&std::fs::read_to_string(&p).unwrap()).unwrap();
        policies.insert(stem(&p, ".toml"), policy);
    }
    let mut failures = Vec::new();
    for input in inputs(&dir, ".json") {
        let name = stem(&input, ".json");
        let obs: ImageObservations =
            serde_json::from_str(&std::fs::read_to_string(&input).unwrap()).unwrap();
        for (pname, policy) in &policies {
            let out = dir.join("out").join(&name).join(pname);
            let c = match policy_compiler::compile_image(&obs, &policy.resolve().unwrap(), NOW_MS) {
                Ok(c) => c,
                Err(e) => {
                    check(
                        &out.join("error.txt"),
                        format!("{e}\n").as_bytes(),
                        &mut failures,
                    );
                    continue;
                }
            };
            let mut files: BTreeMap<String, Vec<u8>> = c.files.clone();
            files.insert("report.txt".into(), c.report_text.clone().into_bytes());
            files.insert("report.json".into(), c.report_json.clone().into_bytes());
            let mut explain = String::new();
            for abi in [Abi::X86_64, Abi::I386] {
                for n in EXPLAINED {
                    let nr = schemas::syscalls::number(abi, n).unwrap();
                    let key = schemas::SyscallKey { abi, nr };
                    explain.push_str(&policy_compiler::explain(&c.decision, key));
                    explain.push('\n');
                }
            }
            files.insert("explain.txt".into(), explain.into_bytes());
            for (f, bytes) in &files {
                check(&out.join(f), bytes, &mut failures);
            }
            // No expected file without an output.
            if !bless() {
                let mut expected = Vec::new();
                list(&out, &out, &mut expected);
                for f in expected {
                    if !files.contains_key(&f) {
                        failures.push(format!("{}: expected, not written", out.join(f).display()));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn list(base: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd {
        let p = e.unwrap().path();
        if p.is_dir() {
            list(base, &p, out);
        } else {
            out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
        }
    }
}
