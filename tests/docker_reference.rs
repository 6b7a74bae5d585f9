//! `sandmine run --profile` against the reference, `docker run
//! --security-opt seccomp=FILE` (dockerd 20.10.24, runc 1.1.5, libseccomp
//! 2.5.4 here): for the same profile and the same bounding capability set,
//! every probe (syscall, ABI, arguments) gets the same verdict: the same
//! errno, a kill, or the same answer of the kernel when allowed.
//!
//! The probe is `tests/probes/argprobe.c`, built static and mounted into
//! the local test image `sandmine-test/busybox:1` (tests/images/build.sh);
//! sandmine runs it on the host under `setpriv --bounding-set` with the
//! container's bounding set, read from a container of the same run options.
//! Each verdict that is not an allow is also checked against the pure
//! evaluator (`EffectiveProfile::verdict`).
//!
//! Profiles: Docker's own default of this version
//! (`policy-compiler/tests/fixtures/docker/`) with Docker's default
//! capabilities and with CAP_SYS_ADMIN; a profile with argument rules of
//! every operator; and seeded random profiles. The profiles that deny
//! syscalls outright leave runc's own needs allowed (see [`RUNC_NEEDS`]).
//!
//! Not compared: `defaultErrnoRet`, which dockerd 20.10 drops (its default
//! answers EPERM whatever the profile says; sandmine honours it, as Docker
//! 23 and later do).

use policy_compiler::effective::{Conditions, EffectiveProfile};
use policy_compiler::oci::{Action, KernelVersion, OciProfile, CAPABILITIES};
use schemas::Abi;
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

const SANDMINE: &str = env!("CARGO_BIN_EXE_sandmine");
const IMAGE: &str = "sandmine-test/busybox:1";

include!("common/runc_needs.rs");

/// Syscalls whose answer does not depend on their arguments and that
/// always succeed when allowed: the targets of generated profiles. Each
/// with its x86_64 and i386 numbers and the names in both tables.
const TARGETS: &[(&[&str], u32, u32)] = &[
    (&["getpgrp"], 111, 65),
    (&["sched_yield"], 24, 158),
    (&["gettid"], 186, 224),
    (&["getegid", "getegid32"], 108, 202),
    (&["getgid", "getgid32"], 104, 200),
    (&["geteuid", "geteuid32"], 107, 201),
    (&["getuid", "getuid32"], 102, 199),
    (&["umask"], 95, 60),
];

static SEQ: AtomicU32 = AtomicU32::new(0);

fn need(tool: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`{tool}` is not on PATH: install it (scripts/install-deps.sh)"))
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"))
}

fn ok(cmd: &mut Command) -> String {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): stdout {:?} stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// A directory with the static probe, mounted into containers.
struct Bench {
    dir: tempfile::TempDir,
    docker: PathBuf,
}

impl Bench {
    fn new() -> Bench {
        let docker = need("docker");
        let out =
            run(Command::new(&docker).args(["image", "inspect", "--format", "{{.Id}}", IMAGE]));
        assert!(
            out.status.success(),
            "docker image {IMAGE} is missing or docker is down ({}): run tests/images/build.sh",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let dir = tempfile::Builder::new()
            .prefix("sandmine-dockerref-")
            .tempdir()
            .expect("tempdir");
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/probes/argprobe.c");
        ok(Command::new(need("cc"))
            .args(["-static", "-O1", "-Wall", "-Werror", "-o"])
            .arg(dir.path().join("argprobe"))
            .arg(src));
        Bench { dir, docker }
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).expect("write profile");
        p
    }

    fn docker_run(&self, profile: &str, cap_add: &[&str], args: &[&str]) -> Output {
        let mut cmd = Command::new(&self.docker);
        cmd.args(["run", "--rm", "--network", "none", "--name"])
            .arg(format!(
                "sandmine-dockerref-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::Relaxed)
            ))
            .arg("--security-opt")
            .arg(format!("seccomp={profile}"))
            .arg("-v")
            .arg(format!("{}:/probe:ro", self.dir.path().display()));
        for c in cap_add {
            cmd.args(["--cap-add", c]);
        }
        cmd.arg(IMAGE).args(args);
        run(&mut cmd)
    }

