// Shared by tests/docker_reference.rs and tests/arg_rules_cli.rs
// through `include!` (neither needs the rest of tests/common).

/// What runc calls after installing the filter, and the probe's harness
/// (fork, wait, write, exit): never a target of the generated profiles.
pub const RUNC_NEEDS: &[&str] = &[
    "read",
    "write",
    "close",
    "fstat",
    "getpid",
    "execve",
    "fcntl",
    "getcwd",
    "chdir",
    "setuid",
    "setgid",
    "getppid",
    "setgroups",
    "capget",
    "capset",
    "fstatfs",
    "prctl",
    "futex",
    "getdents64",
    "epoll_ctl",
    "openat",
    "newfstatat",
    "faccessat2",
];
