//! The second oracle of the profile target: libseccomp's own program for
//! the same rules, exported with `seccomp_export_bpf` (the libseccomp runc
//! links; Debian's libseccomp-dev) and run in [`policy_compiler::bpf`].
//!
//! What libseccomp gets is what runc hands it after dockerd's and runc's
//! own steps, which [`EffectiveProfile`] models (conditions evaluated,
//! rules equal to the default dropped, repeated argument indexes split):
//! per ABI, one filter of that ABI alone, the default action, and each
//! judged syscall with its rules. libseccomp takes a rule's syscall as a
//! native (x86_64) number or pseudo-number and maps it to the filter's ABI
//! by name with its own tables, so each number goes in by its name in
//! sandmine's tables; a name libseccomp does not resolve to the same
//! number for that ABI (its tables are older than the kernel's) is left
//! out, and its calls are not compared. runc's ENOSYS stub is runc's
//! code, not libseccomp's, so it is left out of both sides; and calls of
//! an ABI the profile does not list are sandmine's rule (killed), not
//! compared.

use policy_compiler::effective::{EffectiveProfile, Judgement};
use policy_compiler::filter::{ret_value, SockFilter};
use policy_compiler::oci::CmpOp;
use schemas::abi::X32_SYSCALL_BIT;
use schemas::{syscalls, Abi};
use std::collections::BTreeSet;
use std::ffi::{c_char, c_int, c_uint, c_void, CString};
use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{FromRawFd, OwnedFd};

/// `struct scmp_arg_cmp`.
#[repr(C)]
struct ScmpArgCmp {
    arg: c_uint,
    op: c_int,
    datum_a: u64,
    datum_b: u64,
}

#[link(name = "seccomp")]
extern "C" {
    fn seccomp_init(def_action: u32) -> *mut c_void;
    fn seccomp_release(ctx: *mut c_void);
    fn seccomp_arch_add(ctx: *mut c_void, arch_token: u32) -> c_int;
    fn seccomp_arch_remove(ctx: *mut c_void, arch_token: u32) -> c_int;
    fn seccomp_arch_native() -> u32;
    fn seccomp_rule_add_exact_array(
        ctx: *mut c_void,
        action: u32,
        syscall: c_int,
        arg_cnt: c_uint,
        arg_array: *const ScmpArgCmp,
    ) -> c_int;
    fn seccomp_export_bpf(ctx: *mut c_void, fd: c_int) -> c_int;
    fn seccomp_syscall_resolve_name(name: *const c_char) -> c_int;
    fn seccomp_syscall_resolve_name_arch(arch_token: u32, name: *const c_char) -> c_int;
}

extern "C" {
    fn memfd_create(name: *const c_char, flags: c_uint) -> c_int;
}

/// libseccomp's arch token for an ABI (`SCMP_ARCH_*`).
fn arch_token(abi: Abi) -> u32 {
    match abi {
        // EM_X86_64 | __AUDIT_ARCH_LE, without __AUDIT_ARCH_64BIT.
        Abi::X32 => 0x4000_003e,
        a => a.audit_arch(),
    }
}

/// `enum scmp_compare`.
fn op(op: CmpOp) -> c_int {
    match op {
        CmpOp::Ne => 1,
        CmpOp::Lt => 2,
        CmpOp::Le => 3,
        CmpOp::Eq => 4,
        CmpOp::Ge => 5,
        CmpOp::Gt => 6,
        CmpOp::MaskedEq => 7,
    }
}

/// An owned libseccomp filter context.
struct Ctx(*mut c_void);

impl Drop for Ctx {
    fn drop(&mut self) {
        // SAFETY: the context came from seccomp_init and is released once.
        unsafe { seccomp_release(self.0) }
    }
}

/// Why libseccomp made no program.
#[derive(Debug)]
pub enum Refused {
    /// libseccomp refused a call (its negative errno) at this step.
    Call(&'static str, c_int),
    /// Reading the exported program back failed.
    Io(std::io::Error),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Call(what, rc) => write!(f, "{what}: error {rc}"),
            Refused::Io(e) => write!(f, "reading the exported program: {e}"),
        }
    }
}

