//! Argument values recorded in the kernel (issue 11, first part): for a
//! few syscalls, the distinct values of one or two chosen arguments per
//! workload, masked and cut to their low 32 bits, each set bounded and its
//! overflow counted. This module is the one list of what is recorded
//! ([`TRACKS`]); the loader writes it into the program's `sm_arg_track`
//! and `sm_arg_desc` before load, and [`super::EbpfCollector::args_of`]
//! reads the sets back.
//!
//! **Which syscalls, and why.** Each is one where a seccomp rule on an
//! argument closes a known escape or attack surface that the name alone
//! leaves open, as Docker's default profile and systemd's sandboxing
//! settings do, and whose argument is a plain integer (seccomp sees only
//! registers, never memory):
//!
//! | track | recorded | why |
//! |---|---|---|
//! | `socket` | (family, type & `SOCK_TYPE_MASK` 0xf) | AF_PACKET, AF_NETLINK, AF_VSOCK, raw sockets (`RestrictAddressFamilies=`); the flag bits (CLOEXEC, NONBLOCK) masked off |
//! | `setsockopt` | (level, optname) | the option surface behind many socket CVEs (e.g. packet-socket rings) |
//! | `clone` | flags & `CLONE_NEW*` (0x7e020000, Docker's own mask) | namespace creation (`RestrictNamespaces=`); the other flags vary per thread/fork |
//! | `unshare` | flags & (`CLONE_NEW*` \| `CLONE_NEWTIME` 0x80) = 0x7e020080 | the same; unshare's other flags only change what the caller shares with itself |
//! | `setns` | nstype | joining namespaces |
//! | `personality` | persona | `LockPersonality=`; READ_IMPLIES_EXEC and friends |
//! | `prctl` | option | a grab-bag of process controls |
//! | `ioctl` | request | the largest driver surface (TIOCSTI, ...) |
//! | `keyctl` | operation | the kernel keyring |
//! | `bpf` | command | program and map operations |
//! | `mmap`/`mmap2`, `mprotect`, `pkey_mprotect` | prot & (PROT_WRITE \| PROT_EXEC) = 6 | `MemoryDenyWriteExecute=`: whether writable and executable are ever asked together |
//!
//! A value is masked with its mask, so a rule built from it must compare
//! with the same mask (`SCMP_CMP_MASKED_EQ`, `value` = the mask,
//! `valueTwo` = the recorded value; the mask is 0xffffffff for the
//! arguments recorded whole). Only the low 32 bits are kept: every one of
//! these arguments is a C `int` or `unsigned int` for the kernel, and
//! seccomp compares 64 bits, so an exact-match rule on the full register
//! would break on callers that sign-extend (musl's `ioctl` with a
//! 0x8xxxxxxx request) and was the CVE-2019-10063 bypass.
//!
//! **Not recorded, by design.** i386 `socketcall` (102: every socket call
//! of old i386 programs; its arguments are a pointer to memory seccomp
//! cannot read), i386 `mmap` (90, `old_mmap`: a pointer to a struct) and
//! `clone3` (a pointer to `struct clone_args`): these cannot be narrowed
//! by a seccomp rule, so their values would be of no use. The i386 ABI's
//! direct calls (`socket` 359, `setsockopt` 366, `mmap2` 192, ...) are
//! recorded from its own registers (bx, cx, dx).
//!
//! **Bounds.** Each track of each ABI holds at most [`ArgSpec::cap`]
//! values per workload: 4 for the `prot` tracks (only four values exist,
//! so they cannot overflow), 16 for `socket` (a program uses a few
//! families and types), `prctl` and `bpf`, 32 for `ioctl` and
//! `setsockopt` (the two where real programs use tens), 8 elsewhere
//! (namespace and persona values come in ones and twos). 164 cells of 8
//! bytes per ABI, plus an overflow counter per track: 4,248 bytes per
//! workload slot (8.7 MB at the default 2,048 slots). A value that does
//! not fit, or a second argument with bit 31 set (a `setsockopt` optname
//! a cell cannot hold), is counted in the track's overflow and never
//! recorded: a set is exact or flagged incomplete, and the rule step
//! emits no argument rule for a syscall whose set overflowed.

use schemas::Abi;

