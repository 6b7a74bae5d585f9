/* syscall(NR, A0, BASE + i % COUNT) for i in 0..ROUNDS*COUNT, then exit:
 * COUNT distinct values of the second argument, each ROUNDS times, in a
 * cycle (collector/tests/args.rs runs two at once in one workload, to
 * race the kernel's recording of the same values on two CPUs).
 *
 *   arg_cycle NR A0 BASE COUNT ROUNDS      (C literals, 0x... allowed) */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: %s NR A0 BASE COUNT ROUNDS\n", argv[0]);
        return 2;
    }
    long nr = strtol(argv[1], NULL, 0);
    unsigned long a0 = strtoull(argv[2], NULL, 0);
    unsigned long base = strtoull(argv[3], NULL, 0);
    long count = strtol(argv[4], NULL, 0), rounds = strtol(argv[5], NULL, 0);
    for (long r = 0; r < rounds; r++)
        for (long i = 0; i < count; i++)
            syscall(nr, a0, base + (unsigned long)i);
    return 0;
}
