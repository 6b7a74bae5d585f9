//! A seccomp classic-BPF compiler: from an [`OciProfile`] to the program
//! that `seccomp(SECCOMP_SET_MODE_FILTER)` installs. Pure Rust, no
//! libseccomp.
//!
//! Shape of the program:
//!
//! ```text
//!     ld  [4]                      ; seccomp_data.arch
//!     jeq #AUDIT_ARCH_X86_64, x86  ; one check per host audit arch
//!     jeq #AUDIT_ARCH_I386, i386
//!     ret #KILL_PROCESS            ; an arch this host should not produce
//! x86:
//!     ld  [0]                      ; seccomp_data.nr
//!     jge #0x40000000, maybe_x32   ; x32 shares the audit arch, marks nr
//! native:
//!     <search tree over x86_64 numbers>
//! maybe_x32:
//!     jeq #0xffffffff, native      ; nr -1 (a tracer's "skip") is not x32
//!     <search tree over x32 numbers, each | 0x40000000>
//! i386:
//!     ld  [0]
//!     <search tree over i386 numbers>
//! ```
//!
//! A search tree is a binary search (`jge`) over the sorted numbers that
//! have a non-default action, down to leaves of a few `jeq`s, each leaf
//! followed by its own `ret`s, and by one block per syscall with argument
//! rules: each rule's comparisons in turn (`ld` the high word of
//! `seccomp_data.args[i]` at 20 + 8 i and compare, then the low word at
//! 16 + 8 i; `and` first for `MASKED_EQ`; the low word only on i386 and x32, as
//! libseccomp), its
//! `ret` when all hold, else the next rule, else the default.
//!
//! A resolved profile ([`build_effective`]) may add runc's ENOSYS stub
//! right after each arch's `ld [0]`: `jgt #last, enosys` per ABI (on
//! x86_64, `jset #X32_SYSCALL_BIT` first picks the x32 or the x86_64
//! threshold, as runc's stub does).
//!
//! A host ABI the profile does not list gets a single `ret #KILL_PROCESS`
//! in place of its tree ([`UNLISTED_ABI_RET`]), whatever the default
//! action: a profile's `defaultAction` is its verdict on the syscalls of
//! the ABIs it lists, not a licence for ABIs it never mentions (a
//! blocklist profile for x86_64 must not let `int 0x80` calls through).
//! This is libseccomp's rule for an arch a filter does not include (its
//! default bad-arch action, which runc keeps), and the rule for an arch
//! value this host cannot produce.
//!
//! Conditional jumps have 8-bit offsets; where a target is further than 255
//! instructions, the jump goes through an unconditional `ja` (32-bit
//! offset) placed right after it. Which jumps need one is found by
//! relaxation: lay out, find the too-long jumps, lengthen them, repeat until
//! nothing changes (lengthening only ever grows distances, so this ends).

use crate::effective::{Conditions, EffectiveProfile, Judgement};
use crate::oci::{Action, ArgCmp, CmpOp, OciProfile, ProfileError};
use schemas::abi::{AUDIT_ARCH_X86_64, X32_SYSCALL_BIT};
use schemas::{syscalls, Abi};
use std::collections::BTreeMap;

/// One classic-BPF instruction, laid out as the kernel's `struct
/// sock_filter`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SockFilter {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// Classic BPF opcodes (<linux/bpf_common.h>).
pub const BPF_LD: u16 = 0x00;
pub const BPF_ALU: u16 = 0x04;
pub const BPF_AND: u16 = 0x50;
pub const BPF_JMP: u16 = 0x05;
pub const BPF_RET: u16 = 0x06;
pub const BPF_W: u16 = 0x00;
pub const BPF_ABS: u16 = 0x20;
pub const BPF_JA: u16 = 0x00;
pub const BPF_JEQ: u16 = 0x10;
pub const BPF_JGT: u16 = 0x20;
pub const BPF_JGE: u16 = 0x30;
pub const BPF_JSET: u16 = 0x40;
pub const BPF_K: u16 = 0x00;

// Seccomp return values (<linux/seccomp.h>).
pub const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const SECCOMP_RET_KILL_THREAD: u32 = 0x0000_0000;
pub const SECCOMP_RET_TRAP: u32 = 0x0003_0000;
pub const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;
pub const SECCOMP_RET_LOG: u32 = 0x7ffc_0000;
pub const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
pub const SECCOMP_RET_DATA: u32 = 0x0000_ffff;

/// Offsets in `struct seccomp_data`.
pub const SECCOMP_DATA_NR: u32 = 0;
pub const SECCOMP_DATA_ARCH: u32 = 4;
pub const SECCOMP_DATA_ARGS: u32 = 16;

/// The kernel's limit on a classic-BPF program (`BPF_MAXINSNS`).
pub const BPF_MAXINSNS: usize = 4096;

/// Largest number of syscalls a search-tree leaf tests one by one. Small
/// leaves keep the worst-case path short (tree depth + this); each leaf
/// costs one `ret` for the default plus one per distinct action in it.
const LEAF: usize = 4;

/// What a call of an ABI the profile does not list gets, and a call of an
/// arch this host cannot produce: `SECCOMP_RET_KILL_PROCESS`, whatever the
/// profile's default action or `sandmine run --action`.
///
/// libseccomp kills such a call too (its default bad-arch action is
/// `SCMP_ACT_KILL`, and runc keeps it), but `SCMP_ACT_KILL` is
/// `SECCOMP_RET_KILL_THREAD`, a name from before the kernel could kill a
/// process (4.14). sandmine kills the process: killing one thread of a
/// multi-threaded program leaves the others running with whatever the dead
/// thread held (locks, half-written state), with no exit status for a
/// supervisor to see, whereas a call from an unlisted ABI is an attempt
/// to slip past the profile and must end the program. For a
/// single-threaded program the two are the same: death by SIGSYS.
pub const UNLISTED_ABI_RET: u32 = SECCOMP_RET_KILL_PROCESS;

/// What `sandmine run --action` makes of the profile's default action.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DefaultOverride {
    /// Keep the profile's own default (for a mined profile: ERRNO(EPERM)).
    #[default]
    Errno,
    /// Kill the whole process (`SECCOMP_RET_KILL_PROCESS`).
    Kill,
    /// Allow but log (`SECCOMP_RET_LOG`): a complain mode.
    Log,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error("the filter would have {len} instructions, more than the kernel's limit of {max}", max = BPF_MAXINSNS)]
    TooLong { len: usize },
    #[error("the profile has conditional rules (includes/excludes): resolve it for a host first")]
    Conditional,
    #[error("no host ABI to compile for")]
    NoHostAbi,
    #[error("internal error in the filter compiler: {0}")]
    Internal(String),
}

