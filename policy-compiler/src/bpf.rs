//! A userspace classic-BPF interpreter for seccomp programs, with the
//! kernel's checks: what judges a program where installing it is not an
//! option (unit tests, the fuzz targets in `fuzz/`, and their corpus
//! replay in `tests/fuzz_corpus.rs`).
//!
//! [`check`] refuses what the kernel refuses when the program is installed
//! (`seccomp_check_filter` and `bpf_check_classic` in Linux): an empty or
//! too long program, an instruction seccomp does not allow, a load outside
//! `struct seccomp_data` or unaligned, a jump out of the program, a division
//! or a shift by an out-of-range constant, a scratch-memory read that some
//! path reaches before any store, and a last instruction that is not a
//! `ret`. [`run`] then evaluates it on one `seccomp_data` as the kernel
//! does: 32-bit accumulator and index register, a division by a zero
//! register ends the program with 0, a shift by the register uses its low
//! five bits. The instruction set is the whole of what seccomp accepts, not
//! only what [`crate::filter`] emits, so that other compilers' programs
//! (libseccomp's) run here too.

use crate::filter::{SockFilter, BPF_MAXINSNS};
/// Words of scratch memory (`BPF_MEMWORDS`).
const MEMWORDS: u32 = 16;
/// `sizeof(struct seccomp_data)`.
const DATA_LEN: u32 = 64;

// Instruction classes and fields (<linux/bpf_common.h>).
const LD: u16 = 0x00;
const LDX: u16 = 0x01;
const ST: u16 = 0x02;
const STX: u16 = 0x03;
const ALU: u16 = 0x04;
const JMP: u16 = 0x05;
const RET: u16 = 0x06;
const MISC: u16 = 0x07;
const W: u16 = 0x00;
const IMM: u16 = 0x00;
const ABS: u16 = 0x20;
const MEM: u16 = 0x60;
const LEN: u16 = 0x80;
const K: u16 = 0x00;
const X: u16 = 0x08;
const A: u16 = 0x10;
const ADD: u16 = 0x00;
const SUB: u16 = 0x10;
const MUL: u16 = 0x20;
const DIV: u16 = 0x30;
const OR: u16 = 0x40;
const AND: u16 = 0x50;
const LSH: u16 = 0x60;
const RSH: u16 = 0x70;
const NEG: u16 = 0x80;
const XOR: u16 = 0xa0;
const JA: u16 = 0x00;
const JEQ: u16 = 0x10;
const JGT: u16 = 0x20;
const JGE: u16 = 0x30;
const JSET: u16 = 0x40;
const TAX: u16 = 0x00;
const TXA: u16 = 0x80;

/// One system call as the filter sees it (`struct seccomp_data`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SeccompData {
    pub nr: u32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

impl SeccompData {
    /// The 32-bit word at byte offset `k` (little-endian, as on x86 and
    /// aarch64), for an aligned `k` below 64.
    fn word(&self, k: u32) -> u32 {
        let split = |v: u64, hi: bool| if hi { (v >> 32) as u32 } else { v as u32 };
        match k / 4 {
            0 => self.nr,
            1 => self.arch,
            2 => split(self.instruction_pointer, false),
            3 => split(self.instruction_pointer, true),
            w => {
                let i = (w - 4) as usize;
                split(self.args[i / 2], i % 2 == 1)
            }
        }
    }
}

/// Why the kernel would refuse a program.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BpfError {
    /// No instructions, or more than [`BPF_MAXINSNS`].
    #[error("{0} instructions (1 to {BPF_MAXINSNS} allowed)")]
    Length(usize),
    /// An opcode seccomp does not accept.
    #[error("opcode {code:#06x} at {pc} not allowed")]
    Opcode { pc: usize, code: u16 },
    /// A load outside `struct seccomp_data`, or not word-aligned.
    #[error("load of offset {k} at {pc}")]
    Load { pc: usize, k: u32 },
    /// A scratch-memory index of 16 or more.
    #[error("scratch word {k} at {pc}")]
    Scratch { pc: usize, k: u32 },
    /// A scratch word read on some path before any store to it.
    #[error("scratch word {k} read at {pc} before any store")]
    Uninitialised { pc: usize, k: u32 },
    /// A division by the constant 0, or a shift by 32 or more.
    #[error("constant {k} at {pc} out of range")]
    Constant { pc: usize, k: u32 },
    /// A jump past the end of the program.
    #[error("jump out of the program at {pc}")]
    Jump { pc: usize },
    /// The last instruction is not a `ret`.
    #[error("the program does not end with ret")]
    NoFinalRet,
}

