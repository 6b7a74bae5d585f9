/* getppid() N times (argv[1]), then exit; or syscall number argv[2]
 * instead of getppid. Neither getppid nor getpgrp is made by libc's
 * start-up or by runc, so the count is exactly N. */
#include <stdlib.h>
#include <unistd.h>
#include <sys/syscall.h>
int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000;
    long nr = argc > 2 ? atol(argv[2]) : SYS_getppid;
    for (long i = 0; i < n; i++) syscall(nr);
    return 0;
}
