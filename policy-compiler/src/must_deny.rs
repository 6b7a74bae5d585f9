//! The default must-deny list: syscalls a mined profile denies even when
//! the workload was seen making them, because a filter cannot make them
//! safe, and the software that calls them copes with their absence.
//!
//! Each entry names its fallback: the older syscall that callers use when
//! the entry answers ENOSYS (every entry here is also in
//! [`crate::probes::PROBED`], so it does answer ENOSYS). Mining never sees
//! the fallback when the newer call succeeded, so a profile that denies an
//! observed entry allows its fallback instead; otherwise denying it would
//! break the workload.

/// A syscall denied by default, why, and what callers fall back to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MustDeny {
    pub name: &'static str,
    pub why: &'static str,
    pub fallback: &'static [&'static str],
}

pub const DEFAULT_DENY: &[MustDeny] = &[MustDeny {
    name: "clone3",
    why: "its flags (CLONE_NEWUSER and the other namespace flags) sit behind a pointer that seccomp \
          cannot read, so allowing it allows creating namespaces; Docker's default profile answers it \
          with ENOSYS for the same reason, so everything that runs under Docker copes",
    fallback: &["clone"],
}];

/// The entry for `name`, if it is denied by default.
pub fn get(name: &str) -> Option<&'static MustDeny> {
    DEFAULT_DENY.iter().find(|d| d.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_is_probed_and_its_fallback_is_a_syscall() {
        for d in DEFAULT_DENY {
            assert!(
                crate::probes::is_probed(d.name),
                "{} must answer ENOSYS",
                d.name
            );
            for f in d.fallback {
                assert!(schemas::syscalls::is_known(f), "{f}");
            }
        }
    }
}
