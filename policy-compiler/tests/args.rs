//! Argument rules (issue 11) from hand-built store answers: which
//! syscalls are narrowed, to which values, and the exact rules in every
//! format; the compiled program's verdicts from the pure evaluator on each
//! side of every rule (the real consumers are in tests/arg_rules_cli.rs).

use policy_compiler::compile::Compiled;
use policy_compiler::effective::Conditions;
use policy_compiler::oci::{Action, KernelVersion};
use policy_compiler::policy::{Mode, Policy};
use policy_compiler::{compile_image, EPERM};
use schemas::fleet::{ContainerIncidence, ImageObservations, IncidenceEntry};
use schemas::{
    syscalls, Abi, ArgEvidence, ArgField, ArgOverflow, ArgRecorded, ArgTotals, Phase, PhaseSet,
    SyscallKey,
};

const X: Abi = Abi::X86_64;
const I: Abi = Abi::I386;
const H: u64 = 3_600_000;
const T0: u64 = 1_780_000_000_000;
const WHOLE: u32 = u32::MAX;

fn key(abi: Abi, name: &str) -> SyscallKey {
    SyscallKey {
        abi,
        nr: syscalls::number(abi, name).unwrap(),
    }
}

/// What the fixture's containers use: every one of `NAMES` in x86_64, and
/// socket in i386 too.
const NAMES: &[&str] = &[
    "read",
    "write",
    "close",
    "exit_group",
    "socket",
    "personality",
    "mmap",
    "mprotect",
    "clone",
];

/// `n` containers on each of `hosts`, each using `NAMES` (x86_64) and
/// i386 `socket`; `extra` containers (host, incomplete, unverified) too.
fn fleet(hosts: &[&str], n: usize, extra: &[(&str, bool, bool)]) -> ImageObservations {
    let mut incidence = Vec::new();
    let mut i = 0u64;
    let mut add = |host: &str, incomplete: bool, unverified: bool| {
        let start = T0 + i * H;
        i += 1;
        let mut syscalls: Vec<IncidenceEntry> = NAMES
            .iter()
            .map(|n| key(X, n))
            .chain([key(I, "socket")])
            .map(|k| IncidenceEntry {
                abi: k.abi,
                nr: k.nr,
                phases: PhaseSet(Phase::Image.bit()),
                first_seen_ms: start,
                last_seen_ms: start + H,
            })
            .collect();
        syscalls.sort_by_key(|e| (e.abi, e.nr));
        incidence.push(ContainerIncidence {
            host_id: host.into(),
            boot_id: "b".into(),
            container_id: format!("c{i}"),
            started_at_ms: start,
            last_seen_ms: start + H,
            seccomp: "unconfined".into(),
            incomplete,
            unverified,
            syscalls,
        });
    };
    for h in hosts {
        for _ in 0..n {
            add(h, false, false);
        }
    }
    for (h, inc, unv) in extra {
        add(h, *inc, *unv);
    }
    ImageObservations::from_incidence("app:1", incidence)
}

fn f(index: u8, mask: u32) -> ArgField {
    ArgField { index, mask }
}

fn v(
    abi: Abi,
    name: &str,
    fields: &[ArgField],
    value: &[u32],
    hosts: u64,
    containers: u64,
) -> ArgTotals {
    let k = key(abi, name);
    ArgTotals {
        abi: k.abi,
        nr: k.nr,
        fields: fields.to_vec(),
        value: value.to_vec(),
        hosts,
        containers,
    }
}

fn recorded(containers: u64) -> Vec<ArgRecorded> {
    let mut r: Vec<ArgRecorded> = ["socket", "personality", "mmap", "mprotect", "clone"]
        .iter()
        .map(|n| key(X, n))
        .chain([key(I, "socket")])
        .map(|k| ArgRecorded {
            abi: k.abi,
            nr: k.nr,
            containers,
        })
        .collect();
    r.sort();
    r
}