/// libseccomp's number for syscall `nr` of `abi` (x32 with its bit), to
/// pass to `seccomp_rule_add*`: the native number or pseudo-number of its
/// name, if libseccomp maps that name to `nr` on `abi`.
fn libseccomp_number(abi: Abi, nr: u32) -> Option<c_int> {
    let name = syscalls::name(abi, nr & !X32_SYSCALL_BIT)?;
    let name = CString::new(name).ok()?;
    // SAFETY: a NUL-terminated string that outlives the calls.
    let (theirs, native) = unsafe {
        (
            seccomp_syscall_resolve_name_arch(arch_token(abi), name.as_ptr()),
            seccomp_syscall_resolve_name(name.as_ptr()),
        )
    };
    // __NR_SCMP_ERROR is -1.
    (theirs == nr as c_int && native != -1).then_some(native)
}

/// libseccomp's program judging the calls of `abi` as `eff` does (without
/// runc's stub) and the numbers left out of it (see the module
/// documentation), or why libseccomp refused it.
pub fn program(
    eff: &EffectiveProfile,
    abi: Abi,
) -> Result<(Vec<SockFilter>, BTreeSet<u32>), Refused> {
    let mut left_out = BTreeSet::new();
    let check = |what: &'static str, rc: c_int| {
        if rc < 0 {
            Err(Refused::Call(what, rc))
        } else {
            Ok(())
        }
    };
    // SAFETY: plain C calls on a context we own; the argument array
    // outlives each call and its length is passed with it.
    unsafe {
        let raw = seccomp_init(ret_value(eff.default.0, eff.default.1));
        if raw.is_null() {
            return Err(Refused::Call("seccomp_init", -1));
        }
        let ctx = Ctx(raw);
        let token = arch_token(abi);
        let native = seccomp_arch_native();
        if token != native {
            check("seccomp_arch_add", seccomp_arch_add(ctx.0, token))?;
            check("seccomp_arch_remove", seccomp_arch_remove(ctx.0, native))?;
        }
        if let Some(table) = eff.syscalls.get(&abi) {
            for (nr, judgement) in table {
                let Some(number) = libseccomp_number(abi, *nr) else {
                    left_out.insert(*nr);
                    continue;
                };
                let rules: Vec<(u32, Vec<ScmpArgCmp>)> = match judgement {
                    Judgement::Always(o) => vec![(ret_value(o.0, o.1), Vec::new())],
                    Judgement::Args(rules) => rules
                        .iter()
                        .map(|r| {
                            let cmps = r
                                .cmps
                                .iter()
                                .map(|c| ScmpArgCmp {
                                    arg: c_uint::from(c.index),
                                    op: op(c.op),
                                    datum_a: c.value,
                                    datum_b: c.value_two,
                                })
                                .collect();
                            (ret_value(r.outcome.0, r.outcome.1), cmps)
                        })
                        .collect(),
                };
                for (action, cmps) in rules {
                    check(
                        "seccomp_rule_add_exact_array",
                        seccomp_rule_add_exact_array(
                            ctx.0,
                            action,
                            number,
                            cmps.len() as c_uint,
                            cmps.as_ptr(),
                        ),
                    )?;
                }
            }
        }
        let fd = memfd_create(c"libseccomp-export".as_ptr(), 0);
        if fd < 0 {
            return Err(Refused::Io(std::io::Error::last_os_error()));
        }
        let mut file = std::fs::File::from(OwnedFd::from_raw_fd(fd));
        check("seccomp_export_bpf", seccomp_export_bpf(ctx.0, fd))?;
        let mut bytes = Vec::new();
        file.seek(SeekFrom::Start(0)).map_err(Refused::Io)?;
        file.read_to_end(&mut bytes).map_err(Refused::Io)?;
        let prog = bytes
            .chunks_exact(8)
            .map(|c| SockFilter {
                code: u16::from_ne_bytes([c[0], c[1]]),
                jt: c[2],
                jf: c[3],
                k: u32::from_ne_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect();
        Ok((prog, left_out))
    }
}
