//! Probe programs for the capture tests: tiny C programs whose exact
//! syscalls are known, compiled with the system C compiler at test time.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// getppid() N times (argv[1]), then exit; or syscall number argv[2]
/// instead of getppid. getppid is not made by libc's start-up, so its
/// count is exactly N.
pub const GETPPID_LOOP: &str = r#"
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    long nr = argc > 2 ? atol(argv[2]) : SYS_getppid;
    for (long i = 0; i < n; i++) syscall(nr);
    return 0;
}
"#;

/// Three i386 getpid calls (eax = 20) through `int $0x80` from a 64-bit
/// process: the compat ABI.
pub const INT80: &str = r#"
int main(void) {
    for (int i = 0; i < 3; i++) {
        int ret;
        __asm__ volatile ("int $0x80" : "=a"(ret) : "a"(20) : "memory");
        if (ret <= 0) return 1;
    }
    return 0;
}
"#;

/// Compile `src` into a fresh temp dir; returns the binary's path.
pub fn build(name: &str, src: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sandmine-probes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let c = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    std::fs::write(&c, src).expect("write probe source");
    let status = Command::new("cc")
        .args(["-O1", "-o"])
        .arg(&bin)
        .arg(&c)
        .status()
        .expect("cc must be installed (scripts/install-deps.sh)");
    assert!(status.success(), "compiling probe {name} failed");
    bin
}

/// Like [`build`], statically linked (for a container with no libc).
pub fn build_static(name: &str, src: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sandmine-probes-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let c = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    std::fs::write(&c, src).expect("write probe source");
    let status = Command::new("cc")
        .args(["-O1", "-static", "-o"])
        .arg(&bin)
        .arg(&c)
        .status()
        .expect("cc must be installed (scripts/install-deps.sh)");
    assert!(status.success(), "compiling probe {name} failed");
    bin
}
