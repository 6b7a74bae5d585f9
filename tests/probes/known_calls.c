/* The fleet tests' ground truth: makes exactly COUNT calls of syscall NR
 * for each NR:COUNT argument, then exits. Static, so the only other calls
 * are the C runtime's start-up and exit_group. Pick numbers that neither
 * libc's start-up nor runc (see the runtime base) make: getpgrp (111),
 * times (100), sysinfo (99), umask (95) on x86_64. */
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        char *colon = strchr(argv[i], ':');
        if (!colon) return 2;
        long nr = atol(argv[i]);
        long n = atol(colon + 1);
        for (long k = 0; k < n; k++) {
            if (nr == 99) {
                char buf[256];
                syscall(nr, buf);
            } else if (nr == 100) {
                char buf[64];
                syscall(nr, buf);
            } else {
                syscall(nr, 022);
            }
        }
    }
    return 0;
}