/// The seccomp return value of an action (with its errno, for ERRNO).
pub fn ret_value(action: Action, errno: Option<u32>) -> u32 {
    match action {
        Action::Allow => SECCOMP_RET_ALLOW,
        Action::Errno => SECCOMP_RET_ERRNO | (errno.unwrap_or(crate::EPERM) & SECCOMP_RET_DATA),
        Action::KillProcess => SECCOMP_RET_KILL_PROCESS,
        Action::KillThread | Action::Kill => SECCOMP_RET_KILL_THREAD,
        Action::Trap => SECCOMP_RET_TRAP,
        Action::Log => SECCOMP_RET_LOG,
    }
}

/// The return value for calls no rule names, after the override.
fn default_ret(profile: &OciProfile, over: DefaultOverride) -> u32 {
    match over {
        DefaultOverride::Errno => ret_value(profile.default_action, profile.default_errno()),
        DefaultOverride::Kill => SECCOMP_RET_KILL_PROCESS,
        DefaultOverride::Log => SECCOMP_RET_LOG,
    }
}

/// What the filter [`build_for`] builds returns for syscall `name` of
/// `abi` on a kernel running `host`, computed from the profile directly
/// (no BPF). `sandmine run` uses it to check, before installing a filter,
/// that the command can be exec'd at all. An ABI the host cannot run, or
/// that the profile does not list, gets [`UNLISTED_ABI_RET`].
pub fn verdict(
    profile: &OciProfile,
    over: DefaultOverride,
    host: &[Abi],
    abi: Abi,
    name: &str,
) -> u32 {
    let listed = host
        .first()
        .is_some_and(|native| profile.abis(*native).contains(&abi));
    if !host.contains(&abi) || !listed {
        return UNLISTED_ABI_RET;
    }
    let default_ret = default_ret(profile, over);
    if syscalls::number(abi, name).is_none() {
        return default_ret;
    }
    profile
        .syscalls
        .iter()
        .find(|r| r.names.iter().any(|n| n == name))
        .map_or(default_ret, |r| ret_value(r.action, r.errno()))
}

/// True when a seccomp return value lets the syscall run (ALLOW or LOG).
pub fn lets_through(ret: u32) -> bool {
    ret == SECCOMP_RET_ALLOW || ret == SECCOMP_RET_LOG
}

/// Compile `profile` for the ABIs this machine's kernel can run
/// ([`Abi::host_abis`]).
pub fn build(profile: &OciProfile, over: DefaultOverride) -> Result<Vec<SockFilter>, FilterError> {
    build_for(profile, over, Abi::host_abis())
}

/// Compile `profile` for a kernel that runs the ABIs `host` (the first one
/// is its native ABI, which an empty `architectures` list means), with the
/// profile's own meaning: no runc ENOSYS stub. Argument rules are
/// compiled; a profile with `includes`/`excludes` must be resolved for a
/// host first ([`OciProfile::resolve`], then [`build_effective`]).
pub fn build_for(
    profile: &OciProfile,
    over: DefaultOverride,
    host: &[Abi],
) -> Result<Vec<SockFilter>, FilterError> {
    profile.validate()?;
    let Some(native) = host.first().copied() else {
        return Err(FilterError::NoHostAbi);
    };
    if profile.is_conditional() {
        return Err(FilterError::Conditional);
    }
    let conditions = Conditions {
        caps: Default::default(),
        native,
        kernel: crate::oci::KernelVersion {
            kernel: 0,
            major: 0,
        },
    };
    let mut eff = profile.resolve_with(&conditions, over)?;
    eff.enosys_above.clear();
    build_effective(&eff, host)
}

/// Compile a resolved profile ([`OciProfile::resolve`]) for a kernel that
/// runs the ABIs `host`: the program answers every call as
/// [`EffectiveProfile::verdict`] does, runc's ENOSYS stub included.
pub fn build_effective(
    eff: &EffectiveProfile,
    host: &[Abi],
) -> Result<Vec<SockFilter>, FilterError> {
    let default_ret = ret_value(eff.default.0, eff.default.1);
    let leaf = |o: &crate::effective::Outcome| ret_value(o.0, o.1);
    let tables: BTreeMap<Abi, BTreeMap<u32, Leaf>> = eff
        .syscalls
        .iter()
        .map(|(abi, t)| {
            let t = t
                .iter()
                .map(|(nr, j)| {
                    let l = match j {
                        Judgement::Always(o) => Leaf::Ret(leaf(o)),
                        Judgement::Args(rules) => Leaf::Args(
                            rules
                                .iter()
                                .map(|r| (r.cmps.clone(), leaf(&r.outcome)))
                                .collect(),
                        ),
                    };
                    (*nr, l)
                })
                .collect();
            (*abi, t)
        })
        .collect();
    assemble_program(&tables, &eff.enosys_above, default_ret, host)
}

/// Per host ABI that `profile` lists (the first of `host` is the native
/// ABI, which an empty `architectures` list means): each syscall number's
/// return value, x32 numbers with `X32_SYSCALL_BIT` set. The first rule
/// naming a syscall decides (validation refuses conflicting rules); names
/// absent from an ABI (e.g. `socketcall` on x86_64) are skipped for it.
/// The input of [`build_resolved`]; for profiles without argument rules.
pub(crate) fn tables(profile: &OciProfile, host: &[Abi]) -> BTreeMap<Abi, BTreeMap<u32, u32>> {
    let listed = host
        .first()
        .map_or_else(Vec::new, |native| profile.abis(*native));
    let mut tables: BTreeMap<Abi, BTreeMap<u32, u32>> = BTreeMap::new();
    for abi in host.iter().filter(|a| listed.contains(a)) {
        let table = tables.entry(*abi).or_default();
        for rule in &profile.syscalls {
            let ret = ret_value(rule.action, rule.errno());
            for name in &rule.names {
                if let Some(nr) = syscalls::number(*abi, name) {
                    let nr = if *abi == Abi::X32 {
                        nr | X32_SYSCALL_BIT
                    } else {
                        nr
                    };
                    table.entry(nr).or_insert(ret);
                }
            }
        }
    }
    tables
}

/// The second half of [`build_for`], for callers that already resolved
/// names to numbers: `tables` holds, per listed host ABI, each number's
/// return value (x32 numbers with `X32_SYSCALL_BIT` set); an ABI absent
/// from `tables` is not listed, and its calls get [`UNLISTED_ABI_RET`].
/// Does no validation: the caller vouches for the tables (the fleet
/// compiler builds them from names it took from the syscall tables).
pub fn build_resolved(
    tables: &BTreeMap<Abi, BTreeMap<u32, u32>>,
    default_ret: u32,
    host: &[Abi],
) -> Result<Vec<SockFilter>, FilterError> {
    let tables: BTreeMap<Abi, BTreeMap<u32, Leaf>> = tables
        .iter()
        .map(|(abi, t)| (*abi, t.iter().map(|(nr, r)| (*nr, Leaf::Ret(*r))).collect()))
        .collect();
    assemble_program(&tables, &BTreeMap::new(), default_ret, host)
}

