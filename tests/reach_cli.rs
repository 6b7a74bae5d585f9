//! Static reachability joined with mining, end to end (`sandmine
//! mine-image --reachable`): a program with a syscall on a path the mining
//! run never takes. Mined alone, its profile breaks that path; joined with
//! what the program can reach, the path runs, and the kernel logs it.
//!
//! The program is C, compiled static at test time, in an image imported
//! from a one-file root. Needs root, dockerd and gcc with static glibc
//! (scripts/install-deps.sh); the test fails, never skips, without them.

mod common;

use common::Fixture;
use serde_json::Value;
use std::process::Command;

const PROBE_C: &str = r#"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int fd = open("/tmp/probe.data", O_CREAT | O_WRONLY | O_TRUNC, 0600);
    if (fd < 0) { perror("open"); return 2; }
    if (write(fd, "x", 1) != 1) { perror("write"); return 2; }
    if (argc > 1 && strcmp(argv[1], "admin") == 0) {
        /* The admin path: mining never runs it. */
        if (fdatasync(fd) != 0) { perror("fdatasync"); return 3; }
        puts("admin ok");
        return 0;
    }
    puts("serve ok");
    return 0;
}
"#;

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the docker client ({e})"))
}

/// Builds the probe image `sandmine-test/reach-probe:<pid>`; removed on drop.
struct ProbeImage {
    name: String,
}

impl ProbeImage {
    fn build(fx: &Fixture) -> ProbeImage {
        let root = fx.path("rootfs");
        std::fs::create_dir_all(root.join("tmp")).expect("mkdir");
        std::fs::write(fx.path("probe.c"), PROBE_C).expect("write probe.c");
        let out = Command::new("gcc")
            .args(["-static", "-O1", "-o"])
            .arg(root.join("probe"))
            .arg(fx.path("probe.c"))
            .output()
            .expect("gcc (scripts/install-deps.sh installs it)");
        assert!(
            out.status.success(),
            "gcc -static: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let name = format!("sandmine-test/reach-probe:{}", std::process::id());
        let tar = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .args(["-cf", "-", "."])
            .output()
            .expect("tar");
        assert!(tar.status.success());
        let mut import = Command::new("docker")
            .args(["import", "-", &name])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("docker import");
        {
            use std::io::Write;
            let mut stdin = import.stdin.take().expect("stdin");
            stdin.write_all(&tar.stdout).expect("send the root");
        }
        assert!(import.wait().expect("docker import").success());
        ProbeImage { name }
    }
}

impl Drop for ProbeImage {
    fn drop(&mut self) {
        let _ = docker(&["rmi", "-f", &self.name]);
    }
}

fn mine(fx: &Fixture, image: &str, out: &str, extra: &[&str]) -> Value {
    let mut args = vec!["mine-image", "-q", "-o", out];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[image, "--", "/probe", "serve"]);
    let o = fx.command(&args).output().expect("sandmine mine-image");
    assert!(
        o.status.success(),
        "mine-image {extra:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(fx.path(out)).expect("profile"))
        .expect("profile JSON")
}

/// `docker run` of the probe under `profile`: (exit code, stdout + stderr).
fn run_under(fx: &Fixture, image: &str, profile: &str, arg: &str) -> (i32, String) {
    let o = docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "--security-opt",
        &format!("seccomp={}", fx.arg(profile)),
        image,
        "/probe",
        arg,
    ]);
    (
        o.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
        .trim()
        .to_string(),
    )
}

fn rule_names(p: &Value, action: &str) -> Vec<String> {
    p["syscalls"]
        .as_array()
        .expect("syscalls")
        .iter()
        .filter(|r| r["action"] == action)
        .flat_map(|r| r["names"].as_array().expect("names").iter())
        .map(|n| n.as_str().expect("name").to_string())
        .collect()
}