/// Whether the kernel accepts `code` in a seccomp filter.
fn allowed(code: u16) -> bool {
    const OK: &[u16] = &[
        LD | W | ABS,
        LD | W | LEN,
        LDX | W | LEN,
        LD | IMM,
        LDX | IMM,
        LD | MEM,
        LDX | MEM,
        ST,
        STX,
        MISC | TAX,
        MISC | TXA,
        RET | K,
        RET | A,
        ALU | NEG,
        JMP | JA,
    ];
    if OK.contains(&code) {
        return true;
    }
    let op = code & 0xf0;
    code <= 0xff
        && match code & 0x07 {
            ALU => [ADD, SUB, MUL, DIV, AND, OR, XOR, LSH, RSH].contains(&op),
            JMP => [JEQ, JGT, JGE, JSET].contains(&op),
            _ => false,
        }
}

/// The kernel's checks at install time (see the module documentation).
pub fn check(prog: &[SockFilter]) -> Result<(), BpfError> {
    if prog.is_empty() || prog.len() > BPF_MAXINSNS {
        return Err(BpfError::Length(prog.len()));
    }
    let len = prog.len();
    let in_bounds = |pc: usize, off: u32| pc + 1 + (off as usize) < len;
    for (pc, i) in prog.iter().enumerate() {
        if !allowed(i.code) {
            return Err(BpfError::Opcode { pc, code: i.code });
        }
        match i.code {
            c if c == LD | W | ABS && (i.k % 4 != 0 || i.k >= DATA_LEN) => {
                return Err(BpfError::Load { pc, k: i.k })
            }
            c if [LD | MEM, LDX | MEM, ST, STX].contains(&c) && i.k >= MEMWORDS => {
                return Err(BpfError::Scratch { pc, k: i.k })
            }
            c if c == ALU | DIV | K && i.k == 0 => return Err(BpfError::Constant { pc, k: 0 }),
            c if (c == ALU | LSH | K || c == ALU | RSH | K) && i.k >= 32 => {
                return Err(BpfError::Constant { pc, k: i.k })
            }
            c if c == JMP | JA && !in_bounds(pc, i.k) => return Err(BpfError::Jump { pc }),
            // `ja` ignores jt and jf.
            c if c & 0x07 == JMP
                && c != JMP | JA
                && (!in_bounds(pc, u32::from(i.jt)) || !in_bounds(pc, u32::from(i.jf))) =>
            {
                return Err(BpfError::Jump { pc })
            }
            _ => {}
        }
    }
    if prog[len - 1].code & 0x07 != RET {
        return Err(BpfError::NoFinalRet);
    }
    check_scratch(prog)
}

/// The kernel's `check_load_and_stores`: every scratch read is preceded by
/// a store on every path to it (jumps only go forward, so one pass does).
fn check_scratch(prog: &[SockFilter]) -> Result<(), BpfError> {
    if !prog
        .iter()
        .any(|i| i.code == LD | MEM || i.code == LDX | MEM)
    {
        return Ok(());
    }
    let mut masks = vec![u16::MAX; prog.len()];
    masks[0] = 0;
    let mut valid = 0u16;
    for (pc, i) in prog.iter().enumerate() {
        valid &= masks[pc];
        match i.code {
            c if c == ST || c == STX => valid |= 1 << i.k,
            c if (c == LD | MEM || c == LDX | MEM) && valid & (1 << i.k) == 0 => {
                return Err(BpfError::Uninitialised { pc, k: i.k })
            }
            c if c == JMP | JA => {
                masks[pc + 1 + i.k as usize] &= valid;
                valid = u16::MAX;
            }
            c if c & 0x07 == JMP => {
                masks[pc + 1 + usize::from(i.jt)] &= valid;
                masks[pc + 1 + usize::from(i.jf)] &= valid;
                valid = u16::MAX;
            }
            c if c & 0x07 == RET => valid = u16::MAX,
            _ => {}
        }
    }
    Ok(())
}

