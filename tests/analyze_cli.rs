//! `sandmine analyze`: the real binary on probes compiled at test time.

mod common;

use common::{one_error_line, Fixture};
use std::process::Command;

const KILL_FSYNC: &str = r#"
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argv;
    if (argc > 5) { kill(1, 0); fsync(1); }   /* never taken */
    puts("probe");
    return 0;
}
"#;

const VARSYS: &str = r#"
#include <stdlib.h>
#include <unistd.h>
int main(int argc, char **argv) {
    if (argc > 1) return (int)syscall(atol(argv[1]));
    return 0;
}
"#;

#[test]
fn json_names_each_syscall_with_its_chain_and_the_limits() {
    let f = Fixture::new();
    let bin = f.probe("killfsync", KILL_FSYNC);
    let o = f.sandmine(&["analyze", bin.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", o.describe());
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    assert_eq!(v["reach_known"], true);
    assert_eq!(v["limits"]["nonconst_syscall_sites"], 0);
    assert_eq!(v["limits"]["missing_libraries"], 0);
    assert_eq!(v["limits"]["unresolved_imports"], 0);
    assert!(v["limits"]["indirect_calls"].as_u64().unwrap() > 0);
    assert_eq!(v["objects"].as_array().unwrap().len(), 3);
    let sys = v["syscalls"].as_array().unwrap();
    let find = |name: &str| sys.iter().find(|s| s["name"] == name).cloned();
    let kill = find("kill").expect("kill reachable");
    assert_eq!(kill["nr"], 62);
    assert_eq!(kill["abi"], "x86_64");
    assert_eq!(
        kill["provenance"].as_str().unwrap(),
        format!("{} -> kill@GLIBC_2.2.5 -> libc.so.6:kill", bin.display())
    );
    assert_eq!(find("fsync").expect("fsync reachable")["nr"], 74);
    assert_eq!(find("exit_group").expect("exit_group")["nr"], 231);
}

#[test]
fn json_and_text_give_the_argument_values_at_the_sites() {
    let f = Fixture::new();
    let src = r#"
#include <sys/socket.h>
int main(int argc, char **argv) {
    (void)argv;
    if (argc > 5) socket(AF_INET, SOCK_STREAM, 0);   /* never taken */
    return 0;
}
"#;
    let bin = f.probe("sock", src);
    let o = f.sandmine(&["analyze", bin.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", o.describe());
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    let sites = v["arg_sites"].as_array().expect("arg_sites");
    let socket = sites
        .iter()
        .find(|s| s["name"] == "socket")
        .expect("socket's arguments");
    assert_eq!(
        socket,
        &serde_json::json!({
            "abi": "x86_64", "nr": 41, "name": "socket", "over_cap": false,
            "sites": [[2, 1, 0]],
        })
    );
    let o = f.sandmine(&["analyze", bin.to_str().unwrap()]);
    assert!(o.status.success(), "{}", o.describe());
    let line = o
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with("argument values at the sites"))
        .find(|l| l.starts_with("socket "))
        .expect("a socket line in the argument section");
    assert_eq!(line, format!("{:<24} {:>4} x86_64 (2, 1, 0)", "socket", 41));
}

#[test]
fn text_says_whether_reach_is_known() {
    let f = Fixture::new();
    let bin = f.probe("killfsync", KILL_FSYNC);
    let o = f.sandmine(&["analyze", bin.to_str().unwrap()]);
    assert!(o.status.success(), "{}", o.describe());
    assert!(o.stdout.contains("reach: known"), "{}", o.stdout);
    let kill = o
        .stdout
        .lines()
        .find(|l| l.starts_with("kill "))
        .expect("a kill line");
    assert!(
        kill.ends_with("-> kill@GLIBC_2.2.5 -> libc.so.6:kill"),
        "{kill}"
    );

    let var = f.probe("varsys", VARSYS);
    let o = f.sandmine(&["analyze", var.to_str().unwrap()]);
    assert!(o.status.success(), "{}", o.describe());
    assert!(
        o.stdout
            .contains("reach: UNKNOWN (1 syscall sites with a non-constant number"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("  non-constant syscall sites  1\n"));
    assert!(o.stdout.contains("non-constant site: "), "{}", o.stdout);
}

#[test]
fn errors_and_help() {
    let f = Fixture::new();
    let o = f.sandmine(&["analyze", "/no/such/file"]);
    assert_eq!(o.code(), Some(2));
    let line = one_error_line(&o);
    assert!(
        line.contains("/no/such/file not found inside the root /"),
        "{line}"
    );
    let text = f.write("not-elf", "just text\n");
    let o = f.sandmine(&["analyze", text.to_str().unwrap()]);
    assert_eq!(o.code(), Some(2));
    let line = one_error_line(&o);
    assert!(line.contains("is not a valid ELF file"), "{line}");
    let o = f.sandmine(&["analyze", "--help"]);
    assert!(o.status.success());
    assert!(
        o.stdout.contains("sandmine analyze /usr/bin/ls"),
        "{}",
        o.stdout
    );
}

#[test]
fn several_files_in_one_run() {
    let f = Fixture::new();
    let a = f.probe("killfsync", KILL_FSYNC);
    let b = f.probe("varsys", VARSYS);
    let o = f.sandmine(&[
        "analyze",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", o.describe());
    let v: serde_json::Value = serde_json::from_str(&o.stdout).expect("json");
    let files: Vec<&str> = v
        .as_array()
        .expect("an array for several files")
        .iter()
        .map(|x| x["file"].as_str().unwrap())
        .collect();
    assert_eq!(files, [a.to_str().unwrap(), b.to_str().unwrap()]);
    assert_eq!(v[0]["reach_known"], true);
    assert_eq!(v[1]["reach_known"], false);
    assert_eq!(v[1]["limits"]["nonconst_syscall_sites"], 1);
    // Both load the same libc: the same file, the same digest.
    assert_eq!(v[0]["objects"][1]["sha256"], v[1]["objects"][1]["sha256"]);
}

/// The host's analysis cache: a second `analyze` of the same probe reads
/// all 3 objects (the probe, libc, ld.so) from it and prints the same
/// answer; `--reach-cache off` uses none; a cache directory others can
/// write is refused with one line and exit 2.
#[test]
fn the_host_cache_answers_a_second_run_and_must_be_private() {
    let f = Fixture::new();
    let bin = f.probe("killfsync", KILL_FSYNC);
    let bin = bin.to_str().unwrap();
    let cache = f.path("reach-cache");
    let cache = cache.to_str().unwrap();
    let first = f.sandmine(&["analyze", bin, "--format", "json", "--reach-cache", cache]);
    assert!(first.status.success(), "{}", first.describe());
    assert!(
        first
            .stderr
            .contains(&format!("sandmine: analysis cache {cache}/"))
            && first
                .stderr
                .contains(": 0 file(s) read from it, 3 analysed"),
        "{}",
        first.stderr
    );
    let second = f.sandmine(&["analyze", bin, "--format", "json", "--reach-cache", cache]);
    assert!(second.status.success(), "{}", second.describe());
    assert!(
        second
            .stderr
            .contains(": 3 file(s) read from it, 0 analysed"),
        "{}",
        second.stderr
    );
    assert_eq!(second.stdout, first.stdout);
    let off = f.sandmine(&["analyze", bin, "--format", "json", "--reach-cache", "off"]);
    assert!(off.status.success(), "{}", off.describe());
    assert!(!off.stderr.contains("analysis cache"), "{}", off.stderr);
    assert_eq!(off.stdout, first.stdout);

    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(cache, std::fs::Permissions::from_mode(0o775)).unwrap();
    }
    let o = f.sandmine(&["analyze", bin, "--reach-cache", cache]);
    assert_eq!(o.code(), Some(2), "{}", o.describe());
    assert_eq!(
        one_error_line(&o),
        format!(
            "sandmine: error: cannot use {cache} as the analysis cache: writable by its group or others (mode 775); chmod go-w it (--reach-cache off analyses without it)"
        )
    );
}

/// The default cache (/var/lib/sandmine/reach-cache, under root's 0700
/// /var/lib/sandmine) belongs to root: a user who cannot use it still analyses (the analysis needs no
/// privilege), with one warning naming why, and the same answer.
#[test]
fn a_user_who_cannot_use_the_default_cache_analyses_without_it() {
    let f = Fixture::new();
    let root = f.sandmine(&["analyze", "/usr/bin/true", "--format", "json"]);
    assert!(root.status.success(), "{}", root.describe());
    let o = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args([
            common::SANDMINE,
            "analyze",
            "/usr/bin/true",
            "--format",
            "json",
        ])
        .output()
        .expect("setpriv (util-linux)");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&o.stdout), root.stdout);
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            "sandmine: warning: cannot use /var/lib/sandmine/reach-cache as the analysis cache: \
          cannot create it: Permission denied (os error 13); analysing without it \
          (--reach-cache DIR names another)"
        ],
    );
}
