// loop.c - syscall-bound loop for the collector-cost benchmark.
//
// Usage: loop N [NR [A0 [A1 [A2]]]]
// Makes syscall(SYS_getppid) N times (after a short untimed warm-up) and
// prints the mean cost per call, two ways:
//   ns_per_call      wall time, clock_gettime(CLOCK_MONOTONIC): the vDSO, so
//                    the timing makes no syscall. The primary figure.
//   cpu_ns_per_call  this thread's CPU time, CLOCK_THREAD_CPUTIME_ID (a
//                    syscall, but only before and after the loop): leaves out
//                    the time the loop sat preempted, so it is steadier on a
//                    shared machine. BPF programs run in the loop's context,
//                    so their cost is in both.
//
// With NR (C literals, 0x... allowed), the call is syscall(NR, A0, A1, A2)
// instead (arguments default to 0): e.g. `loop N 135 0xffffffff`, the
// personality query, a call whose argument sandmine records (body.sh
// LOOP_ARGS). With LOOP_VARY=K in the environment, the warm-up first makes
// the call with the last argument given set to each of its value,
// value+1, ..., value+K-1, and the timed loop then uses value+K: e.g.
// `LOOP_VARY=32 loop N 16 0xffffffff 0x80003000` fills sandmine's 32-value
// ioctl row, so every timed call is a 33rd value (its worst case).
//
// Output (one line on stdout, parsed by run.sh):
//   loop: n=5000000 ns_total=... ns_per_call=123.45 cpu_ns=... cpu_ns_per_call=120.00
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
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
	if (argc < 2 || argc > 6) {
		fprintf(stderr, "usage: %s N [NR [A0 [A1 [A2]]]]\n", argv[0]);
		return 2;
	}
	char *end;
	long long n = strtoll(argv[1], &end, 10);
	if (*end != '\0' || n <= 0) {
		fprintf(stderr, "loop: bad N '%s'\n", argv[1]);
		return 2;
	}

	long nr = argc > 2 ? strtol(argv[2], NULL, 0) : -1;
	unsigned long a[3] = {0, 0, 0};
	for (int k = 0; k < 3 && 3 + k < argc; k++)
		a[k] = strtoul(argv[3 + k], NULL, 0);

	long long warm = n / 100 < 10000 ? n / 100 : 10000;
	long long c0, t0, t1, c1;
	if (nr < 0) {
		for (long long i = 0; i < warm; i++)
			syscall(SYS_getppid);
		c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		t0 = clock_ns(CLOCK_MONOTONIC);
		for (long long i = 0; i < n; i++)
			syscall(SYS_getppid);
		t1 = clock_ns(CLOCK_MONOTONIC);
		c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	} else {
		const char *vary = getenv("LOOP_VARY");
		int last = argc - 4; /* index of the last argument given */
		if (vary != NULL && last >= 0) {
			long k = strtol(vary, NULL, 0);
			for (long v = 0; v < k; v++) {
				a[last] += v == 0 ? 0 : 1;
				syscall(nr, a[0], a[1], a[2]);
			}
			a[last] += 1;
		}
		for (long long i = 0; i < warm; i++)
			syscall(nr, a[0], a[1], a[2]);
		c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		t0 = clock_ns(CLOCK_MONOTONIC);
		for (long long i = 0; i < n; i++)
			syscall(nr, a[0], a[1], a[2]);
		t1 = clock_ns(CLOCK_MONOTONIC);
		c1 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
	}

	printf("loop: n=%lld ns_total=%lld ns_per_call=%.2f cpu_ns=%lld cpu_ns_per_call=%.2f\n",
	       n, t1 - t0, (double)(t1 - t0) / (double)n, c1 - c0, (double)(c1 - c0) / (double)n);
	fflush(stdout);
	return 0;
}