#[test]
fn the_joined_profile_runs_a_path_mining_never_took() {
    let fx = Fixture::new();
    let img = ProbeImage::build(&fx);

    let mined = mine(&fx, &img.name, "mined.json", &["--reachable", "off"]);
    let joined = mine(
        &fx,
        &img.name,
        "joined.json",
        &["--report", &fx.arg("joined.txt")],
    );

    // The tier adds a log rule and changes nothing else that is allowed.
    assert!(rule_names(&mined, "SCMP_ACT_LOG").is_empty());
    let logged = rule_names(&joined, "SCMP_ACT_LOG");
    assert!(logged.contains(&"fdatasync".to_string()), "{logged:?}");
    assert!(!rule_names(&mined, "SCMP_ACT_ALLOW").contains(&"fdatasync".to_string()));
    // Static reachability also widens argument rules (issue 11): the
    // probe's static glibc reaches mprotect with PROT_READ|PROT_WRITE|
    // PROT_EXEC as a constant (`__nptl_change_stack_perm`,
    // `_dl_make_stacks_executable`), so the joined profile allows
    // mprotect with arg2&6=6 too. Every other allowed rule is the same.
    let allows = |p: &Value| -> Vec<Value> {
        p["syscalls"]
            .as_array()
            .expect("syscalls")
            .iter()
            .filter(|r| r["action"] == "SCMP_ACT_ALLOW")
            .cloned()
            .collect()
    };
    let (mined_allows, joined_allows) = (allows(&mined), allows(&joined));
    for r in &mined_allows {
        assert!(joined_allows.contains(r), "{r:#}");
    }
    let widened: Vec<&Value> = joined_allows
        .iter()
        .filter(|r| !mined_allows.contains(r))
        .collect();
    assert_eq!(
        widened,
        vec![&serde_json::json!({
            "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 2, "op": "SCMP_CMP_MASKED_EQ", "value": 6, "valueTwo": 6}],
            "comment": "allowed only with arg2&0x6=0x6: a value recorded under the policy's thresholds, or a constant at a reachable call site (see the report)",
            "names": ["mprotect"],
        })]
    );
    // Nothing outside Docker's default or high-risk joins without being
    // observed (glibc's static startup cannot reach them anyway; the
    // report lists any that were held back).
    for n in ["mount", "ptrace", "bpf", "unshare", "init_module", "reboot"] {
        assert!(!logged.contains(&n.to_string()), "{n} logged");
    }
    assert_eq!(
        joined["sandmine"]["logged"]["x86_64"]
            .as_array()
            .expect("metadata lists the logged names")
            .len(),
        logged.len()
    );
    let report = std::fs::read_to_string(fx.path("joined.txt")).expect("report");
    assert!(
        report.contains("  file /probe (ran): "),
        "the command is analysed as a file that ran:\n{report}"
    );
    assert!(
        report.contains("x86_64 fdatasync: - - - - -> log (reachable, not observed: /probe: "),
        "{report}"
    );

    // The mined path runs under both; the admin path only under the joined.
    assert_eq!(
        run_under(&fx, &img.name, "mined.json", "serve"),
        (0, "serve ok".to_string())
    );
    assert_eq!(
        run_under(&fx, &img.name, "joined.json", "serve"),
        (0, "serve ok".to_string())
    );
    assert_eq!(
        run_under(&fx, &img.name, "mined.json", "admin"),
        (3, "fdatasync: Operation not permitted".to_string())
    );
    assert_eq!(
        run_under(&fx, &img.name, "joined.json", "admin"),
        (0, "admin ok".to_string())
    );

    // `sandmine analyze --image`: files read from the image. It has no
    // command, so one must be named.
    let o = fx
        .command(&["analyze", "--image", &img.name])
        .output()
        .expect("sandmine analyze");
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        format!("sandmine: error: the command of {} (none) is not a file in the image; name the files to analyse", img.name)
    );
    let o = fx
        .command(&[
            "analyze", "--image", &img.name, "/probe", "--format", "json",
        ])
        .output()
        .expect("sandmine analyze");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let a: Value = serde_json::from_slice(&o.stdout).expect("analyze JSON");
    assert_eq!(a["file"], "/probe");
    assert_eq!(a["root"], format!("image {}", img.name));
    let reached: Vec<&str> = a["syscalls"]
        .as_array()
        .expect("syscalls")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert!(
        reached.contains(&"fdatasync") && reached.contains(&"openat"),
        "{reached:?}"
    );
    let o = fx
        .command(&["analyze", "--image", "sandmine-test/no-such-image:1"])
        .output()
        .expect("sandmine analyze");
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "sandmine: error: docker: image sandmine-test/no-such-image:1 not found locally (no registry is pulled from)"
    );

    // reachable = deny: reported, nothing added.
    let denied = mine(&fx, &img.name, "denied.json", &["--reachable", "deny"]);
    assert!(rule_names(&denied, "SCMP_ACT_LOG").is_empty());
    assert_eq!(
        rule_names(&denied, "SCMP_ACT_ALLOW"),
        rule_names(&mined, "SCMP_ACT_ALLOW")
    );
    // reachable = allow: the same names move into the allow rule (beside
    // the joined profile's allow rules, the widened mprotect one included).
    let allowed = mine(&fx, &img.name, "allowed.json", &["--reachable", "allow"]);
    let mut want: Vec<String> = rule_names(&joined, "SCMP_ACT_ALLOW");
    want.extend(logged.iter().cloned());
    want.sort();
    let mut got = rule_names(&allowed, "SCMP_ACT_ALLOW");
    got.sort();
    assert_eq!(got, want);
    assert_eq!(
        run_under(&fx, &img.name, "allowed.json", "admin"),
        (0, "admin ok".to_string())
    );
}

#[test]
fn declared_tools_must_exist_and_need_the_analysis() {
    let fx = Fixture::new();
    let o = fx
        .command(&[
            "mine-image",
            "--reachable",
            "off",
            "--tool",
            "/bin/sh",
            "sandmine-test/busybox:1",
        ])
        .output()
        .expect("sandmine");
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim(),
        "sandmine: error: --tool and --tools-file need the static analysis; drop --reachable off"
    );
    let o = fx
        .command(&[
            "mine-image",
            "--tools-file",
            &fx.arg("missing.txt"),
            "sandmine-test/busybox:1",
        ])
        .output()
        .expect("sandmine");
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.starts_with("sandmine: error: cannot read the tools file ")
            && err.contains("missing.txt"),
        "{err}"
    );
}
