//! Argument values, end to end (issue 11, the fleet path): real containers
//! running `tests/probes/argprobe.c` on two simulated hosts, real
//! `sandmine collect` (host hA at wire version 7, host hB at 6) →
//! nats-server → `sandmine aggregate` → ClickHouse 18.16, then `sandmine
//! query image`'s `args`: the exact values of socket's (family, type) and
//! personality's persona, the hosts and containers that recorded them, and
//! the containers that recorded a set. hB's container made the same call
//! but its collector, limited below 7, dropped the set (with one warning):
//! it counts in the syscall's containers, not in `recorded`, which is what
//! keeps the syscall allowed by name alone.
//!
//! Needs root, dockerd (scripts/start-dockerd.sh), the image
//! sandmine-test/busybox:1 (tests/images/build.sh), nats-server and
//! clickhouse-server. Fails, never skips, when one is missing.

mod common;

use common::fleet::{docker, nats_broker, wait_for_line, Fleet, BUSYBOX, CONVERGE};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};
use testsvc::{ClickHouse, Nats};

const SOCKET: u32 = 41;
const PERSONALITY: u32 = 135;

/// Runs argprobe with `specs` in a container on `host` to its end (kept
/// with the fleet's label, removed with the fleet); every call succeeds.
fn run(fleet: &Fleet, probe: &std::path::Path, host: &str, specs: &[&str]) {
    let parent = format!("/sm-{}-{host}", fleet.tag);
    let keep = fleet.keep_label();
    let mount = format!("{}:/argprobe:ro", probe.display());
    let mut a = vec![
        "create",
        "--label",
        &keep,
        "--network",
        "none",
        "--cgroup-parent",
        &parent,
        "-v",
        &mount,
        BUSYBOX,
        "/argprobe",
    ];
    a.extend(specs);
    let id = String::from_utf8(docker(&a).stdout)
        .unwrap()
        .trim()
        .to_string();
    let o = Command::new("docker")
        .args(["start", "-a", &id])
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    let want: String = specs.iter().map(|s| format!("{s}=ok\n")).collect();
    assert_eq!(String::from_utf8_lossy(&o.stdout), want);
}

