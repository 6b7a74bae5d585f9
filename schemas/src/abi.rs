//! System-call ABIs: the (architecture, calling convention) pairs whose
//! syscall numbers sandmine records.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One syscall ABI. The numbering of syscalls differs per ABI, so a syscall
/// number means nothing without its ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Abi {
    /// x86_64 native (`syscall` instruction from 64-bit code).
    X86_64,
    /// i386, including the compat ABI on an x86_64 kernel (`int 0x80`,
    /// `sysenter`, or 32-bit code), whatever the process's bitness.
    I386,
    /// x32: `syscall` with `__X32_SYSCALL_BIT` (0x4000_0000) set.
    X32,
    /// aarch64 native.
    Aarch64,
}

/// `AUDIT_ARCH_*` constants from `<linux/audit.h>`, as seen in
/// `seccomp_data.arch`.
pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
/// Bit that marks an x32 syscall number (x32 shares `AUDIT_ARCH_X86_64`).
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

impl Abi {
    pub const ALL: [Abi; 4] = [Abi::X86_64, Abi::I386, Abi::X32, Abi::Aarch64];

    /// The ABI's stable code: its position in [`Abi::ALL`]. It is the
    /// ABI's byte on the wire and its number in the stores, so it never
    /// changes for an existing ABI; a new ABI takes the next code.
    pub const fn code(self) -> u8 {
        match self {
            Abi::X86_64 => 0,
            Abi::I386 => 1,
            Abi::X32 => 2,
            Abi::Aarch64 => 3,
        }
    }

    /// The ABI of a [`Abi::code`], if any.
    pub fn from_code(c: u8) -> Option<Abi> {
        Abi::ALL.get(usize::from(c)).copied()
    }

    /// [`Abi::code`] as an index, for tables with one slot per ABI.
    pub const fn index(self) -> usize {
        self.code() as usize
    }

    /// Name used in Docker/OCI seccomp profiles (`architectures`).
    pub fn scmp_arch(self) -> &'static str {
        match self {
            Abi::X86_64 => "SCMP_ARCH_X86_64",
            Abi::I386 => "SCMP_ARCH_X86",
            Abi::X32 => "SCMP_ARCH_X32",
            Abi::Aarch64 => "SCMP_ARCH_AARCH64",
        }
    }

    pub fn from_scmp_arch(s: &str) -> Option<Abi> {
        Abi::ALL.into_iter().find(|a| a.scmp_arch() == s)
    }

    /// `seccomp_data.arch` value for calls of this ABI.
    pub fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::I386 => AUDIT_ARCH_I386,
            Abi::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// Short stable name, used in reports and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Abi::X86_64 => "x86_64",
            Abi::I386 => "i386",
            Abi::X32 => "x32",
            Abi::Aarch64 => "aarch64",
        }
    }

    /// The ABIs a kernel of this machine's architecture can run, in the
    /// order a filter should test them.
    pub fn host_abis() -> &'static [Abi] {
        if cfg!(target_arch = "x86_64") {
            &[Abi::X86_64, Abi::I386, Abi::X32]
        } else if cfg!(target_arch = "aarch64") {
            &[Abi::Aarch64]
        } else {
            &[]
        }
    }
}

impl fmt::Display for Abi {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown ABI {0:?} (expected x86_64, i386, x32 or aarch64)")]
pub struct UnknownAbi(pub String);

impl FromStr for Abi {
    type Err = UnknownAbi;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Abi::ALL
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| UnknownAbi(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_positions_and_round_trip() {
        for (i, a) in Abi::ALL.into_iter().enumerate() {
            assert_eq!(a.index(), i);
            assert_eq!(Abi::from_code(a.code()), Some(a));
        }
        // The wire codes are released: they never change.
        assert_eq!(
            Abi::ALL.map(Abi::code),
            [0, 1, 2, 3],
            "x86_64, i386, x32, aarch64"
        );
        assert_eq!(Abi::from_code(4), None);
    }
}
