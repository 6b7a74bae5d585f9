// dumpfilter.c - write the seccomp filters of a running process as raw
// little-endian struct sock_filter arrays (as loader.c reads them).
//
// Usage: dumpfilter PID OUT_PREFIX   (root: PTRACE_SECCOMP_GET_FILTER needs
// CAP_SYS_ADMIN). Attaches with PTRACE_SEIZE, stops the process with
// PTRACE_INTERRUPT, writes OUT_PREFIX.N.bpf for every filter N (0 = the
// most recently installed, which the kernel runs first), detaches.
#define _GNU_SOURCE
#include <errno.h>
#include <linux/filter.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s PID OUT_PREFIX\n", argv[0]);
		return 2;
	}
	pid_t pid = (pid_t)atoi(argv[1]);
	if (ptrace(PTRACE_SEIZE, pid, 0, 0) != 0 || ptrace(PTRACE_INTERRUPT, pid, 0, 0) != 0) {
		fprintf(stderr, "dumpfilter: attach %d: %s\n", pid, strerror(errno));
		return 1;
	}
	int st;
	if (waitpid(pid, &st, __WALL) != pid) {
		fprintf(stderr, "dumpfilter: waitpid: %s\n", strerror(errno));
		return 1;
	}
	int rc = 0;
	for (unsigned long i = 0;; i++) {
		long n = ptrace(PTRACE_SECCOMP_GET_FILTER, pid, (void *)i, NULL);
		if (n < 0) {
			if (errno != ENOENT) {
				fprintf(stderr, "dumpfilter: filter %lu: %s\n", i, strerror(errno));
				rc = 1;
			}
			break;
		}
		struct sock_filter *f = calloc((size_t)n, sizeof *f);
		if (!f || ptrace(PTRACE_SECCOMP_GET_FILTER, pid, (void *)i, f) != n) {
			fprintf(stderr, "dumpfilter: filter %lu: %s\n", i, strerror(errno));
			rc = 1;
			break;
		}
		char path[4096];
		snprintf(path, sizeof path, "%s.%lu.bpf", argv[2], i);
		FILE *o = fopen(path, "wb");
		if (!o || fwrite(f, sizeof *f, (size_t)n, o) != (size_t)n || fclose(o) != 0) {
			fprintf(stderr, "dumpfilter: %s: %s\n", path, strerror(errno));
			rc = 1;
			break;
		}
		printf("%s %ld instructions\n", path, n);
		free(f);
	}
	ptrace(PTRACE_DETACH, pid, 0, 0);
	return rc;
}
