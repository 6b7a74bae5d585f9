//! Executed files, end to end (issue 10, the fleet path): real containers
//! on two simulated hosts, real `sandmine collect` (host hA at wire
//! version 8, host hB at 7) → nats-server → `sandmine aggregate` →
//! ClickHouse 18.16, then:
//!
//! - `sandmine query image`'s `executed`: exactly the files hA's container
//!   ran as code (busybox, static: its executable, also mapped); hB's
//!   collector dropped its files with one warning;
//! - `sandmine compile --reach-engine`: the fleet compiler reads each image
//!   from the engine and analyses the files its containers ran (busybox:
//!   the file that ran, no gap), or, for an image whose only containers
//!   ran on hB, its command alone, and the report says so.
//!
//! Needs root, dockerd (scripts/start-dockerd.sh), the image
//! sandmine-test/busybox:1 (tests/images/build.sh), nats-server and
//! clickhouse-server. Fails, never skips, when one is missing.

mod common;

use common::fleet::{docker, nats_broker, wait_for_line, Fleet, BUSYBOX, CONVERGE};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use testsvc::{ClickHouse, Nats};

const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Runs `cmd` in a container of `image` on `host`, to its end.
fn run(fleet: &Fleet, host: &str, image: &str, cmd: &[&str]) {
    let parent = format!("/sm-{}-{host}", fleet.tag);
    let mut a = vec![
        "run",
        "--rm",
        "--network",
        "none",
        "--cgroup-parent",
        &parent,
        image,
    ];
    a.extend(cmd);
    docker(&a);
}

/// The image's `executed` from `sandmine query image` (Null until the
/// image is in the store).
fn executed(fleet: &Fleet, image: &str) -> Value {
    let q = fleet
        .cmd(&["query"])
        .args(["image", image])
        .output()
        .unwrap();
    if !q.status.success() {
        return Value::Null;
    }
    let v: Value = serde_json::from_slice(&q.stdout).unwrap();
    v.get("executed").cloned().unwrap_or(json!({}))
}

/// The report's reachability section of `image` compiled into `out`.
fn reach_of(out: &std::path::Path, image: &str) -> Value {
    let dir = out.join(schemas::slug::image_slug(image));
    let text = std::fs::read_to_string(dir.join("report.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let v: Value = serde_json::from_str(&text).unwrap();
    v["reach"].clone()
}

#[test]
fn the_files_containers_ran_reach_the_store_and_the_fleet_compiler_analyses_them() {
    let nats = Nats::start();
    let ch = ClickHouse::start();
    let mut fleet = Fleet::new(&nats_broker(&nats), &ch);
    fleet.start_aggregator();
    fleet.start_collector_with("hA", &["collector.max_wire_version=8"]);
    fleet.start_collector_with("hB", &["collector.max_wire_version=7"]);
    // Each lives over several 1 s ticks, so the collectors sample it.
    run(&fleet, "hA", BUSYBOX, &["sh", "-c", "sleep 3"]);
    run(&fleet, "hB", BUSYBOX, &["sh", "-c", "sleep 3"]);
    let probe_image = fleet.probe_image.clone();
    run(&fleet, "hB", &probe_image, &["/probe", "39:1"]);

    // busybox is static: its executable is also its only file mapping.
    let want = json!({"executables": ["/bin/busybox"], "mapped": ["/bin/busybox"]});
    let deadline = Instant::now() + CONVERGE;
    let mut got = executed(&fleet, BUSYBOX);
    while got != want && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        got = executed(&fleet, BUSYBOX);
    }
    assert_eq!(got, want, "logs:\n{}", fleet.logs());
    // The probe image ran on hB only: its files were dropped there.
    let deadline = Instant::now() + CONVERGE;
    let mut probe = executed(&fleet, &probe_image);
    while probe == Value::Null && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        probe = executed(&fleet, &probe_image);
    }
    assert_eq!(probe, json!({}), "logs:\n{}", fleet.logs());

    // hB said once that it dropped the files; hA said nothing of it.
    let b = fleet.collectors.remove("hB").unwrap();
    wait_for_line(
        &b,
        "new in this delta) are not sent: max_wire_version 7 is below 8",
    );
    let err = std::fs::read_to_string(&b.stderr).unwrap();
    assert_eq!(
        err.matches("files the containers ran (").count(),
        1,
        "{err}"
    );
    let a = std::fs::read_to_string(&fleet.collectors["hA"].stderr).unwrap();
    assert!(!a.contains("files the containers ran ("), "{a}");
    let o = b.terminate(Duration::from_secs(30));
    assert_eq!(o.code(), Some(0), "{}", o.describe());

    // The fleet's compiler analyses what ran, read from the engine.
    let out = fleet.f.path("profiles");
    let mut c = fleet.cmd(&["compile"]);
    c.args([
        "--reach-engine",
        DOCKER_SOCKET,
        "--reach-cache",
        "off",
        "--image",
        BUSYBOX,
        "--image",
        &probe_image,
        "--out",
        out.to_str().unwrap(),
    ]);
    let o = fleet.f.run_cmd(c, common::RUN_TIMEOUT);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert!(
        o.stderr.contains(&format!(
            "sandmine: {BUSYBOX}: static analysis of 1 file(s) (1 ran, 0 declared)"
        )),
        "{}",
        o.describe()
    );
    let r = reach_of(&out, BUSYBOX);
    let files: Vec<(String, bool)> = r["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["ran"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(files, [("/bin/busybox".to_string(), true)], "{r}");
    assert!(
        !r["gaps"]
            .as_array()
            .is_some_and(|g| g.iter().any(|x| x.as_str().unwrap().contains("no file"))),
        "{r}"
    );
    assert!(r["reachable"].as_u64().unwrap() > 0, "{r}");
    // The probe image: only its command could be analysed (it has none),
    // and the report says why the set is unknown.
    let p = reach_of(&out, &probe_image);
    assert_eq!(p["known"], false, "{p}");
    assert_eq!(p["files"], json!([]), "{p}");
    assert!(
        p["gaps"].as_array().unwrap().iter().any(|g| g
            .as_str()
            .unwrap()
            .starts_with("the store holds no file that the image's containers ran")),
        "{p}"
    );
    // Without --reach-engine no analysis runs.
    let out2 = fleet.f.path("profiles-no-reach");
    let mut c = fleet.cmd(&["compile"]);
    c.args(["--image", BUSYBOX, "--out", out2.to_str().unwrap()]);
    let o = fleet.f.run_cmd(c, common::RUN_TIMEOUT);
    assert_eq!(o.code(), Some(0), "{}", o.describe());
    assert_eq!(reach_of(&out2, BUSYBOX), Value::Null);
}
