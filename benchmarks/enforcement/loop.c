// loop.c - syscall-bound loop for the enforcement-cost benchmark.
//
// Usage: loop SYSCALL N      SYSCALL: getppid (allowed), acct (denied) or
//                            personality (personality(PER_LINUX), allowed)
// Makes SYSCALL N times (after a short untimed warm-up) and prints the mean
// cost per call, as ../collector-cost/loop.c does:
//   ns_per_call      wall time (CLOCK_MONOTONIC, the vDSO: no syscall);
//   cpu_ns_per_call  the thread's CPU time (CLOCK_THREAD_CPUTIME_ID), which
//                    leaves out time spent preempted on a shared machine.
// acct(NULL) is called without CAP_SYS_PACCT (in a container, or as nobody
// on the host), so it fails with EPERM at the capability check when no
// filter denies it first; the loop checks that every call failed with the
// errno it expects (EPERM) and that getppid succeeded, so a filter that
// answers something else is noticed.
// personality(0) sets the persona PER_LINUX (0), which the loop already has,
// and returns the old one: one integer argument, no state change (the loop
// checks that the first call returned 0), no lock; it is the call the
// argument-rule variants of the profile narrow on its first argument
// (run.sh). 0 rather than the query value 0xffffffff: runc's libseccomp
// compares a syscall's values in descending order, so 0 is compared last
// there, as it is last in the profile that sandmine's own compiler follows.
// Built static (-static) so that it runs in a busybox image without libc.
//
// Output (one line on stdout):
//   loop: syscall=getppid n=... ns_total=... ns_per_call=... cpu_ns=... cpu_ns_per_call=... errno=0
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static long long clock_ns(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s getppid|acct|personality N\n", argv[0]);
		return 2;
	}
	long nr;
	/* The first argument: ignored by getppid, NULL for acct,
	 * PER_LINUX for personality. */
	unsigned long arg = 0;
	int want_errno;
	if (strcmp(argv[1], "getppid") == 0) {
		nr = SYS_getppid;
		want_errno = 0;
	} else if (strcmp(argv[1], "acct") == 0) {
		nr = SYS_acct;
		want_errno = EPERM;
	} else if (strcmp(argv[1], "personality") == 0) {
		nr = SYS_personality;
		arg = 0; /* PER_LINUX */
		want_errno = 0;
	} else {
		fprintf(stderr, "loop: unknown syscall '%s' (getppid, acct or personality)\n", argv[1]);
		return 2;
	}
	char *end;
	long long n = strtoll(argv[2], &end, 10);
	if (*end != '\0' || n <= 0) {
		fprintf(stderr, "loop: bad N '%s'\n", argv[2]);
		return 2;
	}

	long long warm = n / 100 < 10000 ? n / 100 : 10000;
	for (long long i = 0; i < warm; i++)
		syscall(nr, arg);
	errno = 0;
	long r = syscall(nr, arg);
	int got = r < 0 ? errno : 0;
	if (nr == SYS_personality && r != 0) {
		/* The persona was not PER_LINUX: the warm-up changed it. */
		fprintf(stderr, "loop: personality returned %ld, expected PER_LINUX (0)\n", r);
		return 1;
	}
	if (got != want_errno) {
		fprintf(stderr, "loop: %s returned %ld errno %d (%s), expected errno %d\n",
			argv[1], r, got, strerror(got), want_errno);
		return 1;
	}

	long long c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	long long t0 = clock_ns(CLOCK_MONOTONIC);
	for (long long i = 0; i < n; i++)
		syscall(nr, arg);
	long long t1 = clock_ns(CLOCK_MONOTONIC);
	long long c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);

	printf("loop: syscall=%s n=%lld ns_total=%lld ns_per_call=%.2f cpu_ns=%lld cpu_ns_per_call=%.2f errno=%d\n",
	       argv[1], n, t1 - t0, (double)(t1 - t0) / (double)n, c1 - c0,
	       (double)(c1 - c0) / (double)n, got);
	fflush(stdout);
	return 0;
}
