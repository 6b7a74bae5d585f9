//! Probe programs for the capture tests: tiny C programs whose exact
//! syscalls are known (`tests/probes/*.c` at the workspace root, shared
//! with the CLI tests), compiled with the system C compiler at test time.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const GETPPID_LOOP: &str = include_str!("../../tests/probes/getppid_loop.c");
pub const INT80: &str = include_str!("../../tests/probes/int80.c");
pub const KNOWN_CALLS: &str = include_str!("../../tests/probes/known_calls.c");

/// Compile `src` into a per-process temp dir; returns the binary's path.
pub fn build(name: &str, src: &str) -> PathBuf {
    compile(name, src, &[])
}

/// Like [`build`], statically linked (for a container with no libc).
pub fn build_static(name: &str, src: &str) -> PathBuf {
    compile(name, src, &["-static"])
}

/// Each build gets its own directory: tests of one binary run in parallel,
/// and two of them compiling the same probe into one path let a copy see a
/// half-written binary ("exec format error" in CI, stop 19).
static BUILDS: AtomicUsize = AtomicUsize::new(0);

fn compile(name: &str, src: &str, flags: &[&str]) -> PathBuf {
    let n = BUILDS.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("sandmine-probes-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let c = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    std::fs::write(&c, src).expect("write probe source");
    let status = Command::new("cc")
        .arg("-O1")
        .args(flags)
        .arg("-o")
        .arg(&bin)
        .arg(&c)
        .status()
        .expect("cc must be installed (scripts/install-deps.sh)");
    assert!(status.success(), "compiling probe {name} failed");
    bin
}
