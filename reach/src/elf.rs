//! One ELF file, analysed on its own: its dynamic section, its imports and
//! exports (with versions), its GOT/PLT slots and IFUNCs, and a summary of
//! every function in its executable sections (direct calls and jumps,
//! syscall sites with their numbers, indirect calls).
//!
//! Nothing here depends on the other objects of a process: the summary of
//! a file is the same whatever loads it, which is what makes the per-file
//! cache (by sha256) correct.

use crate::ReachError;
use iced_x86::{
    Decoder, DecoderOptions, FlowControl, Instruction, InstructionInfoFactory, Mnemonic, OpAccess,
    OpKind, Register,
};
use object::elf;
use object::read::elf::{Dyn as _, FileHeader, ProgramHeader as _, Rela as _, SectionHeader as _};
use object::read::elf::{Sym as _, SymbolTable};
use object::{LittleEndian as LE, SymbolIndex};
use schemas::Abi;
use std::collections::{BTreeSet, HashMap, HashSet};

type Hdr = elf::FileHeader64<LE>;

/// A register's value, as far as a function's own code tells.
/// How many arguments an edge records (see [`Val::Arg`]).
pub const NARGS: usize = 8;
pub type Args = [Val; NARGS];

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
pub enum Val {
    #[default]
    Unknown,
    Const(u64),
    /// The value the function received in argument `n`: in C code the
    /// registers rdi, rsi, rdx, rcx, r8, r9 (0..=5); in Go code (see
    /// [`Func::go`]) the ABIInternal registers rax, rbx, rcx, rdi, rsi, r8
    /// (0..=5), and the first two stack words above the return address,
    /// `[rsp+8]` and `[rsp+16]` at entry (6, 7: ABI0's `trap+0(FP)`).
    Arg(u8),
}

impl Val {
    fn merge(self, o: Val) -> Val {
        if self == o {
            self
        } else {
            Val::Unknown
        }
    }
}

/// What a call or jump goes to.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Target {
    /// A function of this object (index into [`Object::funcs`]).
    Func(usize),
    /// An imported symbol (index into [`Object::imports`]), resolved by the
    /// loader through the process's global scope.
    Import(usize),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum EdgeKind {
    Call,
    /// A jump out of the function (a tail call, or a cold part).
    Jump,
    /// The address is taken (`lea` of a function, a GOT load): it may be
    /// called later through a pointer.
    Ref,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Edge {
    pub site: u64,
    pub to: Target,
    pub kind: EdgeKind,
    /// The arguments at the call, numbered as [`Val::Arg`] numbers them
    /// for the calling function's convention.
    pub args: Args,
}

/// A syscall site whose number is an argument of the enclosing function
/// (glibc's and musl's `syscall()`, and any wrapper of them inside the
/// same object): its number is known only at each call site.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct WrapperSite {
    pub abi: Abi,
    pub arg: u8,
    pub site: u64,
    /// The site's first three syscall arguments (see [`ArgSite::args`]),
    /// for when the number turns out to be one of [`ARG_SYSCALLS`].
    pub args: SiteArgs,
}

/// The first three arguments of a syscall site: rdi, rsi, rdx at a
/// `syscall`; ebx, ecx, edx at an `int 0x80`.
pub type SiteArgs = [Val; 3];

/// The syscalls whose argument values are recorded (those whose
/// arguments the collector records: `collector/src/ebpf/args.rs`), by
/// name in each ABI.
pub const ARG_SYSCALLS: &[&str] = &[
    "socket",
    "setsockopt",
    "clone",
    "unshare",
    "setns",
    "personality",
    "prctl",
    "ioctl",
    "keyctl",
    "bpf",
    "mmap",
    "mmap2",
    "mprotect",
    "pkey_mprotect",
];

/// Whether the arguments of `(abi, nr)` are recorded ([`ARG_SYSCALLS`]).
pub fn tracks_args(abi: Abi, nr: u32) -> bool {
    schemas::syscalls::name(abi, nr).is_some_and(|n| ARG_SYSCALLS.contains(&n))
}

/// A site of one of [`ARG_SYSCALLS`] with a constant number, and its
/// arguments as the function holding this entry sees them.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct ArgSite {
    pub abi: Abi,
    pub nr: u32,
    /// The `syscall` instruction (in this function, or in the callee of
    /// the same object this entry was carried up from).
    pub site: u64,
    /// Each a constant, unknown, or an incoming argument of this
    /// function: then the value is known only at its call sites (an
    /// *argument wrapper*: glibc's `socket`, `mmap`, `personality`).
    pub args: SiteArgs,
}

impl ArgSite {
    /// Whether some argument is an incoming argument of the function.
    pub fn wraps(&self) -> bool {
        self.args.iter().any(|v| matches!(v, Val::Arg(_)))
    }
}

/// What a callee's `Val::Arg(i)` is at a call passing `args`.
pub fn subst(v: Val, args: &Args) -> Val {
    match v {
        Val::Arg(i) => args.get(usize::from(i)).copied().unwrap_or_default(),
        x => x,
    }
}