/// How the program judges one syscall number: a return value, or argument
/// rules (each: comparisons that must all hold, and its return value),
/// tried in order, else the default.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Leaf {
    Ret(u32),
    Args(Vec<ArgRet>),
}

/// One argument rule of a [`Leaf`]: comparisons that must all hold, and
/// the return value then.
type ArgRet = (Vec<ArgCmp>, u32);

/// Offset of the low 32 bits of `seccomp_data.args[index]` (little-endian:
/// x86 and aarch64); the high half is 4 bytes on.
pub const fn seccomp_data_arg_lo(index: u8) -> u32 {
    SECCOMP_DATA_ARGS + 8 * index as u32
}

/// The one program builder: the arch dispatch, runc's ENOSYS stub per
/// arch (thresholds in `enosys_above`), then the search trees.
fn assemble_program(
    tables: &BTreeMap<Abi, BTreeMap<u32, Leaf>>,
    enosys_above: &BTreeMap<Abi, u32>,
    default_ret: u32,
    host: &[Abi],
) -> Result<Vec<SockFilter>, FilterError> {
    let mut b = Builder::default();
    b.stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_ARCH);
    // Group host ABIs by the audit arch the kernel reports for them.
    let mut arches: Vec<u32> = Vec::new();
    for abi in host {
        if !arches.contains(&abi.audit_arch()) {
            arches.push(abi.audit_arch());
        }
    }
    let sections: Vec<(u32, Label)> = arches.iter().map(|a| (*a, b.label())).collect();
    for (arch, label) in &sections {
        let next = b.label();
        b.cond(BPF_JEQ, *arch, *label, next);
        b.place(next);
    }
    b.ret(UNLISTED_ABI_RET);

    // The judgement of one ABI's numbers: a search over every number whose
    // judgement is not the plain default, or, when the ABI is not listed
    // (or not a host ABI), a kill.
    let judge_abi = |b: &mut Builder, abi: Option<Abi>| match abi
        .and_then(|a| tables.get(&a).map(|t| (a, t)))
    {
        Some((abi, t)) => {
            let entries: Vec<(u32, &Leaf)> = t
                .iter()
                .filter(|(_, leaf)| **leaf != Leaf::Ret(default_ret))
                .map(|(nr, leaf)| (*nr, leaf))
                .collect();
            tree(b, &entries, default_ret, crate::oci::wide_args(abi));
        }
        None => b.ret(UNLISTED_ABI_RET),
    };
    let enosys_ret = SECCOMP_RET_ERRNO | crate::ENOSYS;
    // The stub's threshold for an ABI of this host, if runc would add one.
    let threshold = |abi: Abi| {
        host.contains(&abi)
            .then(|| enosys_above.get(&abi).copied())
            .flatten()
    };

    for (arch, label) in &sections {
        b.place(*label);
        b.stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_NR);
        let abis: Vec<Abi> = host
            .iter()
            .copied()
            .filter(|a| a.audit_arch() == *arch)
            .collect();
        let enosys = b.label();
        let mut stub = false;
        if *arch == AUDIT_ARCH_X86_64 {
            // runc's stub, as runc writes it: the x32 bit alone picks the
            // x32 or the x86_64 threshold (so nr -1 counts as x32 here).
            let (t64, t32) = (threshold(Abi::X86_64), threshold(Abi::X32));
            if t64.is_some() || t32.is_some() {
                stub = true;
                let (s64, s32, dispatch) = (b.label(), b.label(), b.label());
                b.cond(BPF_JSET, X32_SYSCALL_BIT, s32, s64);
                b.place(s64);
                match t64 {
                    Some(t) => b.cond(BPF_JGT, t, enosys, dispatch),
                    None => b.cond(BPF_JEQ, 0, dispatch, dispatch),
                }
                b.place(s32);
                if let Some(t) = t32 {
                    b.cond(BPF_JGT, t, enosys, dispatch);
                }
                b.place(dispatch);
            }
            // x86_64 and x32 share the audit arch; x32 numbers have
            // X32_SYSCALL_BIT set. Numbers at or above the bit are judged
            // only as x32 numbers (also when x32 is not a host ABI: then
            // they are all killed), so an x32 call can never be mistaken
            // for the x86_64 call of the same low number. The one
            // exception, as in libseccomp, is nr -1: what a tracer writes
            // to skip a call, judged (as no syscall) by the x86_64 rules.
            let maybe_x32 = b.label();
            let x32 = b.label();
            let native = b.label();
            b.cond(BPF_JGE, X32_SYSCALL_BIT, maybe_x32, native);
            b.place(maybe_x32);
            b.cond(BPF_JEQ, u32::MAX, native, x32);
            b.place(native);
            judge_abi(&mut b, abis.contains(&Abi::X86_64).then_some(Abi::X86_64));
            b.place(x32);
            judge_abi(&mut b, abis.contains(&Abi::X32).then_some(Abi::X32));
        } else {
            // One ABI per audit arch elsewhere (i386, aarch64).
            let abi = abis.first().copied();
            if let Some(t) = abi.and_then(threshold) {
                stub = true;
                let go = b.label();
                b.cond(BPF_JGT, t, enosys, go);
                b.place(go);
            }
            judge_abi(&mut b, abi);
        }
        if stub {
            b.place(enosys);
            b.ret(enosys_ret);
        }
    }
    b.assemble()
}

/// Emit a search over `entries` (sorted by number): each number gets its
/// leaf, anything else `default_ret`. `wide`: the ABI's arguments are 64
/// bits (for argument rules).
fn tree(b: &mut Builder, entries: &[(u32, &Leaf)], default_ret: u32, wide: bool) {
    if entries.len() <= LEAF {
        // jeq nr, ret_label ... ; ret default ; ret_label: ret value ...
        // ; args_label: <argument rules> ...
        let mut rets: Vec<(u32, Label)> = Vec::new();
        let mut blocks: Vec<(&[ArgRet], Label)> = Vec::new();
        for (nr, leaf) in entries {
            let target = match leaf {
                Leaf::Ret(ret) => match rets.iter().find(|(r, _)| r == ret) {
                    Some((_, l)) => *l,
                    None => {
                        let l = b.label();
                        rets.push((*ret, l));
                        l
                    }
                },
                Leaf::Args(rules) => {
                    let l = b.label();
                    blocks.push((rules, l));
                    l
                }
            };
            let next = b.label();
            b.cond(BPF_JEQ, *nr, target, next);
            b.place(next);
        }
        b.ret(default_ret);
        for (ret, label) in rets {
            b.place(label);
            b.ret(ret);
        }
        for (rules, label) in blocks {
            b.place(label);
            arg_rules(b, rules, default_ret, wide);
        }
        return;
    }
    let mid = entries.len() / 2;
    let (left, right) = entries.split_at(mid);
    let (lo, hi) = (b.label(), b.label());
    b.cond(BPF_JGE, right[0].0, hi, lo);
    b.place(lo);
    tree(b, left, default_ret, wide);
    b.place(hi);
    tree(b, right, default_ret, wide);
}