    /// The bounding set of a container run with `cap_add`.
    fn container_bounding(&self, cap_add: &[&str]) -> u64 {
        let out = self.docker_run("unconfined", cap_add, &["cat", "/proc/self/status"]);
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text
            .lines()
            .find_map(|l| l.strip_prefix("CapBnd:"))
            .unwrap_or_else(|| panic!("no CapBnd in {text:?} ({:?})", out));
        u64::from_str_radix(line.trim(), 16).expect("hex CapBnd")
    }

    /// Outcomes of `specs` in a container under `profile`.
    fn docker_outcomes(
        &self,
        profile: &Path,
        cap_add: &[&str],
        specs: &[String],
    ) -> BTreeMap<String, String> {
        let mut args = vec!["/probe/argprobe"];
        args.extend(specs.iter().map(String::as_str));
        let out = self.docker_run(&profile.display().to_string(), cap_add, &args);
        outcomes(&out, specs, "docker run")
    }

    /// Outcomes of `specs` under `sandmine run`, with this bounding set.
    fn sandmine_outcomes(
        &self,
        profile: &Path,
        bounding: u64,
        specs: &[String],
    ) -> BTreeMap<String, String> {
        let keep: Vec<String> = CAPABILITIES
            .iter()
            .enumerate()
            .filter(|(bit, _)| bounding >> bit & 1 == 1)
            .map(|(_, c)| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
            .collect();
        let mut set = String::from("-all");
        for k in &keep {
            set.push(',');
            set.push_str(k);
        }
        let mut cmd = Command::new(need("setpriv"));
        cmd.args(["--bounding-set", &set, "--", SANDMINE, "run", "--profile"])
            .arg(profile)
            .arg("--")
            .arg(self.dir.path().join("argprobe"))
            .args(specs)
            .current_dir(self.dir.path());
        // SAFETY: setrlimit is async-signal-safe; nothing else runs here.
        // No core files from the SIGSYS kills.
        unsafe {
            cmd.pre_exec(|| {
                let zero = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: 0,
                };
                if libc::setrlimit(libc::RLIMIT_CORE, &zero) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = run(&mut cmd);
        outcomes(&out, specs, "sandmine run")
    }
}

/// `SPEC=RESULT` lines into a map; every spec must have one.
fn outcomes(out: &Output, specs: &[String], what: &str) -> BTreeMap<String, String> {
    assert!(
        out.status.success(),
        "{what} failed ({}): stdout {:?} stderr {:?}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let map: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(a, b)| (a.to_string(), b.to_string()))
        })
        .collect();
    for s in specs {
        assert!(map.contains_key(s), "{what}: no outcome for {s}: {map:?}");
    }
    map
}

/// The probe's ABI name, number and arguments of a spec.
fn parse_spec(spec: &str) -> (Abi, u32, [u64; 6]) {
    let mut parts = spec.split(':');
    let abi = parts.next().expect("abi");
    let num = |t: &str| -> u64 {
        match t.strip_prefix("0x") {
            Some(h) => u64::from_str_radix(h, 16).expect("hex"),
            None => t.parse().expect("number"),
        }
    };
    let nr = num(parts.next().expect("nr")) as u32;
    let mut args = [0u64; 6];
    for (i, a) in parts.enumerate() {
        args[i] = num(a);
    }
    match abi {
        "x86_64" => (Abi::X86_64, nr, args),
        "int80" => (Abi::I386, nr, args),
        "x32" => (Abi::X32, nr | 0x4000_0000, args),
        other => panic!("abi {other}"),
    }
}

/// What the evaluator predicts the probe prints, unless the call is let
/// through (then the kernel answers).
fn predicted(eff: &EffectiveProfile, spec: &str) -> Option<String> {
    let (abi, nr, args) = parse_spec(spec);
    let (action, errno) = eff.verdict(abi, nr, args);
    match action {
        Action::Allow | Action::Log => None,
        Action::Errno => Some(format!("E{}", errno.expect("errno"))),
        Action::KillProcess | Action::KillThread | Action::Kill | Action::Trap => {
            Some("kill:31".into())
        }
    }
}

fn host_kernel() -> KernelVersion {
    let r = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
    KernelVersion::from_release(r.trim()).expect("release")
}

/// Runs `specs` under `profile` both ways with the capabilities of
/// `docker run --cap-add cap_add`; asserts equal outcomes, each non-allow
/// one as the evaluator predicts, and `expect` (spec -> outcome) where
/// given. Returns the outcomes.
fn compare(
    bench: &Bench,
    profile: &Path,
    cap_add: &[&str],
    specs: &[String],
) -> BTreeMap<String, String> {
    let bounding = bench.container_bounding(cap_add);
    let docker = bench.docker_outcomes(profile, cap_add, specs);
    let ours = bench.sandmine_outcomes(profile, bounding, specs);
    let text = std::fs::read_to_string(profile).expect("profile");
    let eff = OciProfile::parse(&text)
        .expect("parses")
        .resolve(&Conditions::from_bounding_mask(
            bounding,
            Abi::X86_64,
            host_kernel(),
        ))
        .expect("resolves");
    let mut diffs = Vec::new();
    for s in specs {
        let (d, o) = (&docker[s], &ours[s]);
        if d != o {
            diffs.push(format!("{s}: docker {d}, sandmine {o}"));
        }
        if let Some(want) = predicted(&eff, s) {
            if &want != d {
                diffs.push(format!("{s}: evaluator {want}, docker {d}"));
            }
        }
    }
    assert!(
        diffs.is_empty(),
        "{} differences:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
    docker
}

fn specs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn docker_default() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("policy-compiler/tests/fixtures/docker/default-v20.10.24.json")
}

/// Probes of Docker's default profile: argument rules (personality,
/// clone), capability-conditional rules, arch-conditional rules, the
/// minKernel rule, runc's ENOSYS above the profile's last syscall, i386
/// through int 0x80 and x32. Arguments are chosen so that an allowed call
/// is harmless and answers the same in a container and on the host.
const DEFAULT_PROBES: &[&str] = &[
    "x86_64:135:0",
    "x86_64:135:8",
    "x86_64:135:0x20000",
    "x86_64:135:0x20008",
    "x86_64:135:0xffffffff",
    "x86_64:135:1",
    "x86_64:135:0x100000000",
    "x86_64:135:0x100000008",
    "x86_64:135:0xffffffffffffffff",
    "int80:136:0",
    "int80:136:8",
    "int80:136:1",
    "int80:136:0xffffffff",
    "int80:136:0x100000008",
    "x86_64:56:0x11",
    "x86_64:56:0x10000011",
    "x86_64:56:0x20011",
    "x86_64:56:0x100000011",
    "int80:120:0x11",
    "int80:120:0x10000011",
    "x86_64:435",
    "int80:435",
    "x86_64:321:1000",
    "int80:357:1000",
    "x86_64:161:0",
    "int80:61:0",
    "x86_64:101:2:0",
    "int80:26:2:0",
    "x86_64:158:0x1003:0",
    "int80:384:0x1003:0",
    "x86_64:154:0:0:0",
    "int80:123:0:0:0",
    "x86_64:163:1",
    "x86_64:103:1000",
    "x86_64:312:0:0:1000",
    "x86_64:111",
    "x86_64:165",
    "int80:21",
    "x86_64:41:2:1:0",
    "int80:359:2:1:0",
    "int80:102:1:0",
    "x86_64:400",
    "x86_64:450",
    "x86_64:1000",
    "int80:460",
    "int80:1000",
    "x32:39",
    "x32:1000",
];

#[test]
fn docker_default_profile_with_default_capabilities() {
    let bench = Bench::new();
    let got = compare(&bench, &docker_default(), &[], &specs(DEFAULT_PROBES));
    // A few pinned facts, beyond "equal".
    for (spec, want) in [
        ("x86_64:135:8", "ok"),
        ("x86_64:135:0x100000008", "E1"),
        ("int80:136:0x100000008", "ok"),
        ("x86_64:56:0x10000011", "E1"),
        ("x86_64:435", "E38"),
        ("x86_64:161:0", "E14"),
        ("x86_64:1000", "E38"),
        ("x86_64:400", "E1"),
    ] {
        assert_eq!(got[spec], want, "{spec}");
    }
}

#[test]
fn docker_default_profile_with_cap_sys_admin() {
    let bench = Bench::new();
    let got = compare(
        &bench,
        &docker_default(),
        &["SYS_ADMIN"],
        &specs(DEFAULT_PROBES),
    );
    assert_eq!(got["x86_64:56:0x10000011"], "ok");
    assert_eq!(got["x86_64:435"], "E22");
    assert_eq!(got["x86_64:321:1000"], "E22");
}

/// A profile allowing everything runc and the probe need (every name of
/// the x86 tables but the targets), then `rules` (JSON, each with a
/// leading comma).
fn generated_profile(default: &str, rules: &str) -> String {
    let targets: Vec<&str> = TARGETS.iter().flat_map(|t| t.0.iter().copied()).collect();
    let mut names: Vec<&str> = [Abi::X86_64, Abi::I386]
        .iter()
        .flat_map(|a| schemas::syscalls::table(*a).iter().map(|(_, n)| *n))
        .filter(|n| !targets.contains(n))
        .collect();
    names.sort();
    names.dedup();
    for n in RUNC_NEEDS {
        assert!(names.contains(n), "{n}");
    }
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    format!(
        r#"{{"defaultAction": "{default}",
  "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
  "syscalls": [{{"names": [{}], "action": "SCMP_ACT_ALLOW"}}{rules}]}}"#,
        quoted.join(", ")
    )
}