/// How many argument sites a function may carry up from its callees
/// (beyond it, their values are unknown at its callers' sites: sound).
const MAX_CARRIED: usize = 64;

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Func {
    pub start: u64,
    pub end: u64,
    pub name: Option<String>,
    /// Syscalls with a constant number: (abi, nr, site address).
    pub syscalls: Vec<(Abi, u32, u64)>,
    pub wrapper_sites: Vec<WrapperSite>,
    /// Sites of [`ARG_SYSCALLS`] with their arguments: this function's own
    /// (constant number), and those of callees in the same object whose
    /// arguments this function passes on from its own (sorted).
    pub arg_sites: Vec<ArgSite>,
    /// Sites of `syscall`/`int 0x80` whose number is not constant.
    pub nonconst_sites: Vec<u64>,
    pub edges: Vec<Edge>,
    /// `call reg`/`call [mem]` not resolved to a slot.
    pub indirect_calls: u32,
    /// `jmp reg`/`jmp [mem]` not resolved to a slot (jump tables, which
    /// stay inside the function and are covered by the linear pass, and
    /// tail calls through pointers).
    pub indirect_jumps: u32,
    /// A Go function (its entry is in the file's `.gopclntab`): analysed
    /// with Go's calling convention (ABIInternal registers, every general
    /// register but rsp/rbp/r14 clobbered by a call) and its stack slots.
    /// Arguments pass between a Go and a non-Go function as unknown.
    pub go: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Import {
    pub name: String,
    pub version: Option<String>,
    pub weak: bool,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub enum ExportKind {
    Func(usize),
    /// An IFUNC: every candidate the resolver can return (`lea` of a
    /// function in the resolver's code).
    Ifunc(Vec<usize>),
    /// An IFUNC whose resolver returned no candidate this analysis could
    /// see.
    IfuncUnresolved,
    Data,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Export {
    pub version: Option<String>,
    /// Not the default version (`sym@V`, not `sym@@V`).
    pub hidden: bool,
    pub kind: ExportKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum RootKind {
    Entry,
    Init,
    InitArray,
    PreinitArray,
    Fini,
    FiniArray,
    /// A function the dynamic loader looks up by name and calls
    /// (glibc's `__libc_early_init`).
    LoaderCall,
}

impl RootKind {
    pub fn label(self) -> &'static str {
        match self {
            RootKind::Entry => "entry",
            RootKind::Init => "DT_INIT",
            RootKind::InitArray => "init_array",
            RootKind::PreinitArray => "preinit_array",
            RootKind::Fini => "DT_FINI",
            RootKind::FiniArray => "fini_array",
            RootKind::LoaderCall => "called by ld.so",
        }
    }
}

/// The analysis of one ELF file.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Object {
    pub needed: Vec<String>,
    pub rpath: Vec<String>,
    pub runpath: Vec<String>,
    pub interp: Option<String>,
    pub soname: Option<String>,
    pub imports: Vec<Import>,
    pub exports: HashMap<String, Vec<Export>>,
    pub funcs: Vec<Func>,
    /// Roots by kind; the executable uses all of them, a library its
    /// init/fini ones, the interpreter its entry.
    pub roots: Vec<(RootKind, usize)>,
    /// IRELATIVE slots whose resolver showed no candidate.
    pub unresolved_ifuncs: u32,
    /// Functions (and imports) whose address is stored in data: relocated
    /// pointers (`RELATIVE`, `R_X86_64_64`) and, in a non-PIE executable,
    /// aligned words equal to a function's start. Any of them may be the
    /// target of an indirect call.
    pub data_refs: Vec<Target>,
    /// Instructions that did not decode, in executable sections.
    pub undecodable: u32,
}

/// What a GOT slot holds once relocated.
#[derive(Clone, Debug)]
enum Slot {
    Import(usize),
    Local(Vec<u64>),
}

struct ExecSection<'d> {
    addr: u64,
    data: &'d [u8],
    plt: bool,
    entsize: u64,
}

const ARG_REGS: [usize; 6] = [7, 6, 2, 1, 8, 9]; // rdi rsi rdx rcx r8 r9
const RAX: usize = 0;
const RCX: usize = 1;
const RDX: usize = 2;
const RBX: usize = 3;
const RSI: usize = 6;
const RDI: usize = 7;
/// Clobbered by a call (System V).
const CALLER_SAVED: [usize; 9] = [0, 1, 2, 6, 7, 8, 9, 10, 11];

fn gpr(r: Register) -> Option<usize> {
    let f = r.full_register();
    let i = (f as u32).checked_sub(Register::RAX as u32)? as usize;
    (i < 16).then_some(i)
}

fn err(path: &str, what: &str, e: object::read::Error) -> ReachError {
    ReachError::Elf {
        path: path.to_string(),
        what: format!("{what}: {e}"),
    }
}

/// Names of functions that never return: a call to one does not fall
/// through (only precision depends on this list, never what is found
/// inside a reached function).
const NORETURN: &[&str] = &[
    "abort",
    "exit",
    "_exit",
    "_Exit",
    "__stack_chk_fail",
    "__assert_fail",
    "__fortify_fail",
    "__chk_fail",
    "__libc_fatal",
    "pthread_exit",
    "longjmp",
    "siglongjmp",
    "__longjmp_chk",
    "err",
    "errx",
    "verr",
    "verrx",
    "quick_exit",
    "__cxa_throw",
    "_Unwind_Resume",
];

/// Analyse one file's bytes. `path` is only used in errors.
pub fn analyse(path: &str, data: &[u8]) -> Result<Object, ReachError> {
    let e = LE;
    let hdr = Hdr::parse(data).map_err(|x| err(path, "ELF header", x))?;
    if hdr.e_machine(e) != elf::EM_X86_64 {
        return Err(ReachError::NotX86_64 {
            path: path.to_string(),
        });
    }
    let sections = hdr
        .sections(e, data)
        .map_err(|x| err(path, "sections", x))?;
    let mut o = Object::default();

    // Program headers: the interpreter.
    if let Ok(phdrs) = hdr.program_headers(e, data) {
        for ph in phdrs {
            if let Ok(Some(i)) = ph.interpreter(e, data) {
                o.interp = Some(String::from_utf8_lossy(i).into_owned());
            }
        }
    }

    // Executable sections.
    let mut execs: Vec<ExecSection> = Vec::new();
    for s in sections.iter() {
        let flags = s.sh_flags(e);
        if s.sh_type(e) != elf::SHT_PROGBITS || flags & u64::from(elf::SHF_EXECINSTR) == 0 {
            continue;
        }
        let name = sections.section_name(e, s).unwrap_or(b"");
        let Ok(d) = s.data(e, data) else { continue };
        let plt = name.starts_with(b".plt");
        let entsize = if plt {
            match s.sh_entsize(e) {
                8 => 8,
                _ => 16,
            }
        } else {
            0
        };
        execs.push(ExecSection {
            addr: s.sh_addr(e),
            data: d,
            plt,
            entsize,
        });
    }
    execs.sort_by_key(|s| s.addr);
    let in_exec = |a: u64| {
        execs
            .iter()
            .any(|s| a >= s.addr && a < s.addr + s.data.len() as u64)
    };

    // Read a u64 at a virtual address (init arrays).
    let read_u64 = |va: u64| -> Option<u64> {
        sections.iter().find_map(|s| {
            let a = s.sh_addr(e);
            let sz = s.sh_size(e);
            if s.sh_type(e) == elf::SHT_NOBITS || a == 0 || va < a || va + 8 > a + sz {
                return None;
            }
            let d = s.data(e, data).ok()?;
            let off = (va - a) as usize;
            let b = d.get(off..off + 8)?;
            Some(u64::from_le_bytes(b.try_into().ok()?))
        })
    };

    // Dynamic section.
    let mut init_arrays: Vec<(RootKind, u64, u64)> = Vec::new();
    let mut root_addrs: Vec<(RootKind, u64)> = Vec::new();
    if let Ok(Some((dyns, link))) = sections.dynamic(e, data) {
        let strings = sections
            .strings(e, data, link)
            .map_err(|x| err(path, "dynamic strings", x))?;
        let (mut ia, mut ias, mut pa, mut pas, mut fa, mut fas) = (0, 0, 0, 0, 0, 0);
        for d in dyns {
            let tag = d.d_tag(e);
            let val = d.d_val(e);
            let s = || {
                d.string(e, strings)
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .ok()
            };
            match tag {
                elf::DT_NEEDED => o.needed.extend(s()),
                elf::DT_RPATH => o.rpath.extend(s().map(split_path).unwrap_or_default()),
                elf::DT_RUNPATH => o.runpath.extend(s().map(split_path).unwrap_or_default()),
                elf::DT_SONAME => o.soname = s(),
                elf::DT_INIT => root_addrs.push((RootKind::Init, val)),
                elf::DT_FINI => root_addrs.push((RootKind::Fini, val)),
                elf::DT_INIT_ARRAY => ia = val,
                elf::DT_INIT_ARRAYSZ => ias = val,
                elf::DT_PREINIT_ARRAY => pa = val,
                elf::DT_PREINIT_ARRAYSZ => pas = val,
                elf::DT_FINI_ARRAY => fa = val,
                elf::DT_FINI_ARRAYSZ => fas = val,
                _ => {}
            }
        }
        init_arrays.push((RootKind::InitArray, ia, ias));
        init_arrays.push((RootKind::PreinitArray, pa, pas));
        init_arrays.push((RootKind::FiniArray, fa, fas));
    } else {
        // A static executable: its init/fini arrays by section.
        for s in sections.iter() {
            let kind = match s.sh_type(e) {
                elf::SHT_INIT_ARRAY => RootKind::InitArray,
                elf::SHT_PREINIT_ARRAY => RootKind::PreinitArray,
                elf::SHT_FINI_ARRAY => RootKind::FiniArray,
                _ => continue,
            };
            init_arrays.push((kind, s.sh_addr(e), s.sh_size(e)));
        }
    }
    for (kind, a, sz) in init_arrays {
        let mut va = a;
        while a != 0 && va + 8 <= a + sz {
            // Relocated entries of a PIE read as 0 here: their RELATIVE
            // relocations are applied below.
            if let Some(v) = read_u64(va) {
                if v != 0 && v != u64::MAX {
                    root_addrs.push((kind, v));
                }
            }
            va += 8;
        }
    }
    let entry = hdr.e_entry(e);
    if entry != 0 {
        root_addrs.push((RootKind::Entry, entry));
    }

    // Symbols.
    let dynsym = sections
        .symbols(e, data, elf::SHT_DYNSYM)
        .map_err(|x| err(path, "dynamic symbols", x))?;
    let symtab = sections
        .symbols(e, data, elf::SHT_SYMTAB)
        .map_err(|x| err(path, "symbols", x))?;
    let versions = sections.versions(e, data).ok().flatten();
    let version_of = |i: SymbolIndex| -> (Option<String>, bool) {
        let Some(v) = &versions else {
            return (None, false);
        };
        let vi = v.version_index(e, i);
        let name = v
            .version(vi)
            .ok()
            .flatten()
            .map(|x| String::from_utf8_lossy(x.name()).into_owned());
        (name, vi.is_hidden())
    };

    let mut names: HashMap<u64, String> = HashMap::new();
    let mut starts: BTreeSet<u64> = BTreeSet::new();
    let mut ifunc_resolvers: HashSet<u64> = HashSet::new();
    let add_syms = |t: &SymbolTable<'_, Hdr>,
                    names: &mut HashMap<u64, String>,
                    starts: &mut BTreeSet<u64>,
                    ifr: &mut HashSet<u64>| {
        for s in t.iter() {
            let ty = s.st_type();
            if (ty != elf::STT_FUNC && ty != elf::STT_GNU_IFUNC) || s.st_shndx(e) == 0 {
                continue;
            }
            let a = s.st_value(e);
            if !in_exec(a) {
                continue;
            }
            starts.insert(a);
            if ty == elf::STT_GNU_IFUNC {
                ifr.insert(a);
            }
            if let Ok(n) = t.symbol_name(e, s) {
                let n = String::from_utf8_lossy(n).into_owned();
                let global = s.st_bind() != elf::STB_LOCAL;
                match names.get(&a) {
                    Some(old) if !global || old.len() <= n.len() => {}
                    _ => {
                        names.insert(a, n);
                    }
                }
            }
        }
    };
    add_syms(&symtab, &mut names, &mut starts, &mut ifunc_resolvers);
    add_syms(&dynsym, &mut names, &mut starts, &mut ifunc_resolvers);
    // Go: every function's entry, name and argument size, from the
    // runtime's own table (kept by `-ldflags=-s -w`).
    let mut gopcln = sections
        .iter()
        .find(|s| sections.section_name(e, s).ok() == Some(&b".gopclntab"[..]))
        .and_then(|s| s.data(e, data).ok())
        .map(go_funcs)
        .unwrap_or_default();
    for (&a, g) in gopcln.iter_mut() {
        if in_exec(a) {
            starts.insert(a);
            let n = names.entry(a).or_insert_with(|| g.name.clone());
            g.abi0 = n.ends_with(".abi0");
        }
    }

    // Imports (undefined dynamic symbols) and exports (defined ones).
    let mut import_of_sym: HashMap<usize, usize> = HashMap::new();
    let mut import_index: HashMap<Import, usize> = HashMap::new();
    let mut dyn_exports: Vec<(String, Option<String>, bool, u8, u64)> = Vec::new();
    for (i, s) in dynsym.enumerate() {
        if i.0 == 0 {
            continue;
        }
        let Ok(n) = dynsym.symbol_name(e, s) else {
            continue;
        };
        let name = String::from_utf8_lossy(n).into_owned();
        let (version, hidden) = version_of(i);
        if s.st_shndx(e) == elf::SHN_UNDEF {
            let imp = Import {
                name,
                version,
                weak: s.st_bind() == elf::STB_WEAK,
            };
            let next = o.imports.len();
            let idx = *import_index.entry(imp.clone()).or_insert(next);
            if idx == next {
                o.imports.push(imp);
            }
            import_of_sym.insert(i.0, idx);
        } else if s.st_bind() != elf::STB_LOCAL && !name.is_empty() {
            dyn_exports.push((name, version, hidden, s.st_type(), s.st_value(e)));
        }
    }
    // A defined dynamic symbol referenced through a slot is still bound by
    // the loader through the global scope (interposition): an import too.
    let mut import_for = |o: &mut Object, i: usize| -> Option<usize> {
        if let Some(&x) = import_of_sym.get(&i) {
            return Some(x);
        }
        let s = dynsym.symbol(SymbolIndex(i)).ok()?;
        let name = String::from_utf8_lossy(dynsym.symbol_name(e, s).ok()?).into_owned();
        let (version, _) = version_of(SymbolIndex(i));
        let imp = Import {
            name,
            version,
            weak: s.st_bind() == elf::STB_WEAK,
        };
        let next = o.imports.len();
        let idx = *import_index.entry(imp.clone()).or_insert(next);
        if idx == next {
            o.imports.push(imp);
        }
        import_of_sym.insert(i, idx);
        Some(idx)
    };

    // Relocations: GOT slots, PIE init arrays, IRELATIVE.
    let mut slots: HashMap<u64, Slot> = HashMap::new();
    let mut data_ref_imports: Vec<usize> = Vec::new();
    let mut data_ref_addrs: Vec<u64> = Vec::new();
    if hdr.e_type(e) == elf::ET_EXEC {
        // Non-PIE: pointers in data are plain words.
        for sec in sections.iter() {
            let f = sec.sh_flags(e);
            if sec.sh_type(e) != elf::SHT_PROGBITS
                || f & u64::from(elf::SHF_ALLOC) == 0
                || f & u64::from(elf::SHF_EXECINSTR) != 0
            {
                continue;
            }
            let Ok(d) = sec.data(e, data) else { continue };
            for w in d.chunks_exact(8) {
                let mut b = [0u8; 8];
                b.copy_from_slice(w);
                let v = u64::from_le_bytes(b);
                if in_exec(v) {
                    data_ref_addrs.push(v);
                }
            }
        }
    }
    let mut irelative: Vec<(u64, u64)> = Vec::new();
    let dynsym_index = dynsym.section();
    for s in sections.iter() {
        let Ok(Some((relas, link))) = s.rela(e, data) else {
            continue;
        };
        // Only dynamic relocations (against .dynsym, or none in a static
        // binary's .rela.plt).
        if link.0 != 0 && link != dynsym_index {
            continue;
        }
        for r in relas {
            let off = r.r_offset(e);
            let ty = r.r_type(e, false);
            let sym = r.r_sym(e, false) as usize;
            let add = r.r_addend(e) as u64;
            match ty {
                elf::R_X86_64_JUMP_SLOT | elf::R_X86_64_GLOB_DAT | elf::R_X86_64_64 if sym != 0 => {
                    if let Some(i) = import_for(&mut o, sym) {
                        slots.insert(off, Slot::Import(i));
                        if ty == elf::R_X86_64_64 {
                            data_ref_imports.push(i);
                        }
                    }
                }
                elf::R_X86_64_RELATIVE if in_exec(add) => {
                    slots.insert(off, Slot::Local(vec![add]));
                    starts.insert(add);
                    data_ref_addrs.push(add);
                }
                elf::R_X86_64_IRELATIVE => {
                    irelative.push((off, add));
                    starts.insert(add);
                }
                _ => {}
            }
        }
    }
    // Init arrays of a PIE hold 0 until relocated: take the RELATIVE
    // slots inside the arrays' ranges.
    if let Ok(Some((dyns, _))) = sections.dynamic(e, data) {
        let get = |tag: i64| dyns.iter().find(|d| d.d_tag(e) == tag).map(|d| d.d_val(e));
        for (kind, a, sz) in [
            (
                RootKind::InitArray,
                elf::DT_INIT_ARRAY,
                elf::DT_INIT_ARRAYSZ,
            ),
            (
                RootKind::PreinitArray,
                elf::DT_PREINIT_ARRAY,
                elf::DT_PREINIT_ARRAYSZ,
            ),
            (
                RootKind::FiniArray,
                elf::DT_FINI_ARRAY,
                elf::DT_FINI_ARRAYSZ,
            ),
        ] {
            let (Some(a), Some(sz)) = (get(a), get(sz)) else {
                continue;
            };
            let mut va = a;
            while va + 8 <= a + sz {
                if let Some(Slot::Local(t)) = slots.get(&va) {
                    for &x in t {
                        root_addrs.push((kind, x));
                    }
                }
                va += 8;
            }
        }
    }
    for &(_, a) in &root_addrs {
        if in_exec(a) {
            starts.insert(a);
        }
    }

    // A static Go file: its Go code may read a package variable that is
    // never written as the constant it was linked with (below).
    let static_go =
        !gopcln.is_empty() && o.interp.is_none() && matches!(sections.dynamic(e, data), Ok(None));
    let mut writable: Vec<(u64, u64, Option<&[u8]>)> = Vec::new();
    let mut data_syms: std::collections::BTreeMap<u64, u64> = Default::default();
    let mut touched: Vec<(u64, u64)> = Vec::new();
    if static_go {
        let w = u64::from(elf::SHF_ALLOC | elf::SHF_WRITE);
        for sec in sections.iter() {
            if sec.sh_flags(e) & w != w || sec.sh_flags(e) & u64::from(elf::SHF_EXECINSTR) != 0 {
                continue;
            }
            let bytes = match sec.sh_type(e) {
                elf::SHT_NOBITS => None,
                elf::SHT_PROGBITS => match sec.data(e, data) {
                    Ok(d) => Some(d),
                    Err(_) => continue,
                },
                _ => continue,
            };
            writable.push((sec.sh_addr(e), sec.sh_size(e), bytes));
        }
        for s in symtab.iter() {
            let (a, sz) = (s.st_value(e), s.st_size(e));
            if s.st_type() == elf::STT_OBJECT
                && sz > 0
                && writable
                    .iter()
                    .any(|&(wa, wsz, _)| a >= wa && a + sz <= wa + wsz)
            {
                data_syms.insert(a, a + sz);
            }
        }
    }
    let in_writable = |v: u64| writable.iter().any(|&(wa, wsz, _)| v >= wa && v < wa + wsz);
    let mut info_factory = InstructionInfoFactory::new();

    // Pass 1: every direct call target starts a function; every direct
    // branch target and `lea` of code is noted. PLT entries are
    // functions of their own.
    let mut jump_targets: HashSet<u64> = HashSet::new();
    // For the may-return analysis: where `ret`s (and jumps through
    // pointers, which may return) are, and every direct or slot jump.
    let mut returns: Vec<u64> = Vec::new();
    let mut jumps: Vec<(u64, u64, bool)> = Vec::new(); // (from, to, to is a slot)
    starts.extend(data_ref_addrs.iter().copied());
    for s in &execs {
        if s.plt {
            let mut a = s.addr;
            while a < s.addr + s.data.len() as u64 {
                starts.insert(a);
                a += s.entsize;
            }
            continue;
        }
        let mut d = Decoder::with_ip(64, s.data, s.addr, DecoderOptions::NONE);
        let mut ins = Instruction::default();
        while d.can_decode() {
            d.decode_out(&mut ins);
            if static_go {
                touches(&ins, &in_writable, &mut info_factory, &mut touched);
            }
            match ins.flow_control() {
                FlowControl::Call => {
                    if let OpKind::NearBranch64 = ins.op0_kind() {
                        let t = ins.near_branch_target();
                        if in_exec(t) {
                            starts.insert(t);
                        }
                    }
                }
                FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch => {
                    if let OpKind::NearBranch64 = ins.op0_kind() {
                        jump_targets.insert(ins.near_branch_target());
                        jumps.push((ins.ip(), ins.near_branch_target(), false));
                    }
                }
                FlowControl::Return => returns.push(ins.ip()),
                FlowControl::IndirectBranch => {
                    if ins.is_ip_rel_memory_operand()
                        && slots.contains_key(&ins.ip_rel_memory_address())
                    {
                        jumps.push((ins.ip(), ins.ip_rel_memory_address(), true));
                    } else {
                        returns.push(ins.ip());
                    }
                }
                _ => {
                    if ins.mnemonic() == Mnemonic::Lea && ins.is_ip_rel_memory_operand() {
                        let t = ins.ip_rel_memory_address();
                        if in_exec(t) {
                            starts.insert(t);
                        }
                    }
                }
            }
        }
    }

    // Any word in the file's data that points into its writable data may
    // be a pointer through which a variable is written.
    if static_go {
        for sec in sections.iter() {
            let f = sec.sh_flags(e);
            if sec.sh_type(e) != elf::SHT_PROGBITS
                || f & u64::from(elf::SHF_ALLOC) == 0
                || f & u64::from(elf::SHF_EXECINSTR) != 0
            {
                continue;
            }
            let Ok(d) = sec.data(e, data) else { continue };
            for w in d.chunks_exact(8) {
                let mut b = [0u8; 8];
                b.copy_from_slice(w);
                let v = u64::from_le_bytes(b);
                if in_writable(v) {
                    touched.push((v, v + 1));
                }
            }
        }
        touched.sort_unstable();
    }
    // The variables never written nor pointed to: their linked value.
    let clean = |start: u64, end: u64| {
        let i = touched.partition_point(|t| t.0 < end);
        // Touches start sorted; one starting before `end` and ending
        // after `start` overlaps (ranges are at most 64 bytes long).
        touched[..i]
            .iter()
            .rev()
            .take_while(|t| t.0.saturating_add(64) > start)
            .all(|t| t.1 <= start)
    };
    let global_const = |x: u64| -> Option<u64> {
        let (&start, &end) = data_syms.range(..=x).next_back()?;
        if x.checked_add(8)? > end || !clean(start, end) {
            return None;
        }
        let &(wa, _, bytes) = writable
            .iter()
            .find(|&&(wa, wsz, _)| x >= wa && x + 8 <= wa + wsz)?;
        match bytes {
            None => Some(0),
            Some(b) => {
                let off = usize::try_from(x - wa).ok()?;
                Some(u64::from_le_bytes(b.get(off..off + 8)?.try_into().ok()?))
            }
        }
    };

    // Function extents: from a start to the next start or the end of its
    // section.
    let mut funcs: Vec<Func> = Vec::new();
    for s in &execs {
        let end = s.addr + s.data.len() as u64;
        let mut these: Vec<u64> = starts.range(s.addr..end).copied().collect();
        if these.first() != Some(&s.addr) {
            these.insert(0, s.addr);
        }
        for (k, &a) in these.iter().enumerate() {
            let b = these.get(k + 1).copied().unwrap_or(end);
            funcs.push(Func {
                start: a,
                end: b,
                name: names.get(&a).cloned(),
                ..Func::default()
            });
        }
    }
    funcs.sort_by_key(|f| f.start);
    let func_at = |a: u64| -> Option<usize> {
        let i = funcs.partition_point(|f| f.start <= a);
        let i = i.checked_sub(1)?;
        (a < funcs[i].end).then_some(i)
    };

    // IFUNC candidates: every function whose address the resolver loads.
    let candidates = |resolver: u64| -> Vec<usize> {
        let Some(fi) = func_at(resolver) else {
            return Vec::new();
        };
        let f = &funcs[fi];
        let Some(sec) = execs
            .iter()
            .find(|s| f.start >= s.addr && f.start < s.addr + s.data.len() as u64)
        else {
            return Vec::new();
        };
        let lo = (f.start - sec.addr) as usize;
        let hi = (f.end - sec.addr) as usize;
        let mut d = Decoder::with_ip(64, &sec.data[lo..hi], f.start, DecoderOptions::NONE);
        let mut ins = Instruction::default();
        let mut out = Vec::new();
        while d.can_decode() {
            d.decode_out(&mut ins);
            if ins.mnemonic() == Mnemonic::Lea && ins.is_ip_rel_memory_operand() {
                if let Some(t) = func_at(ins.ip_rel_memory_address()) {
                    if funcs[t].start == ins.ip_rel_memory_address() && t != fi {
                        out.push(t);
                    }
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    };
    for (off, resolver) in irelative {
        let c = candidates(resolver);
        if c.is_empty() {
            o.unresolved_ifuncs += 1;
        }
        slots.insert(
            off,
            Slot::Local(c.iter().map(|&i| funcs[i].start).collect()),
        );
    }
    for (name, version, hidden, ty, value) in dyn_exports {
        let kind = if ty == elf::STT_GNU_IFUNC {
            let c = candidates(value);
            if c.is_empty() {
                ExportKind::IfuncUnresolved
            } else {
                ExportKind::Ifunc(c)
            }
        } else {
            match func_at(value) {
                Some(i) if ty == elf::STT_FUNC && funcs[i].start == value => ExportKind::Func(i),
                _ => ExportKind::Data,
            }
        };
        o.exports.entry(name).or_default().push(Export {
            version,
            hidden,
            kind,
        });
    }
    for a in data_ref_addrs {
        if let Some(i) = func_at(a) {
            if funcs[i].start == a {
                o.data_refs.push(Target::Func(i));
            }
        }
    }
    o.data_refs
        .extend(data_ref_imports.into_iter().map(Target::Import));
    o.data_refs.sort_by_key(|t| match t {
        Target::Func(i) => (0, *i),
        Target::Import(i) => (1, *i),
    });
    o.data_refs.dedup();
    if let Some(Export {
        kind: ExportKind::Func(i),
        ..
    }) = o.exports.get("__libc_early_init").and_then(|v| v.first())
    {
        o.roots.push((RootKind::LoaderCall, *i));
    }
    for (k, a) in root_addrs {
        if let Some(i) = func_at(a) {
            o.roots.push((k, i));
        }
    }

    // Slot targets as edge targets.
    let slot_targets = |a: u64| -> Option<Vec<Target>> {
        match slots.get(&a)? {
            Slot::Import(i) => Some(vec![Target::Import(*i)]),
            Slot::Local(v) => Some(
                v.iter()
                    .filter_map(|&x| func_at(x))
                    .map(Target::Func)
                    .collect(),
            ),
        }
    };
    let noreturn: HashSet<usize> = o
        .imports
        .iter()
        .enumerate()
        .filter(|(_, i)| NORETURN.contains(&i.name.as_str()))
        .map(|(k, _)| k)
        .collect();

    // PLT entries: each resolves to its slot's target.
    let mut plt_of: HashMap<usize, Vec<Target>> = HashMap::new();
    for (fi, f) in funcs.iter().enumerate() {
        let Some(sec) = execs
            .iter()
            .find(|s| s.plt && f.start >= s.addr && f.start < s.addr + s.data.len() as u64)
        else {
            continue;
        };
        let lo = (f.start - sec.addr) as usize;
        let hi = (f.end - sec.addr) as usize;
        let mut d = Decoder::with_ip(64, &sec.data[lo..hi], f.start, DecoderOptions::NONE);
        let mut ins = Instruction::default();
        while d.can_decode() {
            d.decode_out(&mut ins);
            if ins.flow_control() == FlowControl::IndirectBranch && ins.is_ip_rel_memory_operand() {
                if let Some(t) = slot_targets(ins.ip_rel_memory_address()) {
                    plt_of.insert(fi, t);
                }
                break;
            }
        }
    }

    // May a function return? Yes when its code holds a `ret` (or a jump
    // through a pointer), or jumps to a function that may return or to an
    // import not known never to return. A call to a function that cannot
    // return does not fall through (only precision rests on this: a
    // function found not to return has no way back to its caller).
    let mut may_return = vec![false; funcs.len()];
    for a in &returns {
        if let Some(i) = func_at(*a) {
            may_return[i] = true;
        }
    }
    let mut out_jumps: Vec<Vec<Result<usize, usize>>> = vec![Vec::new(); funcs.len()];
    for &(from, to, slot) in &jumps {
        let Some(i) = func_at(from) else { continue };
        if slot {
            match slots.get(&to) {
                Some(Slot::Import(k)) => out_jumps[i].push(Err(*k)),
                Some(Slot::Local(v)) => {
                    out_jumps[i].extend(v.iter().filter_map(|&x| func_at(x)).map(Ok));
                }
                None => may_return[i] = true,
            }
        } else if to < funcs[i].start || to >= funcs[i].end {
            match func_at(to) {
                Some(j) => out_jumps[i].push(Ok(j)),
                None => may_return[i] = true,
            }
        }
    }
    // PLT entries go where their slot goes.
    for (fi, f) in funcs.iter().enumerate() {
        if execs
            .iter()
            .any(|s| s.plt && f.start >= s.addr && f.start < s.addr + s.data.len() as u64)
        {
            may_return[fi] = false;
        }
    }
    for (fi, ts) in &plt_of {
        for t in ts {
            match t {
                Target::Import(k) => out_jumps[*fi].push(Err(*k)),
                Target::Func(j) => out_jumps[*fi].push(Ok(*j)),
            }
        }
    }
    loop {
        let mut changed = false;
        for i in 0..funcs.len() {
            if may_return[i] {
                continue;
            }
            let r = out_jumps[i].iter().any(|t| match t {
                Ok(j) => may_return[*j],
                Err(k) => !noreturn.contains(k),
            });
            if r {
                may_return[i] = true;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }

    // Pass 2: each function's summary.
    let start_of = |g: usize| funcs[g].start;
    let mut factory = InstructionInfoFactory::new();
    let mut summaries: Vec<Func> = Vec::with_capacity(funcs.len());
    for (fi, f) in funcs.iter().enumerate() {
        let mut out = Func {
            start: f.start,
            end: f.end,
            name: f.name.clone(),
            go: gopcln.contains_key(&f.start),
            ..Func::default()
        };
        if let Some(t) = plt_of.get(&fi) {
            for to in t {
                out.edges.push(Edge {
                    site: f.start,
                    to: to.clone(),
                    kind: EdgeKind::Jump,
                    args: arg_vals(),
                });
            }
            summaries.push(out);
            continue;
        }
        let Some(sec) = execs
            .iter()
            .find(|s| f.start >= s.addr && f.start < s.addr + s.data.len() as u64)
        else {
            summaries.push(out);
            continue;
        };
        if sec.plt {
            // A PLT entry without a slot jump (PLT0: the lazy resolver).
            summaries.push(out);
            continue;
        }
        let lo = (f.start - sec.addr) as usize;
        let hi = (f.end - sec.addr) as usize;
        let ctx = Ctx {
            func_at: &func_at,
            start_of: &start_of,
            slot_targets: &slot_targets,
            plt_of: &plt_of,
            noreturn: &noreturn,
            may_return: &may_return,
            jump_targets: &jump_targets,
            gofns: &gopcln,
            global_const: &global_const,
            fi,
        };
        summarise(
            &ctx,
            &sec.data[lo..hi],
            f,
            &mut out,
            &mut factory,
            &mut o.undecodable,
        );
        summaries.push(out);
    }

    // Wrappers inside the object: a function that passes its own argument
    // on as the number of a wrapper is a wrapper too; one that passes its
    // own argument on as an argument of a site of [`ARG_SYSCALLS`] (a
    // wrapper's whose number it gives as a constant, or an argument
    // wrapper's) is an argument wrapper.
    for _ in 0..8 {
        let mut changed = false;
        for fi in 0..summaries.len() {
            let mut add = Vec::new();
            let mut add_args = Vec::new();
            for ed in &summaries[fi].edges {
                if ed.kind == EdgeKind::Ref {
                    continue;
                }
                let Target::Func(g) = ed.to else { continue };
                if summaries[g].go != summaries[fi].go {
                    continue;
                }
                let args_at = |a: &SiteArgs| a.map(|v| subst(v, &ed.args));
                for w in &summaries[g].wrapper_sites {
                    match ed.args[usize::from(w.arg)] {
                        Val::Arg(j) => {
                            let nw = WrapperSite {
                                abi: w.abi,
                                arg: j,
                                site: w.site,
                                args: args_at(&w.args),
                            };
                            if !summaries[fi].wrapper_sites.contains(&nw) {
                                add.push(nw);
                            }
                        }
                        Val::Const(c) => {
                            if let (abi, Some(nr)) = classify(w.abi, c) {
                                if tracks_args(abi, nr) {
                                    add_args.push(ArgSite {
                                        abi,
                                        nr,
                                        site: w.site,
                                        args: args_at(&w.args),
                                    });
                                }
                            }
                        }
                        Val::Unknown => {}
                    }
                }
                for a in summaries[g].arg_sites.iter().filter(|a| a.wraps()) {
                    add_args.push(ArgSite {
                        args: args_at(&a.args),
                        ..*a
                    });
                }
            }
            add_args.retain(|a| a.wraps() && summaries[fi].arg_sites.binary_search(a).is_err());
            add_args.sort_unstable();
            add_args.dedup();
            add_args.truncate(MAX_CARRIED.saturating_sub(summaries[fi].arg_sites.len()));
            if !add_args.is_empty() {
                summaries[fi].arg_sites.extend(add_args);
                summaries[fi].arg_sites.sort_unstable();
                changed = true;
            }
            if !add.is_empty() {
                add.sort_unstable();
                add.dedup();
                summaries[fi].wrapper_sites.extend(add);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    o.funcs = summaries;
    Ok(o)
}

/// A Go function, from `.gopclntab`.
#[derive(Clone, Debug)]
struct GoFn {
    name: String,
    /// `_func.args`: the bytes of its argument area in the caller's frame
    /// (ABI0 arguments and results; ABIInternal's spill area), negative
    /// when unknown (assembly without a declared size).
    args: i32,
    /// `.symtab` names it `<name>.abi0`: assembly with Go's stack-based
    /// ABI0, whose registers at entry are not arguments.
    abi0: bool,
}

/// The functions of a Go 1.18+ `.gopclntab` (magic `0xfffffff0`, Go
/// 1.18-1.19; `0xfffffff1`, 1.20+): `pcHeader` then the function table
/// (`runtime/symtab.go`: `pcHeader`, `functab`, `_func`). Any other
/// version, or a table that does not parse, gives none: its functions are
/// then analysed as C code (non-constant sites stay counted).
fn go_funcs(d: &[u8]) -> HashMap<u64, GoFn> {
    let mut out = HashMap::new();
    let u32_at = |o: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            d.get(o..o.checked_add(4)?)?.try_into().ok()?,
        ))
    };
    let u64_at = |o: usize| -> Option<u64> {
        Some(u64::from_le_bytes(
            d.get(o..o.checked_add(8)?)?.try_into().ok()?,
        ))
    };
    let cstr = |o: usize| -> Option<String> {
        let b = d.get(o..)?;
        let n = b.iter().position(|&c| c == 0)?;
        Some(String::from_utf8_lossy(&b[..n]).into_owned())
    };
    let mut parse = || -> Option<()> {
        let magic = u32_at(0)?;
        if (magic != 0xffff_fff0 && magic != 0xffff_fff1) || d.get(7) != Some(&8) {
            return None;
        }
        let nfunc = usize::try_from(u64_at(8)?).ok()?;
        let text = u64_at(24)?;
        let funcnames = usize::try_from(u64_at(32)?).ok()?;
        let pcln = usize::try_from(u64_at(64)?).ok()?;
        for i in 0..nfunc {
            let ft = pcln.checked_add(8 * i)?;
            let entry = u32_at(ft)?;
            let f = pcln.checked_add(u32_at(ft + 4)? as usize)?;
            if u32_at(f)? != entry {
                return None;
            }
            let name_off = u32_at(f + 4)? as usize;
            let args = u32_at(f + 8)? as i32;
            let name = cstr(funcnames.checked_add(name_off)?)?;
            out.insert(
                text + u64::from(entry),
                GoFn {
                    name,
                    args,
                    abi0: false,
                },
            );
        }
        Some(())
    };
    if parse().is_none() {
        out.clear();
    }
    out
}

fn split_path(s: String) -> Vec<String> {
    s.split(':')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}

fn arg_vals() -> Args {
    let mut a = [Val::Unknown; NARGS];
    for (k, v) in a.iter_mut().enumerate() {
        *v = Val::Arg(k as u8);
    }
    a
}

struct Ctx<'a> {
    func_at: &'a dyn Fn(u64) -> Option<usize>,
    start_of: &'a dyn Fn(usize) -> u64,
    slot_targets: &'a dyn Fn(u64) -> Option<Vec<Target>>,
    plt_of: &'a HashMap<usize, Vec<Target>>,
    noreturn: &'a HashSet<usize>,
    may_return: &'a [bool],
    jump_targets: &'a HashSet<u64>,
    /// Go functions by entry (`.gopclntab`).
    gofns: &'a HashMap<u64, GoFn>,
    /// A static Go file's 8 bytes at this address, when they belong to a
    /// variable no instruction writes and nothing points to.
    global_const: &'a dyn Fn(u64) -> Option<u64>,
    fi: usize,
}

/// How many stack slots a Go function's state tracks.
const NSLOTS: usize = 8;
const RSP: usize = 4;
const RBP: usize = 5;
/// Go's ABIInternal integer argument registers (rax, rbx, rcx, rdi, rsi,
/// r8; r9-r11 are not tracked): `src/cmd/compile/abi-internal.md`.
const GO_ARG_REGS: [usize; 6] = [0, 3, 1, 7, 6, 8];

#[derive(Clone, Copy, PartialEq, Eq, Default)]
struct State {
    regs: [Val; 16],
    /// The value last pushed (`push imm` / `push reg`), for `pop reg`.
    top: Val,
    /// Go code only: rsp relative to its value at entry, while known.
    /// `None` (always, in C code) means no stack slot is tracked.
    sp: Option<i64>,
    /// Go code only: 8-byte stack slots holding a known value, keyed by
    /// their offset from the entry rsp; `Val::Unknown` marks a free entry.
    slots: [(i64, Val); NSLOTS],
    /// Go code only: the frame's address was taken (`lea reg, [rsp+x]`,
    /// `mov reg, rsp`), so any store through a pointer and any call may
    /// change any slot.
    escaped: bool,
}

impl State {
    fn entry(go: Option<&GoFn>) -> State {
        let mut s = State::default();
        if let Some(g) = go {
            if !g.abi0 {
                for (k, &r) in GO_ARG_REGS.iter().enumerate() {
                    s.regs[r] = Val::Arg(k as u8);
                }
            }
            s.sp = Some(0);
            s.slots[0] = (8, Val::Arg(6));
            s.slots[1] = (16, Val::Arg(7));
        } else {
            for (k, &r) in ARG_REGS.iter().enumerate() {
                s.regs[r] = Val::Arg(k as u8);
            }
        }
        s
    }
    fn merge(&self, o: &State) -> State {
        let mut m = *self;
        for i in 0..16 {
            m.regs[i] = self.regs[i].merge(o.regs[i]);
        }
        m.top = self.top.merge(o.top);
        m.escaped = self.escaped || o.escaped;
        if self.sp != o.sp {
            m.sp = None;
            m.clear_slots();
        } else {
            for e in m.slots.iter_mut() {
                if e.1 != Val::Unknown && o.slot(e.0) != e.1 {
                    e.1 = Val::Unknown;
                }
            }
        }
        m
    }
    /// The arguments a callee receives: at a `call` (its entry rsp is 8
    /// below ours) or a jump (the same rsp).
    fn args(&self, go: bool, call: bool) -> Args {
        let mut a = [Val::Unknown; NARGS];
        let regs = if go { &GO_ARG_REGS } else { &ARG_REGS };
        for (k, &r) in regs.iter().enumerate() {
            a[k] = self.regs[r];
        }
        if let Some(sp) = self.sp {
            let base = if call { sp } else { sp + 8 };
            a[6] = self.slot(base);
            a[7] = self.slot(base + 8);
        }
        a
    }
    fn slot(&self, off: i64) -> Val {
        self.slots
            .iter()
            .find(|e| e.0 == off && e.1 != Val::Unknown)
            .map_or(Val::Unknown, |e| e.1)
    }
    /// Forget the slots overlapping `[lo, hi)`.
    fn kill(&mut self, lo: i64, hi: i64) {
        for e in self.slots.iter_mut() {
            if e.0 < hi && e.0.saturating_add(8) > lo {
                e.1 = Val::Unknown;
            }
        }
    }
    fn clear_slots(&mut self) {
        self.slots = [(0, Val::Unknown); NSLOTS];
    }
    fn set_slot(&mut self, off: i64, v: Val) {
        self.kill(off, off.saturating_add(8));
        if v == Val::Unknown {
            return;
        }
        // A full table forgets its first entry (forgetting is always
        // sound: the value becomes unknown).
        let k = self
            .slots
            .iter()
            .position(|e| e.1 == Val::Unknown)
            .unwrap_or(0);
        self.slots[k] = (off, v);
    }
    /// After a `call` in Go code: every general register but rsp, rbp and
    /// r14 (the goroutine) is clobbered (ABIInternal has no callee-saved
    /// register); the stack below rsp is the callee's; the callee owns its
    /// argument area, `_func.args` bytes from our rsp (`runtime/symtab.go`),
    /// and the `runtime.morestack*` functions copy the frame as it is
    /// (`runtime/stack.go`, `copystack`). Anything else (an unknown
    /// callee, an escaped frame) forgets every slot.
    fn after_go_call(&mut self, callee: Option<&GoFn>) {
        for (i, r) in self.regs.iter_mut().enumerate() {
            if i != RSP && i != RBP && i != 14 {
                *r = Val::Unknown;
            }
        }
        self.top = Val::Unknown;
        let Some(sp) = self.sp else { return };
        self.kill(i64::MIN, sp);
        match callee {
            Some(g) if !self.escaped && g.name.starts_with("runtime.morestack") => {}
            Some(g) if !self.escaped && g.args >= 0 => self.kill(sp, sp + i64::from(g.args)),
            _ => self.clear_slots(),
        }
    }
    fn lose_sp(&mut self) {
        self.sp = None;
        self.clear_slots();
    }
}

/// A forward data flow over one function: constants and incoming
/// arguments in the 16 general registers, merged at every block join
/// (two different values merge to unknown). Blocks the flow does not
/// reach (jump-table cases) are then analysed from an unknown state, so
/// every instruction of the function is summarised.
fn summarise(
    ctx: &Ctx,
    code: &[u8],
    f: &Func,
    out: &mut Func,
    factory: &mut InstructionInfoFactory,
    undecodable: &mut u32,
) {
    let go = ctx.gofns.contains_key(&f.start);
    let mut ins_v: Vec<Instruction> = Vec::new();
    let mut d = Decoder::with_ip(64, code, f.start, DecoderOptions::NONE);
    while d.can_decode() {
        let ins = d.decode();
        ins_v.push(ins);
    }
    let n = ins_v.len();
    let index_of = |a: u64| -> Option<usize> { ins_v.binary_search_by_key(&a, |i| i.ip()).ok() };
    let mut leader = vec![false; n];
    if n > 0 {
        leader[0] = true;
    }
    for (k, ins) in ins_v.iter().enumerate() {
        if ctx.jump_targets.contains(&ins.ip()) {
            leader[k] = true;
        }
        match ins.flow_control() {
            FlowControl::Next => {}
            _ => {
                if k + 1 < n {
                    leader[k + 1] = true;
                }
            }
        }
    }
    let mut state_in: HashMap<usize, State> = HashMap::new();
    let mut visited = vec![false; n];
    let mut work: Vec<usize> = Vec::new();
    if n > 0 {
        state_in.insert(0, State::entry(ctx.gofns.get(&f.start)));
        work.push(0);
    }
    let mut sites: HashMap<u64, (Abi, Val, SiteArgs)> = HashMap::new();
    let mut record = |site: u64, abi: Abi, v: Val, a: SiteArgs| {
        let e = sites.entry(site).or_insert((abi, v, a));
        e.1 = e.1.merge(v);
        for (x, y) in e.2.iter_mut().zip(a) {
            *x = x.merge(y);
        }
    };
    let mut edges: HashMap<(u64, Target, u8), Args> = HashMap::new();
    let mut indirect_calls: HashSet<u64> = HashSet::new();
    let mut indirect_jumps: HashSet<u64> = HashSet::new();
    let mut bad: HashSet<u64> = HashSet::new();
    let kind_code = |k: EdgeKind| match k {
        EdgeKind::Call => 0u8,
        EdgeKind::Jump => 1,
        EdgeKind::Ref => 2,
    };
    let mut next_unvisited = 0usize;
    loop {
        let Some(start) = work.pop() else {
            // Seed the first instruction no flow reached.
            // Padding (nops, int3) between blocks is skipped: seeded, it
            // would fall into the next block with an unknown state.
            while next_unvisited < n
                && (visited[next_unvisited]
                    || matches!(
                        ins_v[next_unvisited].mnemonic(),
                        Mnemonic::Nop | Mnemonic::Int3
                    ))
            {
                visited[next_unvisited] = true;
                next_unvisited += 1;
            }
            if next_unvisited >= n {
                break;
            }
            state_in.insert(next_unvisited, State::default());
            work.push(next_unvisited);
            continue;
        };
        let Some(mut st) = state_in.get(&start).copied() else {
            continue;
        };
        let mut k = start;
        let mut propagate = |to: usize, s: &State, work: &mut Vec<usize>| {
            let new = match state_in.get(&to) {
                Some(old) => {
                    let m = old.merge(s);
                    if m == *old {
                        return;
                    }
                    m
                }
                None => *s,
            };
            state_in.insert(to, new);
            work.push(to);
        };
        loop {
            if k >= n {
                // Ran off the end into the next function (a start that is
                // only a label, or code laid out to fall through).
                if let Some(g) = (ctx.func_at)(f.end) {
                    let key = (f.end, Target::Func(g), kind_code(EdgeKind::Jump));
                    let args = st.args(go, false);
                    let e = edges.entry(key).or_insert(args);
                    for i in 0..NARGS {
                        e[i] = e[i].merge(args[i]);
                    }
                }
                break;
            }
            if k != start && leader[k] {
                propagate(k, &st, &mut work);
                break;
            }
            visited[k] = true;
            let ins = &ins_v[k];
            if ins.is_invalid() {
                bad.insert(ins.ip());
                break;
            }
            let mut add_edge = |to: Target, kind: EdgeKind, args: Args| {
                let key = (ins.ip(), to, kind_code(kind));
                let e = edges.entry(key).or_insert(args);
                for i in 0..NARGS {
                    e[i] = e[i].merge(args[i]);
                }
            };
            let fc = ins.flow_control();
            match ins.mnemonic() {
                Mnemonic::Syscall => {
                    let a = [st.regs[RDI], st.regs[RSI], st.regs[RDX]];
                    record(ins.ip(), Abi::X86_64, st.regs[RAX], a);
                    for r in [RAX, 1, 11] {
                        st.regs[r] = Val::Unknown;
                    }
                    k += 1;
                    continue;
                }
                Mnemonic::Int if ins.immediate8() == 0x80 => {
                    let v = match st.regs[RAX] {
                        Val::Const(c) => Val::Const(c & 0xffff_ffff),
                        x => x,
                    };
                    let a = [st.regs[RBX], st.regs[RCX], st.regs[RDX]];
                    record(ins.ip(), Abi::I386, v, a);
                    st.regs[RAX] = Val::Unknown;
                    k += 1;
                    continue;
                }
                Mnemonic::Lea if ins.is_ip_rel_memory_operand() => {
                    let t = ins.ip_rel_memory_address();
                    if let Some(g) = (ctx.func_at)(t) {
                        add_edge(Target::Func(g), EdgeKind::Ref, [Val::Unknown; NARGS]);
                    }
                }
                _ => {}
            }
            match fc {
                FlowControl::Call | FlowControl::IndirectCall => {
                    let mut falls = true;
                    let targets: Option<Vec<Target>> = if fc == FlowControl::Call {
                        let t = ins.near_branch_target();
                        (ctx.func_at)(t).map(|g| match ctx.plt_of.get(&g) {
                            Some(p) => p.clone(),
                            None => vec![Target::Func(g)],
                        })
                    } else if ins.is_ip_rel_memory_operand() {
                        (ctx.slot_targets)(ins.ip_rel_memory_address())
                    } else {
                        None
                    };
                    match targets {
                        Some(ts) => {
                            let mut any_ret = ts.is_empty();
                            for t in ts {
                                any_ret |= match t {
                                    Target::Import(i) => !ctx.noreturn.contains(&i),
                                    Target::Func(g) => ctx.may_return[g],
                                };
                                add_edge(t, EdgeKind::Call, st.args(go, true));
                            }
                            if !any_ret {
                                falls = false;
                            }
                        }
                        None => {
                            indirect_calls.insert(ins.ip());
                        }
                    }
                    if go {
                        // A direct call of one Go function keeps what its
                        // argument area leaves of the frame.
                        let callee = (fc == FlowControl::Call)
                            .then(|| (ctx.func_at)(ins.near_branch_target()))
                            .flatten()
                            .filter(|&g| (ctx.start_of)(g) == ins.near_branch_target())
                            .and_then(|g| ctx.gofns.get(&(ctx.start_of)(g)));
                        st.after_go_call(callee);
                    } else {
                        for r in CALLER_SAVED {
                            st.regs[r] = Val::Unknown;
                        }
                        st.top = Val::Unknown;
                    }
                    if !falls {
                        break;
                    }
                }
                FlowControl::UnconditionalBranch | FlowControl::ConditionalBranch => {
                    if ins.op0_kind() == OpKind::NearBranch64 {
                        let t = ins.near_branch_target();
                        if t >= f.start && t < f.end {
                            if let Some(j) = index_of(t) {
                                propagate(j, &st, &mut work);
                            }
                        } else if let Some(g) = (ctx.func_at)(t) {
                            let ts = match ctx.plt_of.get(&g) {
                                Some(p) => p.clone(),
                                None => vec![Target::Func(g)],
                            };
                            for to in ts {
                                add_edge(to, EdgeKind::Jump, st.args(go, false));
                            }
                        }
                    }
                    if fc == FlowControl::UnconditionalBranch {
                        break;
                    }
                }
                FlowControl::IndirectBranch => {
                    match ins
                        .is_ip_rel_memory_operand()
                        .then(|| (ctx.slot_targets)(ins.ip_rel_memory_address()))
                        .flatten()
                    {
                        Some(ts) => {
                            for t in ts {
                                add_edge(t, EdgeKind::Jump, st.args(go, false));
                            }
                        }
                        None => {
                            indirect_jumps.insert(ins.ip());
                        }
                    }
                    break;
                }
                FlowControl::Return | FlowControl::Exception => break,
                FlowControl::Interrupt => {
                    if matches!(ins.mnemonic(), Mnemonic::Int3 | Mnemonic::Int1) {
                        break;
                    }
                }
                _ => {
                    if ins.mnemonic() == Mnemonic::Hlt {
                        break;
                    }
                    transfer(ins, &mut st, go, factory, ctx, &mut add_edge);
                }
            }
            k += 1;
        }
    }
    let _ = ctx.fi;
    *undecodable += bad.len() as u32;
    for (site, (abi, v, args)) in sites {
        match v {
            Val::Const(c) => {
                let (abi, nr) = classify(abi, c);
                match nr {
                    Some(nr) => {
                        out.syscalls.push((abi, nr, site));
                        if tracks_args(abi, nr) {
                            out.arg_sites.push(ArgSite {
                                abi,
                                nr,
                                site,
                                args,
                            });
                        }
                    }
                    None => out.nonconst_sites.push(site),
                }
            }
            Val::Arg(a) => out.wrapper_sites.push(WrapperSite {
                abi,
                arg: a,
                site,
                args,
            }),
            Val::Unknown => out.nonconst_sites.push(site),
        }
    }
    out.syscalls.sort_unstable();
    out.arg_sites.sort_unstable();
    out.nonconst_sites.sort_unstable();
    out.wrapper_sites.sort_unstable();
    let mut es: Vec<Edge> = edges
        .into_iter()
        .map(|((site, to, k), args)| Edge {
            site,
            to,
            kind: match k {
                0 => EdgeKind::Call,
                1 => EdgeKind::Jump,
                _ => EdgeKind::Ref,
            },
            args,
        })
        .collect();
    es.sort_by_key(|e| e.site);
    out.edges = es;
    out.indirect_calls = indirect_calls.len() as u32;
    out.indirect_jumps = indirect_jumps.len() as u32;
}

/// The (ABI, number) a constant names at a site of `abi`'s instruction:
/// an x86_64 `syscall` with the x32 bit is x32. A constant no ABI could
/// mean (above 0xffff after the x32 bit) is `None`: a non-constant site.
pub fn classify(abi: Abi, c: u64) -> (Abi, Option<u32>) {
    const X32: u64 = schemas::abi::X32_SYSCALL_BIT as u64;
    match abi {
        Abi::X86_64 if c & X32 != 0 && c < X32 + 0x1_0000 => (Abi::X32, Some((c - X32) as u32)),
        _ if c < 0x1_0000 => (abi, Some(c as u32)),
        _ => (abi, None),
    }
}

fn transfer(
    ins: &Instruction,
    st: &mut State,
    go: bool,
    factory: &mut InstructionInfoFactory,
    ctx: &Ctx,
    add_edge: &mut dyn FnMut(Target, EdgeKind, Args),
) {
    let m = ins.mnemonic();
    let op0 =
        (ins.op_count() > 0 && ins.op0_kind() == OpKind::Register).then(|| ins.op0_register());
    let dst = op0.and_then(|r| gpr(r).map(|i| (i, r.size())));
    if st.sp.is_some() && go_stack(ins, st, factory) {
        return;
    }
    // Go: `mov r64, [rip+var]` of a variable never written.
    if go
        && m == Mnemonic::Mov
        && ins.is_ip_rel_memory_operand()
        && ins.op1_kind() == OpKind::Memory
    {
        if let Some((i, 8)) = dst {
            if let Some(v) = (ctx.global_const)(ins.ip_rel_memory_address()) {
                st.regs[i] = Val::Const(v);
                return;
            }
        }
    }
    // A load from a GOT slot takes a function's address.
    if ins.is_ip_rel_memory_operand() {
        if let Some(ts) = (ctx.slot_targets)(ins.ip_rel_memory_address()) {
            for t in ts {
                add_edge(t, EdgeKind::Ref, [Val::Unknown; NARGS]);
            }
        }
    }
    match (m, dst) {
        (Mnemonic::Mov, Some((i, size))) if size == 4 || size == 8 => {
            match ins.op1_kind() {
                OpKind::Immediate32 | OpKind::Immediate64 | OpKind::Immediate32to64 => {
                    let v = ins.immediate(1);
                    // Non-PIE code takes a function's address as an
                    // immediate (`mov edi, main`).
                    if let Some(g) = (ctx.func_at)(v) {
                        if (ctx.start_of)(g) == v {
                            add_edge(Target::Func(g), EdgeKind::Ref, [Val::Unknown; NARGS]);
                        }
                    }
                    st.regs[i] = Val::Const(if size == 4 { v & 0xffff_ffff } else { v });
                    return;
                }
                OpKind::Register => {
                    let src = ins.op1_register();
                    if let Some(j) = gpr(src) {
                        if src.size() == size {
                            st.regs[i] = match st.regs[j] {
                                Val::Const(c) if size == 4 => Val::Const(c & 0xffff_ffff),
                                v => v,
                            };
                            return;
                        }
                    }
                }
                _ => {}
            }
        }
        (Mnemonic::Xor | Mnemonic::Sub, Some((i, size)))
            if (size == 4 || size == 8)
                && ins.op1_kind() == OpKind::Register
                && ins.op1_register() == ins.op0_register() =>
        {
            st.regs[i] = Val::Const(0);
            return;
        }
        (Mnemonic::Pop, Some((i, 8))) => {
            st.regs[i] = st.top;
            st.top = Val::Unknown;
            return;
        }
        (Mnemonic::Push, _) => {
            st.top = match ins.op0_kind() {
                OpKind::Immediate8to64 | OpKind::Immediate32to64 => Val::Const(ins.immediate(0)),
                OpKind::Register => gpr(ins.op0_register())
                    .filter(|_| ins.op0_register().size() == 8)
                    .map(|j| st.regs[j])
                    .unwrap_or_default(),
                _ => Val::Unknown,
            };
            return;
        }
        _ => {}
    }
    let info = factory.info(ins);
    for u in info.used_registers() {
        if matches!(
            u.access(),
            OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite
        ) {
            if let Some(i) = gpr(u.register()) {
                st.regs[i] = Val::Unknown;
                if i == RSP {
                    st.top = Val::Unknown;
                    st.lose_sp();
                }
            }
        }
    }
}

/// Go code with a known rsp: the stack slots. Returns true when the
/// instruction is fully handled here; otherwise its effect on the slots
/// (stores, a taken frame address) is applied and the registers are left
/// to [`transfer`].
fn go_stack(ins: &Instruction, st: &mut State, factory: &mut InstructionInfoFactory) -> bool {
    let Some(sp) = st.sp else { return false };
    let m = ins.mnemonic();
    let reg = |k: u32| (ins.op_kind(k) == OpKind::Register).then(|| ins.op_register(k));
    let rsp_mem = ins.memory_base() == Register::RSP && ins.memory_index() == Register::None;
    let disp = ins.memory_displacement64() as i64;
    let r0 = reg(0);
    match m {
        Mnemonic::Mov if rsp_mem => {
            if ins.op1_kind() == OpKind::Memory {
                // mov r64, [rsp+disp]
                if let Some(r) = r0.filter(|r| r.size() == 8) {
                    if let Some(i) = gpr(r).filter(|&i| i != RSP) {
                        st.regs[i] = st.slot(sp + disp);
                        return true;
                    }
                }
            } else if ins.op0_kind() == OpKind::Memory && ins.memory_size().size() == 8 {
                // mov [rsp+disp], r64 / imm32
                let v = match ins.op1_kind() {
                    OpKind::Register => match gpr(ins.op1_register()) {
                        Some(RSP) => {
                            st.escaped = true;
                            Val::Unknown
                        }
                        Some(j) => st.regs[j],
                        None => Val::Unknown,
                    },
                    OpKind::Immediate32to64 => Val::Const(ins.immediate(1)),
                    _ => Val::Unknown,
                };
                st.set_slot(sp + disp, v);
                return true;
            }
        }
        Mnemonic::Sub | Mnemonic::Add
            if r0 == Some(Register::RSP)
                && matches!(
                    ins.op1_kind(),
                    OpKind::Immediate8to64 | OpKind::Immediate32to64
                ) =>
        {
            let imm = ins.immediate(1) as i64;
            let new = if m == Mnemonic::Sub {
                sp - imm
            } else {
                sp + imm
            };
            st.sp = Some(new);
            st.kill(i64::MIN, new);
            return true;
        }
        Mnemonic::Lea if r0 == Some(Register::RSP) && rsp_mem => {
            st.sp = Some(sp + disp);
            st.kill(i64::MIN, sp + disp);
            return true;
        }
        Mnemonic::Push => {
            let v = match ins.op0_kind() {
                OpKind::Immediate8to64 | OpKind::Immediate32to64 => Val::Const(ins.immediate(0)),
                OpKind::Register => match gpr(ins.op0_register()) {
                    Some(RSP) => {
                        st.escaped = true;
                        Val::Unknown
                    }
                    Some(j) if ins.op0_register().size() == 8 => st.regs[j],
                    _ => Val::Unknown,
                },
                _ => Val::Unknown,
            };
            st.top = v;
            st.sp = Some(sp - 8);
            st.set_slot(sp - 8, v);
            return true;
        }
        Mnemonic::Pop => {
            if let Some(i) = r0.filter(|r| r.size() == 8).and_then(gpr) {
                if i != RSP {
                    st.regs[i] = st.slot(sp);
                    st.top = Val::Unknown;
                    st.sp = Some(sp + 8);
                    st.kill(i64::MIN, sp + 8);
                    return true;
                }
            }
            st.lose_sp();
            return false;
        }
        _ => {}
    }
    // The frame's address taken: `lea reg, [rsp/rbp+x]` (but rbp, the
    // frame pointer, whose chain Go's tracebacks walk), or rsp/rbp read as
    // a value (`mov reg, rsp`).
    if m == Mnemonic::Lea
        && matches!(ins.memory_base(), Register::RSP | Register::RBP)
        && r0 != Some(Register::RBP)
    {
        st.escaped = true;
    }
    for k in 1..ins.op_count() {
        if let Some(r) = reg(k) {
            if matches!(gpr(r), Some(RSP | RBP))
                && !(m == Mnemonic::Mov && r0 == Some(Register::RBP))
            {
                st.escaped = true;
            }
        }
    }
    // Stores: through rsp, the bytes written; through rbp, every slot;
    // through another pointer, every slot once the frame escaped.
    let info = factory.info(ins);
    let mut kills: Vec<(i64, i64)> = Vec::new();
    let mut all = false;
    for u in info.used_memory() {
        if !matches!(
            u.access(),
            OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite
        ) {
            continue;
        }
        match u.base() {
            Register::RIP => {}
            Register::None if u.index() == Register::None => {}
            Register::RSP if u.index() == Register::None && u.memory_size().size() > 0 => {
                let lo = sp + u.displacement() as i64;
                kills.push((lo, lo + u.memory_size().size() as i64));
            }
            Register::RSP | Register::RBP => all = true,
            _ => all |= st.escaped,
        }
    }
    if all {
        st.clear_slots();
    }
    for (lo, hi) in kills {
        st.kill(lo, hi);
    }
    false
}

/// Where an instruction may write, or take the address of, a static Go
/// file's writable data: a store or `lea` through `rip`, a memory operand
/// whose displacement is an absolute address there (any access), an
/// immediate equal to one. Each is a range of at most 64 bytes.
fn touches(
    ins: &Instruction,
    in_writable: &dyn Fn(u64) -> bool,
    factory: &mut InstructionInfoFactory,
    out: &mut Vec<(u64, u64)>,
) {
    for k in 0..ins.op_count() {
        match ins.op_kind(k) {
            OpKind::Immediate32 | OpKind::Immediate32to64 | OpKind::Immediate64 => {
                let v = ins.immediate(k);
                if in_writable(v) {
                    out.push((v, v + 1));
                }
            }
            OpKind::Memory => {
                if ins.is_ip_rel_memory_operand() {
                    let a = ins.ip_rel_memory_address();
                    if !in_writable(a) {
                        continue;
                    }
                    let size = (ins.memory_size().size() as u64).clamp(1, 64);
                    let write =
                        ins.mnemonic() == Mnemonic::Lea
                            || factory.info(ins).used_memory().iter().any(|u| {
                                !matches!(u.access(), OpAccess::Read | OpAccess::CondRead)
                            });
                    if write {
                        out.push((a, a + size));
                    }
                } else {
                    let a = ins.memory_displacement64();
                    if in_writable(a) {
                        out.push((a, a + 1));
                    }
                }
            }
            _ => {}
        }
    }
}
