//! What the reach test binaries share: compiling a C probe at test time,
//! and analysing a file of the host's root.
#![allow(dead_code)]

use reach::{Analysis, Analyzer};
use std::path::{Path, PathBuf};
use std::process::Command;

/// `cc -O1 ARGS -o DIR/NAME DIR/NAME.c` with `src`, through compiler `cc`.
pub fn compile(dir: &Path, name: &str, src: &str, args: &[&str], cc: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    let bin = dir.join(name);
    std::fs::write(&c, src).expect("write probe");
    let out = Command::new(cc)
        .arg("-O1")
        .args(args)
        .arg("-o")
        .arg(&bin)
        .arg(&c)
        .output()
        .unwrap_or_else(|e| panic!("{cc} must be installed (scripts/install-deps.sh): {e}"));
    assert!(
        out.status.success(),
        "compiling {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    bin
}

/// The analysis of `bin` in the host's root.
pub fn analyse(bin: &Path) -> Analysis {
    Analyzer::new(Path::new("/"))
        .analyse(bin.to_str().expect("utf-8 path"))
        .expect("analysis")
}
