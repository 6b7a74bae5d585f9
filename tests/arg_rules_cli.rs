//! Argument rules (issue 11) against their real consumers: `sandmine mine`
//! records a probe's argument values in the kernel and writes argument
//! rules; each rule is then run under `sandmine run` (sandmine's own
//! classic-BPF compiler) and under runc (`docker run --security-opt
//! seccomp=FILE`, libseccomp's compiler), with probes on each side of every
//! rule, through `syscall` and `int $0x80`: an allowed value works, and a
//! value the rule does not list gets the profile's errno (EPERM). Every
//! denied probe succeeds with no filter, so the denial is the rule's.
//!
//! The probe is `tests/probes/argprobe.c` (one raw call per forked child).
//! Needs root, cc with static libc, dockerd and the test image
//! `sandmine-test/busybox:1` (tests/images/build.sh).

mod common;

use common::{Fixture, Profile};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const ARGPROBE: &str = include_str!("probes/argprobe.c");
const IMAGE: &str = "sandmine-test/busybox:1";

// What runc calls after it installs the filter (added to the mined
// profile's name-only allow list for the docker runs only).
include!("common/runc_needs.rs");

/// The calls mined: socket (family, type) through both ABIs, and
/// personality queries.
const MINED: &[&str] = &[
    "x86_64:41:2:1",
    "x86_64:41:1:2",
    "int80:359:2:2",
    "x86_64:135:0xffffffff",
    "int80:136:0xffffffff",
];

/// Probes and their outcome under the mined profile, by either consumer.
/// `ok` with no filter for every one of them (checked first).
const PROBES: &[(&str, &str)] = &[
    // The mined values.
    ("x86_64:41:2:1", "ok"),
    ("x86_64:41:1:2", "ok"),
    ("int80:359:2:2", "ok"),
    ("x86_64:135:0xffffffff", "ok"),
    ("int80:136:0xffffffff", "ok"),
    // The flags above the type mask do not matter (SOCK_CLOEXEC,
    // SOCK_NONBLOCK).
    ("x86_64:41:2:0x80801", "ok"),
    // Upper bits of the 32-bit family are masked off, never compared (an
    // EQ rule would deny this call, which the kernel runs as family 2).
    ("x86_64:41:0x100000002:1", "ok"),
    // A value of one ABI is allowed in the other: one rule per name.
    ("int80:359:1:2", "ok"),
    ("x86_64:41:2:2", "ok"),
    // Other families or types: the profile's errno.
    ("x86_64:41:16:3", "E1"),
    ("x86_64:41:1:1", "E1"),
    ("int80:359:16:3", "E1"),
    ("int80:359:1:1", "E1"),
    // Other personas: READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE.
    ("x86_64:135:0x400000", "E1"),
    ("int80:136:0x40000", "E1"),
];

fn outcomes(stdout: &str, specs: &[&str], who: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for l in stdout.lines() {
        if let Some((k, v)) = l.rsplit_once('=') {
            m.insert(k.to_string(), v.to_string());
        }
    }
    assert_eq!(
        m.len(),
        specs.len(),
        "{who}: expected one line per probe, got {stdout:?}"
    );
    m
}

fn want(f: impl Fn(&str) -> &'static str) -> BTreeMap<String, String> {
    PROBES
        .iter()
        .map(|(s, _)| (s.to_string(), f(s).to_string()))
        .collect()
}

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("docker {args:?}: {e}"))
}

#[test]
fn mined_argument_rules_hold_under_sandmine_run_and_runc() {
    let f = Fixture::new();
    let probe = f.probe_static("argprobe", ARGPROBE);
    let probe_s = probe.to_str().unwrap();
    let out = f.arg("p.json");
    let mut args = vec!["mine", "--backend", "ebpf", "-o", &out, "--", probe_s];
    args.extend(MINED);
    let o = f.sandmine(&args);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    let p = Profile::load(Path::new(&out));

    // The rules: socket and personality narrowed to exactly the mined
    // values, each comparison MASKED_EQ on the recorded field.
    let narrowed = p.narrowed();
    for n in ["socket", "personality", "clone"] {
        assert!(
            narrowed.contains(&n.to_string()),
            "{n} not narrowed: {narrowed:?}"
        );
    }
    let rules = p.json["syscalls"].as_array().unwrap();
    let values = |name: &str| -> Vec<Vec<(u64, u64, u64)>> {
        let mut v: Vec<Vec<(u64, u64, u64)>> = rules
            .iter()
            .filter(|r| {
                r["names"].as_array().unwrap().iter().any(|n| n == name)
                    && r["args"].as_array().is_some()
            })
            .map(|r| {
                r["args"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| {
                        assert_eq!(a["op"], "SCMP_CMP_MASKED_EQ", "{a}");
                        (
                            a["index"].as_u64().unwrap(),
                            a["value"].as_u64().unwrap(),
                            a["valueTwo"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        values("socket"),
        [
            vec![(0, 0xffff_ffff, 1), (1, 0xf, 2)],
            vec![(0, 0xffff_ffff, 2), (1, 0xf, 1)],
            vec![(0, 0xffff_ffff, 2), (1, 0xf, 2)],
        ]
    );
    assert_eq!(values("personality"), [vec![(0, 0xffff_ffff, 0xffff_ffff)]]);
    assert_eq!(
        p.architectures(),
        ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "the int $0x80 calls make i386 a profile ABI"
    );

    let specs: Vec<&str> = PROBES.iter().map(|(s, _)| *s).collect();
    // With no filter, every probe succeeds: the denials below are the
    // rules'.
    let o = Command::new(&probe).args(&specs).output().unwrap();
    assert!(o.status.success(), "{o:?}");
    assert_eq!(
        outcomes(&String::from_utf8_lossy(&o.stdout), &specs, "no filter"),
        want(|_| "ok")
    );
    let expected: BTreeMap<String, String> = PROBES
        .iter()
        .map(|(s, w)| (s.to_string(), w.to_string()))
        .collect();

    // sandmine run.
    let mut run = vec!["run", "--profile", &out, "--", probe_s];
    run.extend(&specs);
    let o = f.sandmine(&run);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(outcomes(&o.stdout, &specs, "sandmine run"), expected);

    // runc, through docker, with what runc itself needs added by name.
    let mut json = p.json.clone();
    let first = json["syscalls"][0]["names"].as_array_mut().unwrap();
    for n in RUNC_NEEDS {
        if !first.iter().any(|x| x == n) && !narrowed.contains(&n.to_string()) {
            first.push((*n).into());
        }
    }
    let docker_profile = f.path("docker.json");
    std::fs::write(&docker_profile, serde_json::to_string(&json).unwrap()).unwrap();
    let name = format!("sandmine-argrules-{}", std::process::id());
    let seccomp = format!("seccomp={}", docker_profile.display());
    let mount = format!("{}:/probe:ro", probe.parent().unwrap().display());
    let mut args = vec![
        "run",
        "--rm",
        "--network",
        "none",
        "--name",
        &name,
        "--security-opt",
        &seccomp,
        "-v",
        &mount,
        IMAGE,
        "/probe/argprobe",
    ];
    args.extend(&specs);
    let o = docker(&args);
    assert!(
        o.status.success(),
        "docker run: {o:?} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        outcomes(&String::from_utf8_lossy(&o.stdout), &specs, "docker run"),
        expected
    );
}
