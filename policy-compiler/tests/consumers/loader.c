/*
 * Installs a raw classic-BPF seccomp program and execs a command under it,
 * for tests/consumers.rs: the consumer of `bpf/<family>.bpf` is the
 * kernel's seccomp(SECCOMP_SET_MODE_FILTER), exactly as here.
 *
 * Usage: loader PROGRAM.bpf COMMAND [ARG...]
 * PROGRAM.bpf: little-endian struct sock_filter array (8 bytes each).
 * Exit 120 (with a message) when the file or the kernel rejects it.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: loader PROGRAM.bpf COMMAND [ARG...]\n");
        return 120;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        fprintf(stderr, "loader: open %s: %s\n", argv[1], strerror(errno));
        return 120;
    }
    static struct sock_filter insns[BPF_MAXINSNS + 1];
    size_t n = fread(insns, sizeof insns[0], BPF_MAXINSNS + 1, f);
    long rest = ftell(f);
    fclose(f);
    if (n == 0 || n > BPF_MAXINSNS || rest != (long)(n * sizeof insns[0])) {
        fprintf(stderr, "loader: %s: %zu instructions, %ld bytes: not a program\n", argv[1], n, rest);
        return 120;
    }
    struct sock_fprog prog = { .len = (unsigned short)n, .filter = insns };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        fprintf(stderr, "loader: PR_SET_NO_NEW_PRIVS: %s\n", strerror(errno));
        return 120;
    }
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
        fprintf(stderr, "loader: seccomp(SECCOMP_SET_MODE_FILTER, %zu instructions): %s\n", n, strerror(errno));
        return 120;
    }
    execv(argv[2], argv + 2);
    /* write(2) and exit_group(2) are what the profile must allow anyway. */
    fprintf(stderr, "loader: exec %s: %s\n", argv[2], strerror(errno));
    return 121;
}
