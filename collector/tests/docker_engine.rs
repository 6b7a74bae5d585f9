//! The Docker Engine API client against the real engine: these need
//! dockerd (scripts/start-dockerd.sh) and the test images
//! (tests/images/build.sh). They fail, never skip, when either is missing.

use collector::docker::{ContainerSpec, DockerClient, ImageInfo};
use serde_json::json;
use std::time::Duration;

const TEST_IMAGE: &str = "sandmine-test/busybox:1";

fn engine() -> DockerClient {
    match DockerClient::connect(None) {
        Ok(c) => c,
        Err(e) => panic!(
            "these tests need a running Docker engine: {e}\n\
             start it with scripts/start-dockerd.sh (or run scripts/test.sh)"
        ),
    }
}

fn test_image(c: &DockerClient) -> ImageInfo {
    match c.inspect_image(TEST_IMAGE) {
        Ok(i) => i,
        Err(e) => panic!("{e}\nbuild the test images with tests/images/build.sh"),
    }
}

/// Removes the container when dropped, so failing tests leave nothing.
struct Cleanup<'a>(&'a DockerClient, String);

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        let _ = self.0.remove(&self.1);
    }
}

fn spec(cmd: &[&str]) -> ContainerSpec {
    let mut s = ContainerSpec::new(TEST_IMAGE);
    s.cmd = Some(cmd.iter().map(|s| s.to_string()).collect());
    s.labels
        .insert("org.sandmine.test".into(), "docker.rs".into());
    s
}

#[test]
fn engine_runs_echo() {
    let c = engine();
    test_image(&c);
    let id = c.create(&spec(&["echo", "hi"])).expect("create");
    let _guard = Cleanup(&c, id.clone());
    c.start(&id).expect("start");
    let code = c.wait(&id, Duration::from_secs(30)).expect("wait");
    assert_eq!(code, Some(0));
    assert_eq!(c.logs(&id).expect("logs"), "hi\n");
    let st = c.inspect(&id).expect("inspect");
    assert!(!st.running);
    assert_eq!(st.status, "exited");
    c.remove(&id).expect("remove");
    c.remove(&id).expect("removing twice is fine");
    let e = c.inspect(&id).expect_err("removed");
    assert!(e.to_string().contains("No such container"), "{e}");
}

#[test]
fn engine_logs_stdout_and_stderr_and_exit_code() {
    let c = engine();
    test_image(&c);
    let mut s = spec(&["sh", "-c", "echo out; echo err >&2; echo $GREETING; exit 3"]);
    s.env.push("GREETING=hello env".into());
    s.name = Some(format!("sandmine-test-{}", std::process::id()));
    let id = c.create(&s).expect("create");
    let _guard = Cleanup(&c, id.clone());
    c.start(&id).expect("start");
    assert_eq!(c.wait(&id, Duration::from_secs(30)).expect("wait"), Some(3));
    let logs = c.logs(&id).expect("logs");
    let mut lines: Vec<&str> = logs.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["err", "hello env", "out"]);
    let v = c.inspect_json(&id).expect("inspect");
    assert_eq!(v["Name"], format!("/sandmine-test-{}", std::process::id()));
    assert_eq!(v["Config"]["Labels"]["org.sandmine.test"], "docker.rs");
    assert_eq!(v["HostConfig"]["NetworkMode"], "none");
}

#[test]
fn engine_seccomp_profile_denying_write_is_enforced() {
    let c = engine();
    test_image(&c);
    let mut s = spec(&["echo", "hi"]);
    s.seccomp_profile_json = Some(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["write"],"action":"SCMP_ACT_ERRNO"}]}"#
            .into(),
    );
    let id = c.create(&s).expect("create with a seccomp profile");
    let _guard = Cleanup(&c, id.clone());
    match c.start(&id) {
        // runc installs the filter before its own last write (to the
        // exec fifo), so the start itself fails; dockerd 20.10 with
        // runc 1.1 says "OCI runtime start failed: cannot start an
        // already running container". The engine's reason must come
        // through.
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(&format!("start container {id}")), "{msg}");
            assert!(
                msg.contains("OCI runtime") || msg.contains("operation not permitted"),
                "{msg}"
            );
            let st = c.inspect(&id).expect("inspect");
            assert!(!st.running && !st.error.is_empty(), "{st:?}");
            // A failed start is final: wait reports its non-zero code.
            let code = c.wait(&id, Duration::from_secs(5)).expect("wait");
            assert!(matches!(code, Some(c) if c != 0), "{code:?} {st:?}");
        }
        Ok(()) => {
            let code = c.wait(&id, Duration::from_secs(30)).expect("wait");
            assert!(
                matches!(code, Some(c) if c != 0),
                "echo must fail: {code:?}"
            );
            assert_eq!(c.logs(&id).expect("logs"), "");
        }
    }
}

