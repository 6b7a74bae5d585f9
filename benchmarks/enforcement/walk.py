#!/usr/bin/env python3
"""Walk a raw classic-BPF seccomp filter (as dumpfilter.c writes it) for
one call and say how many instructions ran, what it returned and whether
the kernel's action cache covers the call (it does when, for this arch and
number, the filter allows without reading anything but nr and arch: the
kernel's seccomp_is_const_allow).

Usage: walk.py FILTER.bpf NAME SYSCALL_NR [ARG0]   (x86_64; NAME only labels the line)
"""
import os
import struct
import sys

AUDIT_ARCH_X86_64 = 0xC000003E
RET_ALLOW = 0x7FFF0000


def walk(prog, nr, args):
    data = struct.pack("<iIQ6Q", nr, AUDIT_ARCH_X86_64, 0, *args)
    a = x = 0
    pc = steps = 0
    reads_other = False
    while True:
        code, jt, jf, k = prog[pc]
        steps += 1
        cls = code & 0x07
        if cls == 0x00:  # ld
            if code == 0x20:  # ld w abs
                if k not in (0, 4):
                    reads_other = True
                a = struct.unpack_from("<I", data, k)[0]
            elif code == 0x00:  # ld imm
                a = k
            else:
                sys.exit(f"unsupported ld {code:#x}")
            pc += 1
        elif cls == 0x01:  # ldx
            x = k if code == 0x01 else sys.exit(f"unsupported ldx {code:#x}")
            pc += 1
        elif cls == 0x04:  # alu
            op, src = code & 0xF0, (x if code & 0x08 else k)
            if op == 0x50:
                a &= src
            elif op == 0x40:
                a |= src
            else:
                sys.exit(f"unsupported alu {code:#x}")
            a &= 0xFFFFFFFF
            pc += 1
        elif cls == 0x05:  # jmp
            op, src = code & 0xF0, (x if code & 0x08 else k)
            if op == 0x00:
                pc += 1 + k
                continue
            cond = {0x10: a == src, 0x20: a > src, 0x30: a >= src, 0x40: (a & src) != 0}[op]
            pc += 1 + (jt if cond else jf)
        elif cls == 0x06:  # ret
            return steps, k, not reads_other and k == RET_ALLOW
        elif cls == 0x07:  # misc: tax/txa
            if code == 0x07:
                x = a
            else:
                a = x
            pc += 1
        else:
            sys.exit(f"unsupported class {code:#x}")


def main():
    raw = open(sys.argv[1], "rb").read()
    prog = [struct.unpack_from("<HBBI", raw, i) for i in range(0, len(raw), 8)]
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    name, nr = sys.argv[2], int(sys.argv[3])
    args = [int(sys.argv[4], 0) if len(sys.argv) > 4 else 0] + [0] * 5
    steps, ret, cached = walk(prog, nr, args)
    print(f"{os.path.basename(sys.argv[1])}: {len(prog)} instructions; {name}({args[0]:#x}): "
          f"{steps} run, returns {ret:#010x}, action cache: {'yes' if cached else 'no'}")


if __name__ == "__main__":
    main()