/// The evidence of six containers on three hosts, and one rogue value.
fn evidence(containers: u64) -> ArgEvidence {
    let sock = [f(0, WHOLE), f(1, 0xf)];
    let prot = [f(2, 6)];
    let mut values = vec![
        v(X, "socket", &sock, &[2, 1], 3, 6),
        v(X, "socket", &sock, &[1, 2], 2, 4),
        // One container on one host: below the thresholds.
        v(X, "socket", &sock, &[17, 3], 1, 1),
        v(I, "socket", &sock, &[2, 2], 3, 6),
        v(X, "personality", &[f(0, WHOLE)], &[WHOLE], 3, 6),
        v(X, "mmap", &prot, &[0], 3, 6),
        v(X, "mmap", &prot, &[2], 3, 6),
        v(X, "mmap", &prot, &[4], 3, 6),
        v(X, "mprotect", &prot, &[0], 3, 6),
        v(X, "clone", &[f(0, 0x7e02_0000)], &[0], 3, 6),
    ];
    values.sort();
    ArgEvidence {
        values,
        overflow: Vec::new(),
        recorded: recorded(containers),
    }
}

fn enforcing() -> Policy {
    Policy {
        mode: Mode::Enforce,
        ..Policy::default()
    }
}

fn compile(obs: &ImageObservations, policy: &Policy) -> Compiled {
    compile_image(obs, &policy.resolve().unwrap(), T0 + 100 * H).unwrap()
}

fn rules_json(c: &Compiled) -> Vec<serde_json::Value> {
    let j: serde_json::Value = serde_json::from_slice(&c.files["seccomp.json"]).unwrap();
    j["syscalls"].as_array().unwrap().clone()
}

fn cmp(index: u8, mask: u32, value: u32) -> serde_json::Value {
    let mut m = serde_json::json!({"index": index, "value": mask, "op": "SCMP_CMP_MASKED_EQ"});
    if value != 0 {
        m["valueTwo"] = value.into();
    }
    m
}