#[test]
fn engine_exec_and_stop() {
    let c = engine();
    test_image(&c);
    let id = c.create(&spec(&["sleep", "300"])).expect("create");
    let _guard = Cleanup(&c, id.clone());
    c.start(&id).expect("start");
    let st = c.inspect(&id).expect("inspect");
    assert!(st.running && st.pid > 0, "{st:?}");
    assert_eq!(c.wait(&id, Duration::from_millis(120)).expect("wait"), None);
    let cmd: Vec<String> = ["sh", "-c", "cat /www/index.html; echo oops >&2; exit 7"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (code, out) = c.exec(&id, &cmd).expect("exec");
    assert_eq!(code, 7);
    // The engine copies stdout and stderr concurrently: no order between them.
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort_unstable();
    assert_eq!(lines, ["oops", "sandmine-ok"]);
    let (code, out) = c
        .exec(&id, &["cat".to_string(), "/www/index.html".to_string()])
        .expect("exec");
    assert_eq!((code, out.as_str()), (0, "sandmine-ok\n"));
    let (code, out) = c.exec(&id, &["true".to_string()]).expect("exec");
    assert_eq!((code, out.as_str()), (0, ""));
    // sleep as pid 1 ignores SIGTERM: the grace period runs out.
    c.stop(&id, Duration::from_secs(1)).expect("stop");
    let code = c.wait(&id, Duration::from_secs(10)).expect("wait");
    assert_eq!(code, Some(137));
    c.stop(&id, Duration::from_secs(1))
        .expect("stopping twice is fine");
}

#[test]
fn engine_image_inspect() {
    let c = engine();
    let info = test_image(&c);
    assert!(info.id.starts_with("sha256:"), "{info:?}");
    assert_eq!(info.id.len(), "sha256:".len() + 64);
    assert!(info.repo_tags.iter().any(|t| t == TEST_IMAGE), "{info:?}");
    let by_id = c.inspect_image(&info.id).expect("inspect by id");
    assert_eq!(by_id.id, info.id);
    let v = c.version().expect("version");
    assert!(v["ApiVersion"].is_string(), "{v}");
}

#[test]
fn engine_import_image() {
    let c = engine();
    let dir = std::env::temp_dir().join(format!("sandmine-import-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("mkdir");
    std::fs::write(dir.join("hello.txt"), b"hello\n").expect("write");
    let out = std::process::Command::new("tar")
        .arg("-C")
        .arg(&dir)
        .args(["-cf", "-", "."])
        .output()
        .expect("tar");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success());
    let repo = "sandmine-test/import";
    let tag = format!("t{}", std::process::id());
    let name = format!("{repo}:{tag}");
    let id = c
        .import_image(&out.stdout, &name, &[r#"CMD ["/hello", "a b"]"#, "ENV X=1"])
        .expect("import");
    let info = c.inspect_image(&name);
    let config = std::process::Command::new("docker")
        .args(["image", "inspect", "-f", "{{json .Config}}", &name])
        .output()
        .expect("the docker CLI runs");
    c.remove_image(&name).expect("remove image");
    c.remove_image(&name).expect("removing twice is fine");
    let info = info.expect("inspect imported");
    assert!(id.starts_with("sha256:"), "{id}");
    assert_eq!(info.id, id);
    assert_eq!(info.repo_tags, vec![name.clone()]);
    assert!(config.status.success(), "{config:?}");
    let v: serde_json::Value = serde_json::from_slice(&config.stdout).expect("json");
    assert_eq!(v["Cmd"], json!(["/hello", "a b"]));
    assert_eq!(v["Env"], json!(["X=1"]));
    let e = c
        .import_image(b"not a tarball", &name, &["NOSUCHINSTRUCTION x"])
        .expect_err("bad change");
    assert!(
        e.to_string()
            .starts_with(&format!("docker: import image {name}: ")),
        "{e}"
    );
    c.remove_image(&name).expect("cleanup");
}

#[test]
fn engine_missing_image_is_a_clear_error() {
    let c = engine();
    let e = c
        .inspect_image("sandmine-test/does-not-exist:0")
        .expect_err("missing image");
    assert_eq!(
        e.to_string(),
        "docker: image sandmine-test/does-not-exist:0 not found locally (no registry is pulled from)"
    );
    let e = c
        .create(&ContainerSpec::new("sandmine-test/does-not-exist:0"))
        .expect_err("create from a missing image");
    let msg = e.to_string();
    assert!(msg.contains("No such image"), "{msg}");
    assert!(msg.contains("no registry is pulled from"), "{msg}");
}

#[test]
fn engine_errors_are_verbatim() {
    let c = engine();
    test_image(&c);
    // Rejected at create.
    let mut s = spec(&["true"]);
    s.name = Some("bad name!".into());
    let res = c.create(&s);
    if let Ok(id) = &res {
        let _ = c.remove(id);
    }
    let msg = res.expect_err("an invalid container name").to_string();
    assert_eq!(
        msg,
        "docker: create container from image sandmine-test/busybox:1: Invalid container name \
         (bad name!), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed (HTTP 400)"
    );
    // dockerd parses the seccomp profile only at start.
    let mut s = spec(&["true"]);
    s.seccomp_profile_json = Some("{this is not json".into());
    let id = c.create(&s).expect("create");
    let _guard = Cleanup(&c, id.clone());
    let msg = c.start(&id).expect_err("a malformed profile").to_string();
    assert!(
        msg.starts_with(&format!("docker: start container {id}: ")),
        "{msg}"
    );
    assert!(msg.contains("seccomp"), "{msg}");
}

#[test]
fn engine_events_stream_and_replay() {
    use collector::docker::Event;
    let c = engine();
    test_image(&c);
    let filters = json!({"type": ["container"], "event": ["create"]});
    let mut live = c
        .events(&filters, None, None, Duration::from_millis(200))
        .expect("follow events");
    let id = c.create(&spec(&["true"])).expect("create");
    let _guard = Cleanup(&c, id.clone());
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let seen = loop {
        assert!(std::time::Instant::now() < deadline, "no create event");
        match live.next_event() {
            Event::Event(v) if v["Actor"]["ID"] == id.as_str() => break v,
            Event::Event(_) | Event::Idle => {}
            Event::End => panic!("the event stream ended"),
        }
    };
    assert_eq!(seen["Action"], "create");
    assert_eq!(seen["Actor"]["Attributes"]["image"], TEST_IMAGE);
    // The same event, replayed from the engine's memory: a bounded stream.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let by_id = json!({"type": ["container"], "container": [id.as_str()]});
    let mut past = c
        .events(&by_id, Some(0), Some(now + 1), Duration::from_secs(5))
        .expect("past events");
    let mut actions = Vec::new();
    loop {
        match past.next_event() {
            Event::Event(v) => actions.push(v["Action"].as_str().unwrap_or("").to_string()),
            Event::End => break,
            Event::Idle => panic!("a stream with an end went idle"),
        }
    }
    assert_eq!(actions, ["create"]);
    // A refused stream carries the engine's reason.
    let e = c
        .events(&filters, Some(100), Some(5), Duration::from_secs(5))
        .err()
        .expect("since after until is refused");
    assert!(
        e.to_string().ends_with(
            r#": HTTP 400: {"message":"`since` time (100) cannot be after `until` time (5)"}"#
        ),
        "{e}"
    );
}