/// The syscalls whose arguments are recorded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArgTrack {
    Socket,
    Setsockopt,
    Clone,
    Unshare,
    Setns,
    Personality,
    Prctl,
    Ioctl,
    Keyctl,
    Bpf,
    Mmap,
    Mprotect,
    PkeyMprotect,
}

/// What is recorded for one [`ArgTrack`].
#[derive(Clone, Copy, Debug)]
pub struct ArgSpec {
    pub track: ArgTrack,
    /// The syscall's name per capture ABI (x86_64, i386, x32, as
    /// [`super::CAPTURE_ABIS`]); `None`: not recorded under that ABI.
    pub names: [Option<&'static str>; NR_ABIS],
    /// The arguments recorded, in the order of each recorded value: (the
    /// argument's index, 0-2; the mask applied to its low 32 bits).
    pub args: &'static [(u8, u32)],
    /// Distinct values held per workload and ABI: a power of two (the
    /// program's probe sequence masks with `cap - 1`).
    pub cap: u8,
}

const NR_ABIS: usize = super::NR_ABIS;
/// Every value of the argument's low 32 bits.
pub const WHOLE: u32 = 0xffff_ffff;
/// `SOCK_TYPE_MASK`.
pub const SOCK_TYPE_MASK: u32 = 0xf;
/// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET.
pub const CLONE_NEW_MASK: u32 = 0x7e02_0000;
/// [`CLONE_NEW_MASK`] | CLONE_NEWTIME (0x80, a namespace flag for
/// `unshare` but part of the exit signal for `clone`).
pub const UNSHARE_NEW_MASK: u32 = 0x7e02_0080;
/// PROT_WRITE | PROT_EXEC.
pub const PROT_WX: u32 = 0x6;

const fn all(name: &'static str) -> [Option<&'static str>; NR_ABIS] {
    [Some(name), Some(name), Some(name)]
}

/// The tracks, in the order of their index in the program's tables.
pub const TRACKS: [ArgSpec; NR_TRACKS] = [
    ArgSpec {
        track: ArgTrack::Socket,
        names: all("socket"),
        args: &[(0, WHOLE), (1, SOCK_TYPE_MASK)],
        cap: 16,
    },
    ArgSpec {
        track: ArgTrack::Setsockopt,
        names: all("setsockopt"),
        args: &[(1, WHOLE), (2, WHOLE)],
        cap: 32,
    },
    ArgSpec {
        track: ArgTrack::Clone,
        names: all("clone"),
        args: &[(0, CLONE_NEW_MASK)],
        cap: 8,
    },
    ArgSpec {
        track: ArgTrack::Unshare,
        names: all("unshare"),
        args: &[(0, UNSHARE_NEW_MASK)],
        cap: 8,
    },
    ArgSpec {
        track: ArgTrack::Setns,
        names: all("setns"),
        args: &[(1, WHOLE)],
        cap: 8,
    },
    ArgSpec {
        track: ArgTrack::Personality,
        names: all("personality"),
        args: &[(0, WHOLE)],
        cap: 8,
    },
    ArgSpec {
        track: ArgTrack::Prctl,
        names: all("prctl"),
        args: &[(0, WHOLE)],
        cap: 16,
    },
    ArgSpec {
        track: ArgTrack::Ioctl,
        names: all("ioctl"),
        args: &[(1, WHOLE)],
        cap: 32,
    },
    ArgSpec {
        track: ArgTrack::Keyctl,
        names: all("keyctl"),
        args: &[(0, WHOLE)],
        cap: 8,
    },
    ArgSpec {
        track: ArgTrack::Bpf,
        names: all("bpf"),
        args: &[(0, WHOLE)],
        cap: 16,
    },
    ArgSpec {
        track: ArgTrack::Mmap,
        names: [Some("mmap"), Some("mmap2"), Some("mmap")],
        args: &[(2, PROT_WX)],
        cap: 4,
    },
    ArgSpec {
        track: ArgTrack::Mprotect,
        names: all("mprotect"),
        args: &[(2, PROT_WX)],
        cap: 4,
    },
    ArgSpec {
        track: ArgTrack::PkeyMprotect,
        names: all("pkey_mprotect"),
        args: &[(2, PROT_WX)],
        cap: 4,
    },
];

/// `SM_ARG_TRACKS`.
pub const NR_TRACKS: usize = 13;
/// `SM_ARG_CELLS`: the sum of the caps.
pub const NR_CELLS: usize = 164;
/// `SM_ARG_MAX_CAP`.
const MAX_CAP: u8 = 32;
/// `SM_ARG_NONE`.
const NONE: u8 = 0xff;
/// `SM_ARG_PRESENT`.
const PRESENT: u64 = 1 << 63;

/// `struct sm_arg_desc`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RawArgDesc {
    mask: [u32; 2],
    arg: [u8; 2],
    cap: u8,
    pad: u8,
    off: u16,
    pad2: u16,
}