/// Checks `prog` ([`check`]) and runs it on `data`: the value the kernel's
/// seccomp would act on.
pub fn run(prog: &[SockFilter], data: &SeccompData) -> Result<u32, BpfError> {
    check(prog)?;
    Ok(run_checked(prog, data))
}

/// Runs a program [`check`] accepted. Jumps only go forward and the last
/// instruction returns, so this ends within `prog.len()` steps.
fn run_checked(prog: &[SockFilter], data: &SeccompData) -> u32 {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem = [0u32; MEMWORDS as usize];
    let mut pc = 0usize;
    while let Some(i) = prog.get(pc) {
        pc += 1;
        let k = i.k;
        let src = if i.code & X != 0 { x } else { k };
        match i.code & 0x07 {
            LD => match i.code {
                c if c == LD | W | ABS => a = data.word(k),
                c if c == LD | W | LEN => a = DATA_LEN,
                c if c == LD | MEM => a = mem[k as usize],
                _ => a = k,
            },
            LDX => match i.code {
                c if c == LDX | W | LEN => x = DATA_LEN,
                c if c == LDX | MEM => x = mem[k as usize],
                _ => x = k,
            },
            ST => mem[k as usize] = a,
            STX => mem[k as usize] = x,
            ALU => {
                a = match i.code & 0xf0 {
                    ADD => a.wrapping_add(src),
                    SUB => a.wrapping_sub(src),
                    MUL => a.wrapping_mul(src),
                    DIV if src == 0 => return 0,
                    DIV => a / src,
                    OR => a | src,
                    AND => a & src,
                    XOR => a ^ src,
                    LSH => a << (src & 31),
                    RSH => a >> (src & 31),
                    _ => a.wrapping_neg(),
                }
            }
            JMP => {
                if i.code == JMP | JA {
                    pc += k as usize;
                    continue;
                }
                let taken = match i.code & 0xf0 {
                    JEQ => a == src,
                    JGT => a > src,
                    JGE => a >= src,
                    _ => a & src != 0,
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            RET => return if i.code & A != 0 { a } else { k },
            _ => {
                if i.code == MISC | TAX {
                    x = a;
                } else {
                    a = x;
                }
            }
        }
    }
    // Unreachable for a checked program: its last instruction returns.
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ins(code: u16, jt: u8, jf: u8, k: u32) -> SockFilter {
        SockFilter { code, jt, jf, k }
    }

    fn data(nr: u32, args: [u64; 6]) -> SeccompData {
        SeccompData {
            nr,
            arch: 0xc000_003e,
            instruction_pointer: 0x1122_3344_5566_7788,
            args,
        }
    }

    #[test]
    fn loads_every_word_little_endian() {
        let d = data(7, [0x0000_0001_0000_0002, 0, 0, 0, 0, u64::MAX - 1]);
        for (k, want) in [
            (0, 7),
            (4, 0xc000_003e),
            (8, 0x5566_7788),
            (12, 0x1122_3344),
            (16, 2),
            (20, 1),
            (56, 0xffff_fffe),
            (60, 0xffff_ffff),
        ] {
            let prog = [ins(LD | W | ABS, 0, 0, k), ins(RET | A, 0, 0, 0)];
            assert_eq!(run(&prog, &d), Ok(want), "offset {k}");
        }
    }

    #[test]
    fn arithmetic_scratch_and_jumps() {
        // a = nr * 3 + 1; mem[2] = a; x = a; a = x ^ 0xff; if a > 200 ret mem[2] else ret 9
        let prog = [
            ins(LD | W | ABS, 0, 0, 0),
            ins(ALU | MUL | K, 0, 0, 3),
            ins(ALU | ADD | K, 0, 0, 1),
            ins(ST, 0, 0, 2),
            ins(MISC | TAX, 0, 0, 0),
            ins(MISC | TXA, 0, 0, 0),
            ins(ALU | XOR | K, 0, 0, 0xff),
            ins(JMP | JGT | K, 0, 2, 200),
            ins(LD | MEM, 0, 0, 2),
            ins(RET | A, 0, 0, 0),
            ins(RET | K, 0, 0, 9),
        ];
        // nr 2: a = 7, 7 ^ 0xff = 248 > 200: ret 7.
        assert_eq!(run(&prog, &data(2, [0; 6])), Ok(7));
        // nr 40: a = 121, 121 ^ 0xff = 134: ret 9.
        assert_eq!(run(&prog, &data(40, [0; 6])), Ok(9));
    }

    #[test]
    fn division_by_a_zero_register_returns_zero() {
        let prog = [
            ins(LD | IMM, 0, 0, 10),
            ins(LDX | IMM, 0, 0, 0),
            ins(ALU | DIV | X, 0, 0, 0),
            ins(RET | K, 0, 0, 5),
        ];
        assert_eq!(run(&prog, &data(0, [0; 6])), Ok(0));
    }

    #[test]
    fn what_the_kernel_refuses() {
        let ret = ins(RET | K, 0, 0, 0);
        assert_eq!(check(&[]), Err(BpfError::Length(0)));
        assert_eq!(check(&vec![ret; 4097]), Err(BpfError::Length(4097)));
        assert_eq!(
            check(&[ins(LD | W | ABS, 0, 0, 64), ret]),
            Err(BpfError::Load { pc: 0, k: 64 })
        );
        assert_eq!(
            check(&[ins(LD | W | ABS, 0, 0, 2), ret]),
            Err(BpfError::Load { pc: 0, k: 2 })
        );
        // BPF_MOD and byte loads are not seccomp's.
        assert_eq!(
            check(&[ins(ALU | 0x90, 0, 0, 3), ret]),
            Err(BpfError::Opcode { pc: 0, code: 0x94 })
        );
        assert_eq!(
            check(&[ins(0x30, 0, 0, 0), ret]),
            Err(BpfError::Opcode { pc: 0, code: 0x30 })
        );
        assert_eq!(
            check(&[ins(JMP | JEQ | K, 1, 0, 0), ret]),
            Err(BpfError::Jump { pc: 0 })
        );
        assert_eq!(
            check(&[ins(JMP | JA, 0, 0, 1), ret]),
            Err(BpfError::Jump { pc: 0 })
        );
        // `ja` ignores jt and jf.
        assert_eq!(check(&[ins(JMP | JA, 9, 9, 0), ret]), Ok(()));
        assert_eq!(
            check(&[ins(ALU | DIV | K, 0, 0, 0), ret]),
            Err(BpfError::Constant { pc: 0, k: 0 })
        );
        assert_eq!(
            check(&[ins(ALU | LSH | K, 0, 0, 32), ret]),
            Err(BpfError::Constant { pc: 0, k: 32 })
        );
        assert_eq!(
            check(&[ins(ST, 0, 0, 16), ret]),
            Err(BpfError::Scratch { pc: 0, k: 16 })
        );
        assert_eq!(
            check(&[ins(LD | W | ABS, 0, 0, 0)]),
            Err(BpfError::NoFinalRet)
        );
        // mem[1] is stored on one path only.
        let prog = [
            ins(LD | W | ABS, 0, 0, 0),
            ins(JMP | JEQ | K, 0, 1, 5),
            ins(ST, 0, 0, 1),
            ins(LD | MEM, 0, 0, 1),
            ins(RET | A, 0, 0, 0),
        ];
        assert_eq!(check(&prog), Err(BpfError::Uninitialised { pc: 3, k: 1 }));
    }
}