#[test]
fn narrowed_syscalls_get_one_masked_rule_per_value_above_the_thresholds() {
    let mut obs = fleet(&["h1", "h2", "h3"], 2, &[]);
    obs.args = evidence(6);
    let c = compile(&obs, &enforcing());
    let a = &c.decision.args;
    let names: Vec<&str> = a.rules.keys().copied().collect();
    assert_eq!(
        names,
        ["clone", "mmap", "mprotect", "personality", "socket"]
    );
    let sock: Vec<Vec<u32>> = a.rules["socket"].values.iter().cloned().collect();
    // x86_64 and i386 values together (one rule per name for every ABI);
    // the rogue AF_PACKET value is left out.
    assert_eq!(sock, [vec![1, 2], vec![2, 1], vec![2, 2]]);
    assert_eq!(
        a.dropped,
        ["socket (x86_64) value arg0=0x11,arg1&0xf=0x3: 1 host(s) and 1 container(s), below the syscall thresholds (2 hosts, 2 containers)"]
    );
    assert!(a.name_only.is_empty(), "{:?}", a.name_only);

    let rules = rules_json(&c);
    // The name-only allow list keeps the others, without the narrowed ones.
    let first: Vec<&str> = rules[0]["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    for n in ["read", "write", "close", "exit_group"] {
        assert!(first.contains(&n), "{n} not in {first:?}");
    }
    for n in ["socket", "personality", "mmap", "mprotect", "clone"] {
        assert!(!first.contains(&n), "{n} still name-only");
    }
    // Then the argument entries, merged where names share a comparison.
    let arg_entries: Vec<(Vec<&str>, serde_json::Value)> = rules
        .iter()
        .filter(|r| r.get("args").is_some())
        .map(|r| {
            assert_eq!(r["action"], "SCMP_ACT_ALLOW");
            (
                r["names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap())
                    .collect(),
                r["args"].clone(),
            )
        })
        .collect();
    let want: Vec<(Vec<&str>, serde_json::Value)> = vec![
        (
            vec!["socket"],
            serde_json::json!([cmp(0, WHOLE, 1), cmp(1, 0xf, 2)]),
        ),
        (
            vec!["socket"],
            serde_json::json!([cmp(0, WHOLE, 2), cmp(1, 0xf, 1)]),
        ),
        (
            vec!["socket"],
            serde_json::json!([cmp(0, WHOLE, 2), cmp(1, 0xf, 2)]),
        ),
        (
            vec!["personality"],
            serde_json::json!([cmp(0, WHOLE, WHOLE)]),
        ),
        (vec!["clone"], serde_json::json!([cmp(0, 0x7e02_0000, 0)])),
        (vec!["mmap", "mprotect"], serde_json::json!([cmp(2, 6, 0)])),
        (vec!["mmap"], serde_json::json!([cmp(2, 6, 2)])),
        (vec!["mmap"], serde_json::json!([cmp(2, 6, 4)])),
    ];
    let mut got = arg_entries.clone();
    let mut want_sorted = want.clone();
    got.sort_by_key(|(n, a)| (n.clone(), a.to_string()));
    want_sorted.sort_by_key(|(n, a)| (n.clone(), a.to_string()));
    assert_eq!(got, want_sorted);
    // Never EQ, NE, LT or GT on these arguments.
    let text = String::from_utf8(c.files["seccomp.json"].clone()).unwrap();
    for op in ["SCMP_CMP_EQ", "SCMP_CMP_NE", "SCMP_CMP_LT", "SCMP_CMP_GT"] {
        assert!(!text.contains(&format!("\"{op}\"")), "{op} in the profile");
    }

    // The report says it.
    assert!(
        c.report_text.contains("argument rules"),
        "{}",
        c.report_text
    );
    assert!(
        c.report_text.contains(
            "  socket: arg0=0x1,arg1&0xf=0x2 | arg0=0x2,arg1&0xf=0x1 | arg0=0x2,arg1&0xf=0x2\n"
        ),
        "{}",
        c.report_text
    );
    assert!(
        policy_compiler::explain(&c.decision, key(X, "personality")).ends_with(
            "; only with these argument values (every other value gets the default action): arg0=0xffffffff"
        ),
        "{}",
        policy_compiler::explain(&c.decision, key(X, "personality"))
    );
    let rj: serde_json::Value = serde_json::from_str(&c.report_json).unwrap();
    assert_eq!(
        rj["args"]["rules"]["personality"]["values"],
        serde_json::json!([[WHOLE]])
    );
}

#[test]
fn the_compiled_program_allows_each_value_and_denies_the_others() {
    let mut obs = fleet(&["h1", "h2", "h3"], 2, &[]);
    obs.args = evidence(6);
    let c = compile(&obs, &enforcing());
    let eff = c
        .profile
        .resolve(&Conditions::from_bounding_mask(
            0,
            X,
            KernelVersion {
                kernel: 6,
                major: 18,
            },
        ))
        .unwrap();
    let nr = |abi, n| key(abi, n).nr;
    let allow = (Action::Allow, None);
    let deny = (Action::Errno, Some(EPERM));
    let a = |x: &[u64]| {
        let mut r = [0u64; 6];
        r[..x.len()].copy_from_slice(x);
        r
    };
    type Case = (Abi, &'static str, [u64; 6], (Action, Option<u32>));
    let cases: &[Case] = &[
        (X, "socket", a(&[2, 1]), allow),
        // SOCK_CLOEXEC | SOCK_NONBLOCK are outside the type mask.
        (X, "socket", a(&[2, 1 | 0x80000 | 0x800]), allow),
        // Upper bits of a 32-bit argument are masked off, never compared.
        (X, "socket", a(&[0xffff_ffff_0000_0002, 1]), allow),
        (X, "socket", a(&[17, 3]), deny),
        (X, "socket", a(&[16, 3]), deny),
        (X, "socket", a(&[2, 3]), deny),
        (I, "socket", a(&[2, 2]), allow),
        (I, "socket", a(&[40, 1]), deny),
        (X, "personality", a(&[0xffff_ffff]), allow),
        (X, "personality", a(&[0x0040_0000]), deny),
        (X, "mmap", a(&[0, 4096, 3]), allow),
        (X, "mmap", a(&[0, 4096, 7]), deny),
        (X, "mprotect", a(&[0, 4096, 1]), allow),
        (X, "mprotect", a(&[0, 4096, 5]), deny),
        (X, "clone", a(&[0x1200011]), allow),
        (X, "clone", a(&[0x1000_0000]), deny),
        (X, "read", a(&[0]), allow),
    ];
    for (abi, n, args, want) in cases {
        assert_eq!(
            eff.verdict(*abi, nr(*abi, n), *args),
            *want,
            "{abi} {n} {args:x?}"
        );
    }
    // The raw program gives the same answers (tests/arg_rules_cli.rs runs
    // it in the real kernel).
    assert!(c.files.contains_key("bpf/x86_64.bpf"));
}

#[test]
fn spo_and_systemd_say_the_same_rules() {
    let mut obs = fleet(&["h1", "h2", "h3"], 2, &[]);
    obs.args = evidence(6);
    let c = compile(&obs, &enforcing());
    let spo = String::from_utf8(c.files["seccompprofile.yaml"].clone()).unwrap();
    assert!(
        spo.contains(
            "  - action: SCMP_ACT_ALLOW\n    names:\n    - personality\n    args:\n    - index: 0\n      value: 4294967295\n      valueTwo: 4294967295\n      op: SCMP_CMP_MASKED_EQ\n"
        ),
        "{spo}"
    );
    let sd = String::from_utf8(c.files["systemd.conf"].clone()).unwrap();
    for line in [
        "RestrictAddressFamilies=AF_UNIX AF_INET\n",
        "RestrictNamespaces=yes\n",
        "LockPersonality=yes\n",
        "MemoryDenyWriteExecute=yes\n",
    ] {
        assert!(sd.contains(line), "{line:?} not in\n{sd}");
    }
    // W|X seen once: no MemoryDenyWriteExecute.
    let mut obs = fleet(&["h1", "h2", "h3"], 2, &[]);
    let mut e = evidence(6);
    e.values.push(v(X, "mmap", &[f(2, 6)], &[6], 3, 6));
    e.values.sort();
    obs.args = e;
    let c = compile(&obs, &enforcing());
    let sd = String::from_utf8(c.files["systemd.conf"].clone()).unwrap();
    assert!(!sd.contains("MemoryDenyWriteExecute"), "{sd}");
    assert!(sd.contains("LockPersonality=yes\n"), "{sd}");
}

#[test]
fn unknown_overflowed_or_mixed_values_keep_the_name_only_rule() {
    let sock_only =
        |c: &Compiled| -> Option<String> { c.decision.args.name_only.get("socket").cloned() };
    // A container that made the calls but recorded no values (an older
    // collector): 7 made socket, 6 recorded.
    let mut obs = fleet(&["h1", "h2", "h3"], 2, &[("h3", false, false)]);
    obs.args = evidence(6);
    let c = compile(&obs, &enforcing());
    assert_eq!(
        sock_only(&c).as_deref(),
        Some("x86_64: 1 of the 7 containers that made it recorded no values (an older collector, a max_wire_version below 7, or the ptrace backend)")
    );
    // The same for every narrowed syscall: that container made them all.
    assert!(c.decision.args.rules.is_empty());
    // An unverified container's missing values change nothing.
    let mut obs = fleet(&["h1", "h2", "h3"], 2, &[("h4", false, true)]);
    obs.args = evidence(6);
    let c = compile(&obs, &enforcing());
    assert_eq!(sock_only(&c), None);
    assert!(c.decision.args.rules.contains_key("socket"));
    // An incomplete container made it.
    let mut obs = fleet(&["h1", "h2", "h3"], 2, &[("h3", true, false)]);
    obs.args = evidence(7);
    let c = compile(&obs, &enforcing());
    assert_eq!(
        sock_only(&c).as_deref(),
        Some("x86_64: made by a container that lost calls, whose values may be missing")
    );
    // Overflow on one host.
    let mut obs = fleet(&["h1", "h2", "h3"], 2, &[]);
    obs.args = evidence(6);
    let k = key(X, "socket");
    obs.args.overflow = vec![ArgOverflow {
        abi: k.abi,
        nr: k.nr,
        hosts: 1,
        containers: 1,
    }];
    let c = compile(&obs, &enforcing());
    assert_eq!(
        sock_only(&c).as_deref(),
        Some("x86_64: more distinct values than the kernel records, on 1 host(s)")
    );
    let rules = rules_json(&c);
    assert!(rules[0]["names"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "socket"));
    // Different fields for one name.
    let mut obs = fleet(&["h1", "h2", "h3"], 2, &[]);
    let mut e = evidence(6);
    e.values
        .retain(|t| !(t.abi == I && t.nr == key(I, "socket").nr));
    e.values.push(v(I, "socket", &[f(0, WHOLE)], &[2], 3, 6));
    e.values.sort();
    obs.args = e;
    let c = compile(&obs, &enforcing());
    let why = sock_only(&c).unwrap();
    assert!(why.contains("different argument fields"), "{why}");
    // The policy narrows nothing.
    let mut obs = fleet(&["h1", "h2", "h3"], 2, &[]);
    obs.args = evidence(6);
    let p = Policy::from_toml("mode = \"enforce\"\nnarrow_args = []\n").unwrap();
    let c = compile(&obs, &p);
    assert!(c.decision.args.rules.is_empty());
    assert_eq!(
        c.decision.args.name_only.get("socket").map(String::as_str),
        Some("not in the policy's narrow_args")
    );
    assert!(!String::from_utf8(c.files["seccomp.json"].clone())
        .unwrap()
        .contains("\"args\""));
    // An unknown name is refused.
    let e = Policy::from_toml("narrow_args = [\"sockett\"]\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "policy: narrow_args = \"sockett\": no ABI has a syscall of that name"
    );
}

#[test]
fn a_syscall_allowed_for_another_reason_too_is_not_narrowed() {
    let mut obs = fleet(&["h1", "h2", "h3"], 2, &[]);
    obs.args = evidence(6);
    let p = Policy {
        must_allow: vec!["personality".into()],
        ..enforcing()
    };
    let c = compile(&obs, &p);
    assert_eq!(
        c.decision
            .args
            .name_only
            .get("personality")
            .map(String::as_str),
        Some("x86_64: in the policy's must_allow")
    );
    // No value above the thresholds: name-only, never an empty rule.
    let mut obs = fleet(&["h1", "h2", "h3"], 2, &[]);
    let mut e = evidence(6);
    for t in e
        .values
        .iter_mut()
        .filter(|t| t.nr == key(X, "clone").nr && t.abi == X)
    {
        t.hosts = 1;
        t.containers = 1;
    }
    obs.args = e;
    let c = compile(&obs, &enforcing());
    let why = c
        .decision
        .args
        .name_only
        .get("clone")
        .cloned()
        .unwrap_or_default();
    assert!(
        why.starts_with("no value met the syscall thresholds"),
        "{why}"
    );
}

#[test]
fn a_profile_near_the_runtimes_entry_cap_is_warned_about() {
    let mut obs = fleet(&["h1", "h2", "h3"], 2, &[]);
    let mut e = evidence(6);
    // 100 more (family, type) values, each on every host.
    for fam in 100..200u32 {
        e.values
            .push(v(X, "socket", &[f(0, WHOLE), f(1, 0xf)], &[fam, 1], 3, 6));
    }
    e.values.sort();
    obs.args = e;
    let c = compile(&obs, &enforcing());
    let entries = rules_json(&c).len();
    assert_eq!(
        entries, 110,
        "the name-only rule, 108 argument entries and the ENOSYS rule of probed names"
    );
    assert!(
        c.decision.warnings.contains(
            &"about 112 syscall entries with the argument rules: runtimes that pull profiles as OCI artifacts refuse more than 128; narrow fewer syscalls (narrow_args) if this grows".to_string()
        ),
        "{:?}",
        c.decision.warnings
    );
    // The fixture's own profile is far from it.
    let mut obs = fleet(&["h1", "h2", "h3"], 2, &[]);
    obs.args = evidence(6);
    assert!(compile(&obs, &enforcing()).decision.warnings.is_empty());
}

#[test]
fn constants_at_reachable_call_sites_widen_a_rule_with_the_reachability_tier() {
    use policy_compiler::compile::compile_image_with;
    use policy_compiler::reachable::{Reachability, Tier};
    let mut obs = fleet(&["h1", "h2", "h3"], 2, &[]);
    obs.args = evidence(6);
    let mut reach = Reachability::default();
    for n in NAMES {
        reach
            .syscalls
            .insert(key(X, n), format!("/bin/app: {n}@GLIBC_2.2.5 -> libc.so.6"));
    }
    reach.arg_sites.insert(
        key(X, "socket"),
        [
            // AF_INET6 stream: never observed.
            [Some(10), Some(1), Some(0)],
            // AF_INET stream with SOCK_CLOEXEC: observed once masked.
            [Some(2), Some(0x80001), Some(0)],
            // A family from a variable: widens nothing.
            [None, Some(2), Some(0)],
        ]
        .into_iter()
        .collect(),
    );
    let run = |tier: Tier| {
        let p = Policy {
            reachable: tier,
            ..enforcing()
        };
        compile_image_with(&obs, Some(&reach), &p.resolve().unwrap(), T0 + 100 * H).unwrap()
    };
    let inet6 = serde_json::json!([cmp(0, WHOLE, 10), cmp(1, 0xf, 1)]);
    let with = |c: &Compiled, action: &str| -> bool {
        rules_json(c).iter().any(|r| {
            r["action"] == action
                && r["args"] == inet6
                && r["names"] == serde_json::json!(["socket"])
        })
    };
    // log (the default tier) and allow: allowed, beside the observed
    // values (an SCMP_ACT_LOG entry with conditions beside the allow ones
    // would be ambiguous in libseccomp).
    for tier in [Tier::Log, Tier::Allow] {
        let c = run(tier);
        let rule = &c.decision.args.rules["socket"];
        assert_eq!(rule.values.len(), 3);
        assert_eq!(rule.reachable, [vec![10, 1]].into_iter().collect());
        assert!(with(&c, "SCMP_ACT_ALLOW"), "{:?}", rules_json(&c));
        assert!(!with(&c, "SCMP_ACT_LOG"));
        assert!(
            c.report_text.contains(&format!(
                "  socket: also allowed, at reachable call sites but never observed (reachable = {}): arg0=0xa,arg1&0xf=0x1\n",
                tier.as_str()
            )),
            "{}",
            c.report_text
        );
        // sandmine run accepts it.
        c.profile
            .resolve(&Conditions::from_bounding_mask(
                0,
                X,
                KernelVersion {
                    kernel: 6,
                    major: 18,
                },
            ))
            .unwrap();
    }
    // deny: only the observed values.
    let c = run(Tier::Deny);
    assert!(c.decision.args.rules["socket"].reachable.is_empty());
    assert!(!with(&c, "SCMP_ACT_ALLOW") && !with(&c, "SCMP_ACT_LOG"));
}

#[test]
fn a_rule_that_would_allow_every_value_stays_by_name() {
    use policy_compiler::compile::compile_image_with;
    use policy_compiler::reachable::Reachability;
    let mut obs = fleet(&["h1", "h2", "h3"], 2, &[]);
    obs.args = evidence(6);
    // mmap was seen with prot & 6 = 0, 2 and 4; a reachable site passes
    // PROT_READ|PROT_WRITE|PROT_EXEC (glibc's executable stacks): all four.
    let mut reach = Reachability::default();
    reach
        .syscalls
        .insert(key(X, "mmap"), "/bin/app: mmap".into());
    reach.arg_sites.insert(
        key(X, "mmap"),
        [[None, None, Some(7)]].into_iter().collect(),
    );
    let c = compile_image_with(
        &obs,
        Some(&reach),
        &enforcing().resolve().unwrap(),
        T0 + 100 * H,
    )
    .unwrap();
    assert!(!c.decision.args.rules.contains_key("mmap"));
    assert_eq!(
        c.decision.args.name_only.get("mmap").map(String::as_str),
        Some("every value of its recorded arguments is allowed (observed or at reachable call sites): a rule would deny nothing and only cost a filter walk")
    );
    // mprotect keeps its rule, now for prot & 6 = 0 only... and mmap's
    // shared entry is gone with it.
    assert_eq!(
        c.decision.args.rules["mprotect"].values,
        [vec![0]].into_iter().collect()
    );
}