/// Argument rules of one syscall, ORed: the first rule whose comparisons
/// all hold returns its value; if none does, `default_ret`.
fn arg_rules(b: &mut Builder, rules: &[ArgRet], default_ret: u32, wide: bool) {
    for (cmps, ret) in rules {
        let fail = b.label();
        for c in cmps {
            arg_cmp(b, c, wide, fail);
        }
        b.ret(*ret);
        b.place(fail);
    }
    b.ret(default_ret);
}

/// One comparison, as libseccomp makes it: falls through when it holds,
/// jumps to `fail` when not. On a 64-bit ABI, the high words decide
/// unless they are equal, then the low words (unsigned); on i386 only the
/// low words are compared (libseccomp's 32-bit rules; the kernel
/// zero-extends i386 arguments, so the high word is 0 anyway).
fn arg_cmp(b: &mut Builder, c: &ArgCmp, wide: bool, fail: Label) {
    let lo_off = seccomp_data_arg_lo(c.index);
    let hi_off = lo_off + 4;
    let (v_hi, v_lo) = ((c.value >> 32) as u32, c.value as u32);
    let pass = b.label();
    let ld = |b: &mut Builder, off: u32| b.stmt(BPF_LD | BPF_W | BPF_ABS, off);
    if c.op == CmpOp::MaskedEq {
        let d = c.value_two & c.value;
        let (d_hi, d_lo) = ((d >> 32) as u32, d as u32);
        if wide && v_hi != 0 {
            let next = b.label();
            ld(b, hi_off);
            b.stmt(BPF_ALU | BPF_AND | BPF_K, v_hi);
            b.cond(BPF_JEQ, d_hi, next, fail);
            b.place(next);
        }
        if v_lo != 0 {
            ld(b, lo_off);
            b.stmt(BPF_ALU | BPF_AND | BPF_K, v_lo);
            b.cond(BPF_JEQ, d_lo, pass, fail);
        }
        b.place(pass);
        return;
    }
    // The low-word test: (jump op, k, target when true, when false).
    let lo_test = match c.op {
        // (MASKED_EQ returned above.)
        CmpOp::Eq | CmpOp::MaskedEq => (BPF_JEQ, pass, fail),
        CmpOp::Ne => (BPF_JEQ, fail, pass),
        CmpOp::Gt => (BPF_JGT, pass, fail),
        CmpOp::Ge => (BPF_JGE, pass, fail),
        CmpOp::Lt => (BPF_JGE, fail, pass),
        CmpOp::Le => (BPF_JGT, fail, pass),
    };
    if wide {
        let next = b.label();
        ld(b, hi_off);
        match c.op {
            // High words differ: EQ fails, NE holds.
            CmpOp::Eq | CmpOp::MaskedEq => b.cond(BPF_JEQ, v_hi, next, fail),
            CmpOp::Ne => b.cond(BPF_JEQ, v_hi, next, pass),
            // High word above: GT/GE hold, LT/LE fail; below: the reverse.
            CmpOp::Gt | CmpOp::Ge | CmpOp::Lt | CmpOp::Le => {
                let (above, below) = if matches!(c.op, CmpOp::Gt | CmpOp::Ge) {
                    (pass, fail)
                } else {
                    (fail, pass)
                };
                let not_above = b.label();
                b.cond(BPF_JGT, v_hi, above, not_above);
                b.place(not_above);
                b.cond(BPF_JEQ, v_hi, next, below);
            }
        }
        b.place(next);
    }
    ld(b, lo_off);
    b.cond(lo_test.0, v_lo, lo_test.1, lo_test.2);
    b.place(pass);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Label(usize);

#[derive(Clone, Copy, Debug)]
enum Op {
    Stmt {
        code: u16,
        k: u32,
    },
    Cond {
        op: u16,
        k: u32,
        jt: Label,
        jf: Label,
    },
    Ret(u32),
    Place(Label),
}

/// A program with symbolic jump targets, assembled by relaxation.
#[derive(Default)]
struct Builder {
    ops: Vec<Op>,
    labels: usize,
}

impl Builder {
    fn label(&mut self) -> Label {
        self.labels += 1;
        Label(self.labels - 1)
    }
    fn place(&mut self, l: Label) {
        self.ops.push(Op::Place(l));
    }
    fn stmt(&mut self, code: u16, k: u32) {
        self.ops.push(Op::Stmt { code, k });
    }
    fn cond(&mut self, op: u16, k: u32, jt: Label, jf: Label) {
        self.ops.push(Op::Cond { op, k, jt, jf });
    }
    fn ret(&mut self, k: u32) {
        self.ops.push(Op::Ret(k));
    }

    /// Label positions and total length, for the given long-jump choices
    /// (`long[i]` = (jt long, jf long) of op i).
    fn layout(&self, long: &[(bool, bool)]) -> (Vec<Option<usize>>, usize) {
        let mut pos = vec![None; self.labels];
        let mut pc = 0;
        for (op, (lt, lf)) in self.ops.iter().zip(long) {
            match op {
                Op::Place(l) => pos[l.0] = Some(pc),
                Op::Cond { .. } => pc += 1 + usize::from(*lt) + usize::from(*lf),
                Op::Stmt { .. } | Op::Ret(_) => pc += 1,
            }
        }
        (pos, pc)
    }

    fn assemble(self) -> Result<Vec<SockFilter>, FilterError> {
        let mut long = vec![(false, false); self.ops.len()];
        let (pos, len) = loop {
            let (pos, len) = self.layout(&long);
            let mut changed = false;
            let mut pc = 0;
            for (i, op) in self.ops.iter().enumerate() {
                match op {
                    Op::Place(_) => {}
                    Op::Stmt { .. } | Op::Ret(_) => pc += 1,
                    Op::Cond { jt, jf, .. } => {
                        let (lt, lf) = long[i];
                        let next = pc + 1;
                        if !lt && distance(&pos, *jt, next)? > 255 {
                            long[i].0 = true;
                            changed = true;
                        }
                        if !lf && distance(&pos, *jf, next)? > 255 {
                            long[i].1 = true;
                            changed = true;
                        }
                        pc += 1 + usize::from(lt) + usize::from(lf);
                    }
                }
            }
            if !changed {
                break (pos, len);
            }
        };
        if len > BPF_MAXINSNS {
            return Err(FilterError::TooLong { len });
        }

        let mut out = Vec::with_capacity(len);
        for (op, (lt, lf)) in self.ops.iter().zip(&long) {
            match op {
                Op::Place(_) => {}
                Op::Stmt { code, k } => out.push(SockFilter {
                    code: *code,
                    jt: 0,
                    jf: 0,
                    k: *k,
                }),
                Op::Ret(k) => out.push(SockFilter {
                    code: BPF_RET | BPF_K,
                    jt: 0,
                    jf: 0,
                    k: *k,
                }),
                Op::Cond { op, k, jt, jf } => {
                    // cond at p; then the jt trampoline (if long), then the
                    // jf trampoline (if long). Offsets count from p + 1.
                    let p = out.len();
                    let next = p + 1;
                    let jt_off = if *lt { 0 } else { distance(&pos, *jt, next)? };
                    let jf_off = if *lf {
                        usize::from(*lt)
                    } else {
                        distance(&pos, *jf, next)?
                    };
                    out.push(SockFilter {
                        code: BPF_JMP | op | BPF_K,
                        jt: short(jt_off)?,
                        jf: short(jf_off)?,
                        k: *k,
                    });
                    for (is_long, target) in [(*lt, *jt), (*lf, *jf)] {
                        if is_long {
                            let from = out.len() + 1;
                            let d = distance(&pos, target, from)?;
                            let k = u32::try_from(d)
                                .map_err(|_| FilterError::Internal("jump too long".into()))?;
                            out.push(SockFilter {
                                code: BPF_JMP | BPF_JA | BPF_K,
                                jt: 0,
                                jf: 0,
                                k,
                            });
                        }
                    }
                }
            }
        }
        if out.len() != len {
            return Err(FilterError::Internal(format!(
                "laid out {len} instructions, emitted {}",
                out.len()
            )));
        }
        Ok(out)
    }
}

/// Forward distance from instruction `from` to `target`; BPF only jumps
/// forward, so a backward target is a compiler bug.
fn distance(pos: &[Option<usize>], target: Label, from: usize) -> Result<usize, FilterError> {
    let to = pos
        .get(target.0)
        .copied()
        .flatten()
        .ok_or_else(|| FilterError::Internal(format!("label {} never placed", target.0)))?;
    to.checked_sub(from)
        .ok_or_else(|| FilterError::Internal(format!("backward jump to label {}", target.0)))
}

fn short(d: usize) -> Result<u8, FilterError> {
    u8::try_from(d).map_err(|_| FilterError::Internal(format!("short jump of {d}")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::oci::{self, ScmpArch, SyscallRule};
    use crate::{ENOSYS, EPERM};
    use schemas::abi::{AUDIT_ARCH_AARCH64, AUDIT_ARCH_I386};
    use std::collections::BTreeSet;

    // --- The kernel's checks and evaluation: crate::bpf. -----------------

    /// Asserts that the kernel accepts `prog` ([`crate::bpf::check`]).
    pub(crate) fn verify(prog: &[SockFilter]) {
        if let Err(e) = crate::bpf::check(prog) {
            panic!("the kernel would refuse the program: {e}");
        }
    }

    /// Run `prog` on a `seccomp_data` with these `nr` and `arch` (the other
    /// fields zero), as the kernel would.
    fn run(prog: &[SockFilter], nr: u32, arch: u32) -> u32 {
        run_args(prog, nr, arch, [0; 6])
    }

    /// Run `prog` on a `seccomp_data` with these `nr`, `arch` and `args`,
    /// as the kernel would.
    pub(crate) fn run_args(prog: &[SockFilter], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
        let data = crate::bpf::SeccompData {
            nr,
            arch,
            instruction_pointer: 0,
            args,
        };
        crate::bpf::run(prog, &data).unwrap_or_else(|e| panic!("refused program: {e}"))
    }

    const X86_HOST: &[Abi] = &[Abi::X86_64, Abi::I386, Abi::X32];
    const ALLOW: u32 = SECCOMP_RET_ALLOW;
    const EPERM_RET: u32 = SECCOMP_RET_ERRNO | EPERM;
    const ENOSYS_RET: u32 = SECCOMP_RET_ERRNO | ENOSYS;

    fn nr(abi: Abi, name: &str) -> u32 {
        let n = syscalls::number(abi, name).unwrap_or_else(|| panic!("{abi} has no {name}"));
        if abi == Abi::X32 {
            n | X32_SYSCALL_BIT
        } else {
            n
        }
    }

    /// Judge syscall `name` of `abi` with `prog`.
    fn judge(prog: &[SockFilter], abi: Abi, name: &str) -> u32 {
        run(prog, nr(abi, name), abi.audit_arch())
    }

    fn profile(abis: &[Abi], allow: &[&str], probed: &[&str]) -> OciProfile {
        let mut syscalls = vec![SyscallRule {
            names: allow.iter().map(|s| s.to_string()).collect(),
            action: Action::Allow,
            errno_ret: None,
            comment: None,
            ..Default::default()
        }];
        if !probed.is_empty() {
            syscalls.push(SyscallRule {
                names: probed.iter().map(|s| s.to_string()).collect(),
                action: Action::Errno,
                errno_ret: Some(ENOSYS),
                comment: None,
                ..Default::default()
            });
        }
        OciProfile {
            default_action: Action::Errno,
            default_errno_ret: Some(EPERM),
            architectures: abis.iter().map(|a| ScmpArch::from(*a)).collect(),
            arch_map: Vec::new(),
            syscalls,
            sandmine: None,
        }
    }

    fn compile_x86(p: &OciProfile, over: DefaultOverride) -> Vec<SockFilter> {
        let prog = build_for(p, over, X86_HOST).unwrap();
        verify(&prog);
        prog
    }

    /// Reference semantics: what `p` should return for number `n` of `abi`.
    fn expected(p: &OciProfile, host: &[Abi], abi: Abi, n: u32, default_ret: u32) -> u32 {
        if !p.abis(host[0]).contains(&abi) || !host.contains(&abi) {
            return UNLISTED_ABI_RET;
        }
        let n = if abi == Abi::X32 {
            n & !X32_SYSCALL_BIT
        } else {
            n
        };
        match syscalls::name(abi, n) {
            Some(name) => match p
                .syscalls
                .iter()
                .find(|r| r.names.iter().any(|x| x == name))
            {
                Some(r) => ret_value(r.action, r.errno()),
                None => default_ret,
            },
            None => default_ret,
        }
    }

    /// Every number 0..1024 of every host ABI (x32 with its bit), plus a
    /// few outliers, against the reference semantics.
    fn check_exhaustively(p: &OciProfile, prog: &[SockFilter], host: &[Abi], default_ret: u32) {
        for abi in host {
            let mut numbers: Vec<u32> = (0..1024).collect();
            numbers.extend([u32::MAX, 0x7fff_ffff, 0x8000_0000]);
            for n in numbers {
                let n = if *abi == Abi::X32 && n < X32_SYSCALL_BIT {
                    n | X32_SYSCALL_BIT
                } else {
                    n
                };
                // x86_64 and x32 share the audit arch: numbers at or above
                // the x32 bit are x32 calls, but for -1, which is judged
                // (as no syscall) by the x86_64 rules, as in libseccomp.
                let judged_as = match *abi {
                    Abi::X86_64 | Abi::X32 if n == u32::MAX => Abi::X86_64,
                    Abi::X86_64 if n >= X32_SYSCALL_BIT => Abi::X32,
                    a => a,
                };
                let want = expected(p, host, judged_as, n, default_ret);
                assert_eq!(run(prog, n, abi.audit_arch()), want, "{abi} nr {n:#x}");
                if let Some(name) = syscalls::name(judged_as, n & !X32_SYSCALL_BIT) {
                    if judged_as == *abi || host.contains(&judged_as) {
                        let over = match default_ret {
                            SECCOMP_RET_KILL_PROCESS => DefaultOverride::Kill,
                            SECCOMP_RET_LOG => DefaultOverride::Log,
                            _ => DefaultOverride::Errno,
                        };
                        assert_eq!(
                            verdict(p, over, host, judged_as, name),
                            want,
                            "verdict {abi} {name}"
                        );
                    }
                }
            }
        }
    }

    // --- Tests. ------------------------------------------------------------

    #[test]
    fn allowed_denied_and_probed() {
        let p = profile(
            &[Abi::X86_64],
            &["read", "write", "exit_group"],
            &["clone3", "statx"],
        );
        let prog = compile_x86(&p, DefaultOverride::Errno);
        assert_eq!(judge(&prog, Abi::X86_64, "read"), ALLOW);
        assert_eq!(judge(&prog, Abi::X86_64, "exit_group"), ALLOW);
        assert_eq!(judge(&prog, Abi::X86_64, "socket"), EPERM_RET);
        assert_eq!(judge(&prog, Abi::X86_64, "clone3"), ENOSYS_RET);
        assert_eq!(judge(&prog, Abi::X86_64, "statx"), ENOSYS_RET);
        check_exhaustively(&p, &prog, X86_HOST, EPERM_RET);
    }

    #[test]
    fn unlisted_host_abis_are_killed() {
        let p = profile(&[Abi::X86_64], &["read", "write"], &[]);
        for over in [
            DefaultOverride::Errno,
            DefaultOverride::Log,
            DefaultOverride::Kill,
        ] {
            let prog = compile_x86(&p, over);
            // i386 and x32 are not listed: even `read` kills there.
            assert_eq!(judge(&prog, Abi::I386, "read"), SECCOMP_RET_KILL_PROCESS);
            assert_eq!(judge(&prog, Abi::X32, "read"), SECCOMP_RET_KILL_PROCESS);
            assert_eq!(judge(&prog, Abi::X32, "write"), SECCOMP_RET_KILL_PROCESS);
            assert_eq!(judge(&prog, Abi::X86_64, "read"), ALLOW);
            // nr -1 is no x32 call: the x86_64 default, as in libseccomp.
            assert_eq!(
                run(&prog, u32::MAX, AUDIT_ARCH_X86_64),
                default_ret(&p, over)
            );
        }
    }

    #[test]
    fn blocklist_profiles_kill_unlisted_abis() {
        // The profile of issue 9: allow by default, deny ptrace, list only
        // x86_64. An `int 0x80` ptrace (i386 26) must not get ALLOW.
        let mut p = profile(&[Abi::X86_64], &[], &[]);
        p.default_action = Action::Allow;
        p.default_errno_ret = None;
        p.syscalls = vec![SyscallRule {
            names: vec!["ptrace".into()],
            action: Action::Errno,
            errno_ret: None,
            comment: None,
            ..Default::default()
        }];
        let prog = compile_x86(&p, DefaultOverride::Errno);
        assert_eq!(judge(&prog, Abi::X86_64, "ptrace"), EPERM_RET);
        assert_eq!(judge(&prog, Abi::X86_64, "getpid"), ALLOW);
        assert_eq!(run(&prog, 26, AUDIT_ARCH_I386), SECCOMP_RET_KILL_PROCESS);
        assert_eq!(judge(&prog, Abi::I386, "getpid"), SECCOMP_RET_KILL_PROCESS);
        assert_eq!(judge(&prog, Abi::X32, "ptrace"), SECCOMP_RET_KILL_PROCESS);
        check_exhaustively(&p, &prog, X86_HOST, ALLOW);
        // Listing i386 and x32 puts their calls under the rules.
        p.architectures = [Abi::X86_64, Abi::I386, Abi::X32]
            .into_iter()
            .map(ScmpArch::from)
            .collect();
        let prog = compile_x86(&p, DefaultOverride::Errno);
        assert_eq!(run(&prog, 26, AUDIT_ARCH_I386), EPERM_RET);
        assert_eq!(judge(&prog, Abi::X32, "ptrace"), EPERM_RET);
        assert_eq!(judge(&prog, Abi::I386, "getpid"), ALLOW);
        check_exhaustively(&p, &prog, X86_HOST, ALLOW);
    }

    #[test]
    fn i386_is_judged_by_i386_numbers() {
        // x86_64 `getuid` is 102, which on i386 is `socketcall`; i386
        // `getuid` is 24, and `socket` exists in both ABIs (41 on x86_64,
        // where i386 41 is `dup`; 359 on i386).
        assert_eq!(syscalls::number(Abi::X86_64, "getuid"), Some(102));
        assert_eq!(syscalls::number(Abi::I386, "socketcall"), Some(102));
        assert_eq!(syscalls::number(Abi::I386, "getuid"), Some(24));
        assert_eq!(syscalls::number(Abi::X86_64, "socket"), Some(41));
        assert_eq!(syscalls::number(Abi::I386, "dup"), Some(41));
        assert_eq!(syscalls::number(Abi::I386, "socket"), Some(359));
        assert_eq!(syscalls::number(Abi::X86_64, "socketcall"), None);

        let p = profile(&[Abi::X86_64, Abi::I386], &["getuid", "socket"], &[]);
        let prog = compile_x86(&p, DefaultOverride::Errno);
        let i386 = AUDIT_ARCH_I386;
        let x86 = AUDIT_ARCH_X86_64;
        assert_eq!(run(&prog, 102, x86), ALLOW, "x86_64 getuid");
        assert_eq!(run(&prog, 102, i386), EPERM_RET, "i386 socketcall");
        assert_eq!(run(&prog, 24, i386), ALLOW, "i386 getuid");
        assert_eq!(run(&prog, 41, x86), ALLOW, "x86_64 socket");
        assert_eq!(run(&prog, 41, i386), EPERM_RET, "i386 dup");
        assert_eq!(run(&prog, 359, i386), ALLOW, "i386 socket");
        check_exhaustively(&p, &prog, X86_HOST, EPERM_RET);

        // `socketcall` allowed: only i386 has it.
        let p = profile(&[Abi::X86_64, Abi::I386], &["socketcall"], &[]);
        let prog = compile_x86(&p, DefaultOverride::Errno);
        assert_eq!(run(&prog, 102, i386), ALLOW);
        assert_eq!(run(&prog, 102, x86), EPERM_RET);
    }

    #[test]
    fn x32_bit_handling() {
        let read = syscalls::number(Abi::X86_64, "read").unwrap();
        let x32_read = nr(Abi::X32, "read");
        assert_eq!(x32_read, read | X32_SYSCALL_BIT);

        // Only x86_64 listed: the x32 `read` must not slip through.
        let p = profile(&[Abi::X86_64], &["read"], &[]);
        let prog = compile_x86(&p, DefaultOverride::Errno);
        assert_eq!(run(&prog, read, AUDIT_ARCH_X86_64), ALLOW);
        assert_eq!(
            run(&prog, x32_read, AUDIT_ARCH_X86_64),
            SECCOMP_RET_KILL_PROCESS
        );

        // Only x32 listed: the x86_64 `read` (no bit) is killed.
        let p = profile(&[Abi::X32], &["read"], &[]);
        let prog = compile_x86(&p, DefaultOverride::Errno);
        assert_eq!(
            run(&prog, read, AUDIT_ARCH_X86_64),
            SECCOMP_RET_KILL_PROCESS
        );
        assert_eq!(run(&prog, x32_read, AUDIT_ARCH_X86_64), ALLOW);
        check_exhaustively(&p, &prog, X86_HOST, EPERM_RET);

        // Both: both allowed; an x32-only number (rt_sigaction is 512 on
        // x32) is judged as x32.
        let p = profile(&[Abi::X86_64, Abi::X32], &["read", "rt_sigaction"], &[]);
        let prog = compile_x86(&p, DefaultOverride::Errno);
        assert_eq!(run(&prog, read, AUDIT_ARCH_X86_64), ALLOW);
        assert_eq!(run(&prog, x32_read, AUDIT_ARCH_X86_64), ALLOW);
        assert_eq!(judge(&prog, Abi::X32, "rt_sigaction"), ALLOW);
        assert_eq!(judge(&prog, Abi::X86_64, "rt_sigaction"), ALLOW);
        check_exhaustively(&p, &prog, X86_HOST, EPERM_RET);

        // A host without x32: numbers with the bit are killed.
        let host = &[Abi::X86_64, Abi::I386];
        let prog = build_for(&p, DefaultOverride::Errno, host).unwrap();
        verify(&prog);
        assert_eq!(
            run(&prog, x32_read, AUDIT_ARCH_X86_64),
            SECCOMP_RET_KILL_PROCESS
        );
        assert_eq!(run(&prog, read, AUDIT_ARCH_X86_64), ALLOW);
    }

    #[test]
    fn unknown_arch_is_killed() {
        let p = profile(&[Abi::X86_64, Abi::I386, Abi::X32], &["read"], &[]);
        for over in [
            DefaultOverride::Errno,
            DefaultOverride::Log,
            DefaultOverride::Kill,
        ] {
            let prog = compile_x86(&p, over);
            assert_eq!(run(&prog, 0, AUDIT_ARCH_AARCH64), SECCOMP_RET_KILL_PROCESS);
            assert_eq!(run(&prog, 0, 0), SECCOMP_RET_KILL_PROCESS);
            assert_eq!(run(&prog, 0, 0xdead_beef), SECCOMP_RET_KILL_PROCESS);
        }
    }

    #[test]
    fn default_overrides() {
        let p = profile(&[Abi::X86_64], &["read"], &["clone3"]);
        let kill = compile_x86(&p, DefaultOverride::Kill);
        assert_eq!(
            judge(&kill, Abi::X86_64, "socket"),
            SECCOMP_RET_KILL_PROCESS
        );
        assert_eq!(judge(&kill, Abi::X86_64, "clone3"), ENOSYS_RET);
        assert_eq!(judge(&kill, Abi::X86_64, "read"), ALLOW);
        check_exhaustively(&p, &kill, X86_HOST, SECCOMP_RET_KILL_PROCESS);
        let log = compile_x86(&p, DefaultOverride::Log);
        assert_eq!(judge(&log, Abi::X86_64, "socket"), SECCOMP_RET_LOG);
        assert_eq!(judge(&log, Abi::X86_64, "clone3"), ENOSYS_RET);
        check_exhaustively(&p, &log, X86_HOST, SECCOMP_RET_LOG);

        // `errno` keeps the profile's default, whatever it is.
        let mut p2 = p.clone();
        p2.default_errno_ret = Some(13);
        let prog = compile_x86(&p2, DefaultOverride::Errno);
        assert_eq!(judge(&prog, Abi::X86_64, "socket"), SECCOMP_RET_ERRNO | 13);
        p2.default_action = Action::Trap;
        let prog = compile_x86(&p2, DefaultOverride::Errno);
        assert_eq!(judge(&prog, Abi::X86_64, "socket"), SECCOMP_RET_TRAP);
    }

    #[test]
    fn every_rule_action() {
        let mut p = profile(&[Abi::X86_64], &["read"], &[]);
        for (name, action, errno) in [
            ("kill", Action::KillProcess, None),
            ("tkill", Action::KillThread, None),
            ("tgkill", Action::Kill, None),
            ("ptrace", Action::Trap, None),
            ("socket", Action::Log, None),
            ("bpf", Action::Errno, Some(13)),
            ("mount", Action::Errno, None),
        ] {
            p.syscalls.push(SyscallRule {
                names: vec![name.into()],
                action,
                errno_ret: errno,
                comment: None,
                ..Default::default()
            });
        }
        let prog = compile_x86(&p, DefaultOverride::Kill);
        assert_eq!(judge(&prog, Abi::X86_64, "kill"), SECCOMP_RET_KILL_PROCESS);
        assert_eq!(judge(&prog, Abi::X86_64, "tkill"), SECCOMP_RET_KILL_THREAD);
        assert_eq!(judge(&prog, Abi::X86_64, "tgkill"), SECCOMP_RET_KILL_THREAD);
        assert_eq!(judge(&prog, Abi::X86_64, "ptrace"), SECCOMP_RET_TRAP);
        assert_eq!(judge(&prog, Abi::X86_64, "socket"), SECCOMP_RET_LOG);
        assert_eq!(judge(&prog, Abi::X86_64, "bpf"), SECCOMP_RET_ERRNO | 13);
        assert_eq!(judge(&prog, Abi::X86_64, "mount"), EPERM_RET);
        assert_eq!(judge(&prog, Abi::X86_64, "read"), ALLOW);
        check_exhaustively(&p, &prog, X86_HOST, SECCOMP_RET_KILL_PROCESS);
    }

    /// 400 names from the x86_64 and i386 tables: a program long enough
    /// that the upper levels of the search trees need long jumps.
    fn big_profile() -> OciProfile {
        let names: BTreeSet<&str> = syscalls::table(Abi::X86_64)
            .iter()
            .chain(syscalls::table(Abi::I386))
            .map(|(_, n)| *n)
            .collect();
        assert!(names.len() >= 400, "tables too small: {}", names.len());
        // Every other name allowed, so that allowed numbers are not one
        // contiguous run; then the next ones probed.
        let all: Vec<&str> = names.into_iter().collect();
        let allow: Vec<&str> = all.iter().step_by(2).take(400).copied().collect();
        let rest: Vec<&str> = all.iter().skip(1).step_by(2).take(20).copied().collect();
        profile(&[Abi::X86_64, Abi::I386, Abi::X32], &allow, &rest)
    }

    #[test]
    fn big_profiles_need_long_jumps_and_still_work() {
        let p = big_profile();
        p.validate().unwrap();
        for over in [DefaultOverride::Errno, DefaultOverride::Kill] {
            let prog = compile_x86(&p, over);
            let long_jumps = prog
                .iter()
                .filter(|i| i.code == BPF_JMP | BPF_JA | BPF_K)
                .count();
            assert!(
                long_jumps > 0,
                "expected long jumps in {} instructions",
                prog.len()
            );
            assert!(prog
                .iter()
                .any(|i| i.code == BPF_JMP | BPF_JA | BPF_K && i.k > 255));
            let default_ret = if over == DefaultOverride::Kill {
                SECCOMP_RET_KILL_PROCESS
            } else {
                EPERM_RET
            };
            check_exhaustively(&p, &prog, X86_HOST, default_ret);
        }
    }

    #[test]
    fn allow_everything_fits() {
        // The largest profile the tables allow: every name, every x86 ABI.
        let names: BTreeSet<&str> = [Abi::X86_64, Abi::I386, Abi::X32]
            .iter()
            .flat_map(|a| syscalls::table(*a).iter().map(|(_, n)| *n))
            .collect();
        let names: Vec<&str> = names.into_iter().collect();
        let p = profile(&[Abi::X86_64, Abi::I386, Abi::X32], &names, &[]);
        let prog = compile_x86(&p, DefaultOverride::Errno);
        check_exhaustively(&p, &prog, X86_HOST, EPERM_RET);
    }

    #[test]
    fn aarch64_host() {
        let p = profile(
            &[Abi::Aarch64, Abi::X86_64],
            &["read", "openat"],
            &["clone3"],
        );
        let host = &[Abi::Aarch64];
        let prog = build_for(&p, DefaultOverride::Errno, host).unwrap();
        verify(&prog);
        assert_eq!(judge(&prog, Abi::Aarch64, "openat"), ALLOW);
        assert_eq!(judge(&prog, Abi::Aarch64, "clone3"), ENOSYS_RET);
        assert_eq!(judge(&prog, Abi::Aarch64, "write"), EPERM_RET);
        assert_eq!(run(&prog, 0, AUDIT_ARCH_X86_64), SECCOMP_RET_KILL_PROCESS);
        check_exhaustively(&p, &prog, host, EPERM_RET);
    }

    #[test]
    fn empty_architectures_mean_native() {
        let p = profile(&[], &["read"], &[]);
        let prog = compile_x86(&p, DefaultOverride::Errno);
        assert_eq!(judge(&prog, Abi::X86_64, "read"), ALLOW);
        assert_eq!(judge(&prog, Abi::I386, "read"), SECCOMP_RET_KILL_PROCESS);
        check_exhaustively(&p, &prog, X86_HOST, EPERM_RET);
    }

    #[test]
    fn parsed_profile_compiles() {
        let p = oci::parse(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}"#,
        )
        .unwrap();
        let prog = compile_x86(&p, DefaultOverride::Errno);
        assert_eq!(judge(&prog, Abi::X86_64, "read"), ALLOW);
        // Small programs need no long jump.
        assert!(prog.iter().all(|i| i.code != BPF_JMP | BPF_JA | BPF_K));
    }

    #[test]
    fn invalid_profiles_are_refused() {
        let mut p = profile(&[Abi::X86_64], &["read", "no_such_call"], &[]);
        assert!(matches!(
            build_for(&p, DefaultOverride::Errno, X86_HOST),
            Err(FilterError::Profile(ProfileError::UnknownSyscall { .. }))
        ));
        p.syscalls[0].names.pop();
        p.default_errno_ret = Some(5000);
        assert!(matches!(
            build_for(&p, DefaultOverride::Errno, X86_HOST),
            Err(FilterError::Profile(ProfileError::ErrnoOutOfRange { .. }))
        ));
    }

    #[test]
    fn too_long_programs_are_refused() {
        // More distinct entries than any real table has.
        let leaf = Leaf::Ret(ALLOW);
        let entries: Vec<(u32, &Leaf)> = (0..5000u32).map(|n| (n * 2, &leaf)).collect();
        let mut b = Builder::default();
        b.stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_NR);
        tree(&mut b, &entries, EPERM_RET, true);
        match b.assemble() {
            Err(FilterError::TooLong { len }) => assert!(len > BPF_MAXINSNS),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn synthetic_trees_with_long_jumps() {
        // 1500 scattered numbers with mixed actions, run exhaustively.
        let entries: Vec<(u32, u32)> = (0..1500u32)
            .map(|n| (n * 3 + n % 2, if n % 7 == 0 { ENOSYS_RET } else { ALLOW }))
            .collect();
        let leaves: Vec<Leaf> = entries.iter().map(|(_, r)| Leaf::Ret(*r)).collect();
        let refs: Vec<(u32, &Leaf)> = entries.iter().map(|(n, _)| *n).zip(&leaves).collect();
        let mut b = Builder::default();
        b.stmt(BPF_LD | BPF_W | BPF_ABS, SECCOMP_DATA_NR);
        tree(&mut b, &refs, EPERM_RET, true);
        let prog = b.assemble().unwrap();
        verify(&prog);
        assert!(prog.iter().any(|i| i.code == BPF_JMP | BPF_JA | BPF_K));
        let map: BTreeMap<u32, u32> = entries.into_iter().collect();
        for n in 0..5000 {
            assert_eq!(
                run(&prog, n, 0),
                *map.get(&n).unwrap_or(&EPERM_RET),
                "nr {n}"
            );
        }
    }

    #[test]
    fn sock_filter_layout() {
        assert_eq!(std::mem::size_of::<SockFilter>(), 8);
        assert_eq!(std::mem::align_of::<SockFilter>(), 4);
    }
}
