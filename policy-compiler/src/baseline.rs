//! The baseline: syscalls every profile allows, observed or not.
//!
//! Mining sees what a workload does when its code asks for it. A few
//! syscalls are made because of events the workload does not control, at
//! moments no test can aim at, and denying them does not reduce what a
//! program can ask the kernel to do; it only breaks the program the first
//! time the event happens. Only those belong here; everything else must be
//! observed.

/// A syscall every profile allows, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Baseline {
    pub name: &'static str,
    pub why: &'static str,
}

pub const BASELINE: &[Baseline] = &[
    Baseline {
        name: "exit",
        why: "a thread must be able to end; a denied exit leaves it looping at exit (peers' users hit this)",
    },
    Baseline {
        name: "exit_group",
        why: "a process must be able to end; a denied exit_group leaves it looping at exit",
    },
    Baseline {
        name: "rt_sigreturn",
        why: "returns from any signal handler; signals arrive asynchronously (Go's runtime in runc gets \
              SIGURG preemption at arbitrary points), and a denied return crashes the process",
    },
    Baseline {
        name: "sigreturn",
        why: "rt_sigreturn's i386 counterpart, for 32-bit signal frames",
    },
    Baseline {
        name: "restart_syscall",
        why: "the kernel makes a process restart an interrupted sleep with it after SIGSTOP/SIGCONT \
              (docker pause, a debugger); never called by the program itself",
    },
];

/// The baseline's names.
pub fn names() -> impl Iterator<Item = &'static str> {
    BASELINE.iter().map(|b| b.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_baseline_name_is_a_real_syscall() {
        for b in BASELINE {
            assert!(schemas::syscalls::is_known(b.name), "{}", b.name);
        }
    }
}