#[test]
fn argument_rules_of_every_operator() {
    let bench = Bench::new();
    let rules = r#",
  {"names": ["getpgrp"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 7, "op": "SCMP_CMP_NE"}]},
  {"names": ["sched_yield"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13, "args": [{"index": 1, "value": 4294967296, "op": "SCMP_CMP_LT"}]},
  {"names": ["gettid"], "action": "SCMP_ACT_ERRNO", "errnoRet": 14, "args": [{"index": 2, "value": 4294967295, "op": "SCMP_CMP_LE"}]},
  {"names": ["getegid", "getegid32"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 2, "value": 2147483648, "op": "SCMP_CMP_GE"}]},
  {"names": ["getgid", "getgid32"], "action": "SCMP_ACT_ERRNO", "errnoRet": 16, "args": [{"index": 0, "value": 18446744069414584320, "op": "SCMP_CMP_GT"}]},
  {"names": ["geteuid", "geteuid32"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 65280, "valueTwo": 4608, "op": "SCMP_CMP_MASKED_EQ"}]},
  {"names": ["getuid", "getuid32"], "action": "SCMP_ACT_KILL_PROCESS", "args": [{"index": 0, "value": 9, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 10, "op": "SCMP_CMP_EQ"}]},
  {"names": ["umask"], "action": "SCMP_ACT_TRAP", "args": [{"index": 0, "value": 4294967330, "op": "SCMP_CMP_EQ"}]}"#;
    let p = bench.write("ops.json", &generated_profile("SCMP_ACT_ERRNO", rules));
    let want: &[(&str, &str)] = &[
        // NE 7: 64-bit on x86_64, the low word on i386.
        ("x86_64:111:7", "E1"),
        ("x86_64:111:8", "ok"),
        ("x86_64:111:0x100000007", "ok"),
        ("int80:65:7", "E1"),
        ("int80:65:0x100000007", "E1"),
        // LT 2^32.
        ("x86_64:24:0:0xffffffff", "E13"),
        ("x86_64:24:0:0x100000000", "E1"),
        ("int80:158:0:0xffffffff", "E1"),
        // LE 2^32 - 1.
        ("x86_64:186:0:0:0xffffffff", "E14"),
        ("x86_64:186:0:0:0x100000000", "E1"),
        ("int80:224:0:0:0x100000000", "E14"),
        // GE 2^31.
        ("x86_64:108:0:0:0x7fffffff", "E1"),
        ("x86_64:108:0:0:0x80000000", "ok"),
        ("int80:202:0:0:0x80000000", "ok"),
        ("int80:202:0:0:0x7fffffff", "E1"),
        // GT 0xffffffff00000000.
        ("x86_64:104:0xffffffffffffffff", "E16"),
        ("x86_64:104:0xffffffff00000000", "E1"),
        ("int80:200:1", "E16"),
        ("int80:200:0", "E1"),
        // MASKED_EQ 0xff00 / 0x1200.
        ("x86_64:107:0x1234", "ok"),
        ("x86_64:107:0x1334", "E1"),
        ("x86_64:107:0x100001200", "ok"),
        ("int80:201:0x1299", "ok"),
        // EQ 9 or EQ 10 (a repeated index: split, ORed), killing.
        ("x86_64:102:9", "kill:31"),
        ("x86_64:102:10", "kill:31"),
        ("x86_64:102:11", "E1"),
        ("int80:199:10", "kill:31"),
        // EQ 2^32 + 0x22, trapping: on i386 only the low word counts.
        ("x86_64:95:0x100000022", "kill:31"),
        ("x86_64:95:0x22", "E1"),
        ("int80:60:0x22", "kill:31"),
    ];
    let s: Vec<String> = want.iter().map(|(s, _)| s.to_string()).collect();
    let got = compare(&bench, &p, &[], &s);
    for (spec, w) in want {
        assert_eq!(&got[*spec], w, "{spec}");
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
}

