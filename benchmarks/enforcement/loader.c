// loader.c - install a classic-BPF seccomp filter, then exec a command.
//
// Usage: loader FILTER.bpf COMMAND [ARGS...]
// FILTER.bpf is a raw little-endian `struct sock_filter` array (8 bytes per
// instruction), as policy-compiler renders `bpf/x86_64.bpf`. Sets
// PR_SET_NO_NEW_PRIVS (so no privilege is needed), installs the program with
// seccomp(SECCOMP_SET_MODE_FILTER), and execs COMMAND under it: the filter
// then sees every syscall of COMMAND, from its execve on.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s FILTER.bpf COMMAND [ARGS...]\n", argv[0]);
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	if (!f) {
		fprintf(stderr, "loader: open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	static struct sock_filter insns[BPF_MAXINSNS + 1];
	size_t n = fread(insns, sizeof insns[0], BPF_MAXINSNS + 1, f);
	int bad = ferror(f) || n == 0 || n > BPF_MAXINSNS;
	long extra = ftell(f) % (long)sizeof insns[0];
	fclose(f);
	if (bad || extra != 0) {
		fprintf(stderr, "loader: %s: not a sock_filter array of 1..%d instructions\n",
			argv[1], BPF_MAXINSNS);
		return 1;
	}
	struct sock_fprog prog = { .len = (unsigned short)n, .filter = insns };
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
		perror("loader: PR_SET_NO_NEW_PRIVS");
		return 1;
	}
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) != 0) {
		perror("loader: seccomp(SECCOMP_SET_MODE_FILTER)");
		return 1;
	}
	execv(argv[2], argv + 2);
	perror("loader: execv");
	return 127;
}