/// `struct sm_args`: one workload's argument values.
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct RawArgs {
    pub(crate) cell: [[u64; NR_CELLS]; NR_ABIS],
    pub(crate) overflow: [[u64; NR_TRACKS]; NR_ABIS],
}

// SAFETY: plain old data, `#[repr(C)]`, no padding (two u32, four u8 and
// two u16 in 16 bytes; u64 arrays), and any bit pattern is valid.
unsafe impl aya::Pod for RawArgDesc {}
unsafe impl aya::Pod for RawArgs {}

pub(crate) fn zeroed_args() -> RawArgs {
    RawArgs {
        cell: [[0; NR_CELLS]; NR_ABIS],
        overflow: [[0; NR_TRACKS]; NR_ABIS],
    }
}

/// The program's `sm_arg_desc`: each track's arguments, masks and cells.
pub(crate) fn descs() -> [RawArgDesc; NR_TRACKS] {
    let mut off = 0u16;
    TRACKS.map(|s| {
        let d = RawArgDesc {
            mask: [
                s.args.first().map_or(0, |a| a.1),
                s.args.get(1).map_or(0, |a| a.1),
            ],
            arg: [
                s.args.first().map_or(NONE, |a| a.0),
                s.args.get(1).map_or(NONE, |a| a.0),
            ],
            cap: s.cap,
            pad: 0,
            off,
            pad2: 0,
        };
        off += u16::from(s.cap);
        d
    })
}

/// The program's `sm_arg_track`: 1 + the track of each (ABI, number).
/// Fails on a name the syscall table does not know under its ABI, or a
/// number beyond the capture's table.
pub(crate) fn track_table() -> Result<[[u8; super::NR_SLOTS]; NR_ABIS], String> {
    let cells: usize = TRACKS.iter().map(|s| usize::from(s.cap)).sum();
    if cells != NR_CELLS
        || TRACKS
            .iter()
            .any(|s| s.cap > MAX_CAP || !s.cap.is_power_of_two())
    {
        return Err(format!(
            "argument tracks: {cells} cells for {NR_CELLS}, or a cap above {MAX_CAP} or not a power of two"
        ));
    }
    let mut t = [[0u8; super::NR_SLOTS]; NR_ABIS];
    for (k, spec) in TRACKS.iter().enumerate() {
        for (a, abi) in super::CAPTURE_ABIS.iter().enumerate() {
            let Some(name) = spec.names[a] else { continue };
            let nr = schemas::syscalls::number(*abi, name)
                .ok_or_else(|| format!("argument track {name}: no such syscall under {abi:?}"))?;
            let cell = t[a]
                .get_mut(nr as usize)
                .ok_or_else(|| format!("argument track {name}: {abi:?} number {nr} too high"))?;
            // `k < NR_TRACKS`, so it fits a u8.
            *cell = k as u8 + 1;
        }
    }
    Ok(t)
}

/// The syscall of track `k` under capture ABI `a`, if recorded there.
fn syscall_of(k: usize, a: usize) -> Option<(Abi, u32)> {
    let abi = *super::CAPTURE_ABIS.get(a)?;
    let name = TRACKS.get(k)?.names.get(a).copied().flatten()?;
    schemas::syscalls::number(abi, name).map(|nr| (abi, nr))
}

/// The distinct values of one syscall's recorded arguments in one
/// workload.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArgValues {
    /// Each value: one element per argument of the track's
    /// [`ArgSpec::args`], in that order, already masked.
    pub values: std::collections::BTreeSet<Vec<u32>>,
    /// Values that were not recorded (over the bound, or not
    /// representable): non-zero means `values` is incomplete.
    pub overflow: u64,
}

impl ArgValues {
    /// True when some value was not recorded: no argument rule may be
    /// built from this set.
    pub fn overflowed(&self) -> bool {
        self.overflow != 0
    }
}

