/* Raw syscalls with chosen arguments, one per forked child, for comparing
 * seccomp verdicts between consumers (tests/docker_reference.rs):
 *
 *   argprobe SPEC...     SPEC = ABI:NR[:A0[:A1...]]
 *
 * ABI is x86_64 (`syscall`, up to six 64-bit arguments), int80 (the i386
 * ABI through `int $0x80` from this 64-bit process, up to three arguments,
 * passed in full 64-bit registers: the kernel zero-extends them into
 * seccomp_data) or x32 (x86_64 with NR | 0x40000000). Numbers are C
 * literals (0x... or decimal, up to 64 bits).
 *
 * Prints one line per SPEC: "SPEC=ok" for a return value >= 0, "SPEC=E<n>"
 * for -n, "SPEC=kill:<sig>" when the child died of a signal. A child whose
 * call created a process (clone/fork returning 0) exits at once. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static long call(const char *abi, long nr, unsigned long a[6]) {
    long ret;
    if (strcmp(abi, "int80") == 0) {
        __asm__ volatile("int $0x80"
                         : "=a"(ret)
                         : "a"(nr), "b"(a[0]), "c"(a[1]), "d"(a[2])
                         : "memory");
        /* The i386 ABI returns a 32-bit value. */
        return (long)(int)ret;
    }
    if (strcmp(abi, "x32") == 0)
        nr |= 0x40000000L;
    register unsigned long r10 __asm__("r10") = a[3];
    register unsigned long r8 __asm__("r8") = a[4];
    register unsigned long r9 __asm__("r9") = a[5];
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a[0]), "S"(a[1]), "d"(a[2]), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        char spec[512];
        snprintf(spec, sizeof spec, "%s", argv[i]);
        char *save = NULL;
        char *abi = strtok_r(spec, ":", &save);
        char *nrs = strtok_r(NULL, ":", &save);
        if (abi == NULL || nrs == NULL) {
            fprintf(stderr, "bad spec %s\n", argv[i]);
            return 2;
        }
        long nr = strtol(nrs, NULL, 0);
        unsigned long a[6] = {0, 0, 0, 0, 0, 0};
        for (int k = 0; k < 6; k++) {
            char *t = strtok_r(NULL, ":", &save);
            if (t == NULL)
                break;
            a[k] = strtoull(t, NULL, 0);
        }
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            pid_t self = getpid();
            long ret = call(abi, nr, a);
            if (ret == 0 && getpid() != self)
                _exit(0); /* the new process of a clone/fork */
            char line[600];
            int n = ret >= 0 ? snprintf(line, sizeof line, "%s=ok\n", argv[i])
                             : snprintf(line, sizeof line, "%s=E%ld\n", argv[i], -ret);
            if (write(1, line, n) != n)
                _exit(3);
            _exit(0);
        }
        int status;
        while (waitpid(pid, &status, 0) < 0) {
            if (errno != EINTR) {
                perror("waitpid");
                return 2;
            }
        }
        if (WIFSIGNALED(status)) {
            printf("%s=kill:%d\n", argv[i], WTERMSIG(status));
        } else if (WEXITSTATUS(status) != 0) {
            printf("%s=exit:%d\n", argv[i], WEXITSTATUS(status));
        }
    }
    return 0;
}