const EDGES: &[u64] = &[
    0,
    1,
    7,
    0x22,
    0x1200,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_ffff,
    0x1_0000_0000,
    0x1_0000_0022,
    0xffff_ffff_0000_0000,
    u64::MAX,
];

const OPS: &[&str] = &[
    "SCMP_CMP_NE",
    "SCMP_CMP_LT",
    "SCMP_CMP_LE",
    "SCMP_CMP_EQ",
    "SCMP_CMP_GE",
    "SCMP_CMP_GT",
    "SCMP_CMP_MASKED_EQ",
];

/// A random profile over [`TARGETS`] (one action per target, so that no
/// two argument rules of a syscall disagree) and probes of every target
/// on both ABIs.
fn random_case(seed: u64) -> (String, Vec<String>) {
    let mut r = Rng(seed);
    let default = *r.pick(&[
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_TRAP",
    ]);
    let mut rules = String::new();
    for (names, _, _) in TARGETS {
        let (action, errno) = match r.below(5) {
            0 => ("SCMP_ACT_ALLOW", None),
            1 | 2 => ("SCMP_ACT_ERRNO", Some(2 + r.below(120))),
            3 => ("SCMP_ACT_KILL_PROCESS", None),
            _ => (
                *r.pick(&["SCMP_ACT_TRAP", "SCMP_ACT_LOG", "SCMP_ACT_KILL"]),
                None,
            ),
        };
        for _ in 0..r.below(3) {
            let args: Vec<String> = (0..r.below(4))
                .map(|_| {
                    format!(
                        r#"{{"index": {}, "value": {}, "valueTwo": {}, "op": "{}"}}"#,
                        r.below(3),
                        r.pick(EDGES),
                        r.pick(EDGES),
                        r.pick(OPS)
                    )
                })
                .collect();
            let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
            rules.push_str(&format!(
                r#",
  {{"names": [{}], "action": "{action}"{}, "args": [{}]}}"#,
                quoted.join(", "),
                errno.map_or(String::new(), |e| format!(r#", "errnoRet": {e}"#)),
                args.join(", ")
            ));
        }
    }
    let mut probes = Vec::new();
    for (_, x86, i386) in TARGETS {
        for _ in 0..4 {
            let (a, b, c) = (r.pick(EDGES), r.pick(EDGES), r.pick(EDGES));
            probes.push(format!("x86_64:{x86}:{a:#x}:{b:#x}:{c:#x}"));
            probes.push(format!("int80:{i386}:{a:#x}:{b:#x}:{c:#x}"));
        }
    }
    probes.push("x86_64:1000".into());
    probes.push("int80:1000".into());
    probes.sort();
    probes.dedup();
    (generated_profile(default, &rules), probes)
}

#[test]
fn seeded_random_profiles() {
    let bench = Bench::new();
    for seed in 0x5eed_0001u64..=0x5eed_0010 {
        let (profile, probes) = random_case(seed);
        let p = bench.write(&format!("random-{seed:x}.json"), &profile);
        let got = compare(&bench, &p, &[], &probes);
        // Every probe answers as predicted: allowed targets succeed, and
        // the kernel has no syscall 1000.
        let text = std::fs::read_to_string(&p).expect("read");
        let eff = OciProfile::parse(&text)
            .expect("parses")
            .resolve(&Conditions::from_bounding_mask(
                bench.container_bounding(&[]),
                Abi::X86_64,
                host_kernel(),
            ))
            .expect("resolves");
        for s in &probes {
            let allowed = if s.ends_with(":1000") { "E38" } else { "ok" };
            let want = predicted(&eff, s).unwrap_or_else(|| allowed.into());
            assert_eq!(got[s], want, "seed {seed:#x} {s}");
        }
    }
}