/// One workload's recorded arguments: per syscall (ABI, number) with at
/// least one value or overflow, its track and values.
pub type Args = std::collections::BTreeMap<schemas::SyscallKey, (ArgTrack, ArgValues)>;

/// Decode one workload's `sm_args`.
pub(crate) fn decode(raw: &RawArgs) -> Result<Args, String> {
    let descs = descs();
    let mut out = Args::new();
    for (a, row) in raw.cell.iter().enumerate() {
        for (k, d) in descs.iter().enumerate() {
            let off = usize::from(d.off);
            let mut v = ArgValues {
                overflow: raw.overflow[a][k],
                ..ArgValues::default()
            };
            for &cell in &row[off..off + usize::from(d.cap)] {
                if cell == 0 {
                    continue;
                }
                if cell & PRESENT == 0 {
                    return Err(format!("sm_args holds a cell without its mark: {cell:#x}"));
                }
                let lo = cell as u32;
                let hi = ((cell >> 32) as u32) & 0x7fff_ffff;
                v.values.insert(if d.arg[1] == NONE {
                    vec![lo]
                } else {
                    vec![lo, hi]
                });
            }
            if v.values.is_empty() && v.overflow == 0 {
                continue;
            }
            let (abi, nr) = syscall_of(k, a)
                .ok_or_else(|| format!("sm_args holds values of track {k} under ABI {a}"))?;
            out.insert(schemas::SyscallKey { abi, nr }, (TRACKS[k].track, v));
        }
    }
    Ok(out)
}

/// One workload's recorded arguments in the shared, self-describing form
/// ([`schemas::ArgSet`]: each set carries its track's argument indices and
/// masks), as the compiler and the wire take them.
pub fn to_sets(args: &Args) -> schemas::ArgSets {
    args.iter()
        .map(|(k, (track, v))| {
            let fields = TRACKS
                .iter()
                .find(|s| s.track == *track)
                .map(|s| {
                    s.args
                        .iter()
                        .map(|&(index, mask)| schemas::ArgField { index, mask })
                        .collect()
                })
                .unwrap_or_default();
            (
                *k,
                schemas::ArgSet {
                    fields,
                    values: v.values.clone(),
                    overflow: v.overflow,
                },
            )
        })
        .collect()
}

/// Bytes that identify the tables the loader writes (for the daemon's
/// pinned-build hash: a change of [`TRACKS`] must load a new program).
pub(crate) fn fingerprint() -> Vec<u8> {
    let mut b = Vec::new();
    for d in descs() {
        for m in d.mask {
            b.extend_from_slice(&m.to_le_bytes());
        }
        b.extend_from_slice(&d.arg);
        b.push(d.cap);
        b.extend_from_slice(&d.off.to_le_bytes());
    }
    if let Ok(t) = track_table() {
        for row in t {
            b.extend_from_slice(&row);
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_fill_the_cells_and_fit_the_program_loop() {
        let total: usize = TRACKS.iter().map(|s| usize::from(s.cap)).sum();
        assert_eq!(total, NR_CELLS);
        assert!(TRACKS
            .iter()
            .all(|s| s.cap <= MAX_CAP && s.cap.is_power_of_two()));
        assert!(TRACKS
            .iter()
            .all(|s| (1..=2).contains(&s.args.len()) && s.args.iter().all(|a| a.0 <= 2)));
        assert_eq!(std::mem::size_of::<RawArgDesc>(), 16);
        assert_eq!(std::mem::size_of::<RawArgs>(), 4248);
    }

    #[test]
    fn the_track_table_has_each_syscall_under_its_abi_number() {
        let t = track_table().expect("table");
        // x86_64 socket 41, i386 socket 359 and mmap2 192, x32 ioctl 514.
        assert_eq!(t[0][41], 1);
        assert_eq!(t[1][359], 1);
        assert_eq!(t[1][192], 11);
        assert_eq!(t[2][514], 8);
        // i386 socketcall (102) and old mmap (90) are not recorded.
        assert_eq!(t[1][102], 0);
        assert_eq!(t[1][90], 0);
        let set: usize = t.iter().flatten().filter(|&&k| k != 0).count();
        assert_eq!(set, 3 * NR_TRACKS);
    }
}
