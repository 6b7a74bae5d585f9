/*
 * A static x86_64 probe with no libc, for tests/consumers.rs: its only
 * syscalls are the ones under test, one write(2) of the result line and
 * exit_group(2), so the profile under test needs nothing else from it
 * (libc start-up would add brk, arch_prctl, set_tid_address, rseq...).
 *
 * Usage: probe NR...   Calls each syscall NR with six zero arguments and
 * prints "NR:ok" (non-negative return) or "NR:ERRNO", space-separated, and
 * a newline. Build: cc -static -nostdlib -fno-stack-protector -O1.
 */
static long sys6(long nr, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

static char out[4096];
static unsigned long len;

static void put(const char *s)
{
    while (*s && len < sizeof out - 1)
        out[len++] = *s++;
}

static void put_num(long v)
{
    char tmp[24];
    int i = 0;
    if (v == 0)
        tmp[i++] = '0';
    while (v > 0 && i < 23) {
        tmp[i++] = (char)('0' + v % 10);
        v /= 10;
    }
    while (i > 0 && len < sizeof out - 1)
        out[len++] = tmp[--i];
}

void probe_main(long *sp)
{
    long argc = sp[0];
    char **argv = (char **)(sp + 1);
    for (long i = 1; i < argc; i++) {
        long nr = 0;
        for (const char *p = argv[i]; *p >= '0' && *p <= '9'; p++)
            nr = nr * 10 + (*p - '0');
        long ret = sys6(nr, 0, 0, 0, 0, 0, 0);
        if (i > 1)
            put(" ");
        put_num(nr);
        put(":");
        if (ret >= 0)
            put("ok");
        else
            put_num(-ret);
    }
    put("\n");
    sys6(1 /* write */, 1, (long)out, (long)len, 0, 0, 0);
    sys6(231 /* exit_group */, 0, 0, 0, 0, 0, 0);
}

__asm__(".globl _start\n"
        "_start:\n"
        "  xor %rbp, %rbp\n"
        "  mov %rsp, %rdi\n"
        "  and $-16, %rsp\n"
        "  call probe_main\n"
        "  hlt\n");