/// The image's `args` from `sandmine query image`, socket's and
/// personality's only (the runtime and libc record others: mmap's prot,
/// clone's flags), and the containers that made socket.
fn stored(fleet: &Fleet) -> (Value, u64) {
    let q = fleet
        .cmd(&["query"])
        .args(["image", BUSYBOX])
        .output()
        .unwrap();
    if !q.status.success() {
        return (Value::Null, 0);
    }
    let v: Value = serde_json::from_slice(&q.stdout).unwrap();
    let ours = |list: &Value| -> Value {
        Value::Array(
            list.as_array()
                .unwrap()
                .iter()
                .filter(|x| x["nr"] == SOCKET || x["nr"] == PERSONALITY)
                .cloned()
                .collect(),
        )
    };
    let args = &v["args"];
    let socket_containers = v["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["abi"] == "x86_64" && s["nr"] == SOCKET)
        .and_then(|s| s["containers"].as_u64())
        .unwrap_or(0);
    (
        json!({
            "values": ours(&args["values"]),
            "overflow": ours(&args["overflow"]),
            "recorded": ours(&args["recorded"]),
        }),
        socket_containers,
    )
}

#[test]
fn argument_values_reach_the_store_exactly_and_below_version_7_are_dropped() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let mut fleet = Fleet::new(&nats_broker(&nats), &ch);
    let probe = fleet
        .f
        .probe_static("argprobe", include_str!("probes/argprobe.c"));
    fleet.start_aggregator();
    fleet.start_collector_with("hA", &["collector.max_wire_version=7"]);
    fleet.start_collector_with("hB", &["collector.max_wire_version=6"]);
    // socket(AF_INET, SOCK_STREAM), socket(AF_UNIX, SOCK_DGRAM) and
    // personality(0xffffffff) (a query: it changes nothing).
    let inet = "x86_64:41:2:1";
    let unix = "x86_64:41:1:2";
    let persona = "x86_64:135:0xffffffff";
    run(&fleet, &probe, "hA", &[inet, unix, persona]);
    run(&fleet, &probe, "hA", &[inet]);
    run(&fleet, &probe, "hB", &[inet]);
    let family_type = json!([{"index": 0, "mask": 0xffff_ffffu32}, {"index": 1, "mask": 15}]);
    let persona_field = json!([{"index": 0, "mask": 0xffff_ffffu32}]);
    let want = json!({
        "values": [
            {"abi": "x86_64", "nr": SOCKET, "fields": family_type, "value": [1, 2], "hosts": 1, "containers": 1},
            {"abi": "x86_64", "nr": SOCKET, "fields": family_type, "value": [2, 1], "hosts": 1, "containers": 2},
            // The runtime's own socket(AF_NETLINK, SOCK_RAW), after its
            // filter, in each container; sorted as numbers (16 after 2).
            {"abi": "x86_64", "nr": SOCKET, "fields": family_type, "value": [16, 3], "hosts": 1, "containers": 2},
            {"abi": "x86_64", "nr": PERSONALITY, "fields": persona_field, "value": [0xffff_ffffu32], "hosts": 1, "containers": 1},
        ],
        "overflow": [],
        "recorded": [
            {"abi": "x86_64", "nr": SOCKET, "containers": 2},
            {"abi": "x86_64", "nr": PERSONALITY, "containers": 1},
        ],
    });
    // Three containers made socket; two recorded a set that travelled.
    let deadline = Instant::now() + CONVERGE;
    let mut got = stored(&fleet);
    while got != (want.clone(), 3) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        got = stored(&fleet);
    }
    assert_eq!(got, (want, 3), "logs:\n{}", fleet.logs());
    // `query args` shows the same, one row per value.
    let q = fleet
        .cmd(&["query"])
        .args(["args", "--image", BUSYBOX, "--format", "json"])
        .output()
        .unwrap();
    assert!(q.status.success(), "{}", String::from_utf8_lossy(&q.stderr));
    let rows: Vec<Value> = serde_json::from_slice::<Value>(&q.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["syscall"] == "socket" || r["syscall"] == "personality")
        .cloned()
        .collect();
    let row = |syscall: &str, args: &str, value: &str, containers: u64, recorded: u64| {
        json!({"abi": "x86_64", "syscall": syscall, "args": args, "value": value,
               "hosts": 1, "containers": containers, "recorded": recorded, "overflowed": 0})
    };
    let ft = "arg0&0xffffffff,arg1&0xf";
    assert_eq!(
        rows,
        [
            row("socket", ft, "0x1,0x2", 1, 2),
            row("socket", ft, "0x2,0x1", 2, 2),
            row("socket", ft, "0x10,0x3", 2, 2),
            row("personality", "arg0&0xffffffff", "0xffffffff", 1, 1),
        ]
    );
    let o = fleet
        .cmd(&["query"])
        .args(["args", "--image", "nope:0"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&o.stderr).trim_end(),
        "sandmine: error: image \"nope:0\" is not in the store (see `sandmine query images`)"
    );
    // The fleet's compiler keeps socket by name: hB's container made it,
    // and its values never travelled (wire v6).
    let o = fleet.f.run_cmd(
        {
            let mut c = fleet.cmd(&["explain"]);
            c.args([BUSYBOX, "socket"]);
            c
        },
        common::RUN_TIMEOUT,
    );
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stdout.contains(
            "by name, with any argument values: x86_64: 1 of the 3 containers that made it recorded no values (an older collector, a max_wire_version below 7, or the ptrace backend)"
        ),
        "{}",
        o.describe()
    );
    // hB said once that it dropped the sets; hA said nothing of it.
    let b = fleet.collectors.remove("hB").unwrap();
    wait_for_line(
        &b,
        "changed sets in this delta) are not sent: max_wire_version 6 is below 7",
    );
    let err = std::fs::read_to_string(&b.stderr).unwrap();
    assert_eq!(
        err.matches("are not sent: max_wire_version").count(),
        1,
        "{err}"
    );
    let a = std::fs::read_to_string(&fleet.collectors["hA"].stderr).unwrap();
    assert!(!a.contains("are not sent: max_wire_version"), "{a}");
    let o = b.terminate(Duration::from_secs(30));
    assert_eq!(o.code(), Some(0), "{}", o.describe());
}
