//! Compiles the BPF programs in `bpf/` with clang (`-target bpf`).
//!
//! The object is built from source on every machine rather than committed:
//! the only inputs are the C files here, libbpf's headers and clang, all
//! installed by `scripts/install-deps.sh`. All kernel types come from the
//! minimal CO-RE header `bpf/vmlinux_min.h`, so the object does not depend
//! on the build host's kernel.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const PROGRAMS: &[&str] = &["sandmine", "empty"];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let clang = env::var("SANDMINE_CLANG").unwrap_or_else(|_| "clang".to_string());
    println!("cargo:rerun-if-env-changed=SANDMINE_CLANG");
    println!("cargo:rerun-if-changed=bpf");
    let arch = match env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86",
        Ok("aarch64") => "arm64",
        Ok(other) => panic!("sandmine's BPF program does not support target arch {other}"),
        Err(e) => panic!("CARGO_CFG_TARGET_ARCH: {e}"),
    };
    for name in PROGRAMS {
        let src = format!("bpf/{name}.bpf.c");
        let obj = out.join(format!("{name}.bpf.o"));
        let status = Command::new(&clang)
            .args([
                "-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall", "-Werror",
            ])
            .arg(format!("-D__TARGET_ARCH_{arch}"))
            .args(["-Ibpf", "-c", &src, "-o"])
            .arg(&obj)
            .status()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {clang} to build {src}: {e}. \
                     Install clang and libbpf-dev (scripts/install-deps.sh does), \
                     or set SANDMINE_CLANG"
                )
            });
        assert!(status.success(), "{clang} failed on {src}");
    }
}
