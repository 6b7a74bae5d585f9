/* One raw syscall of a chosen ABI from a 64-bit process, for telling a
 * seccomp kill, a seccomp errno and the kernel's own answer apart:
 *
 *   abi_call int80 NR [A1]   i386 call NR through `int $0x80` (compat ABI)
 *   abi_call x32 NR [A1]     x86_64 `syscall` with NR | 0x40000000 (x32)
 *   abi_call x86_64 NR [A1]  a plain x86_64 `syscall`
 *
 * Prints "ret=N" (the raw return value: -errno on failure) and exits 0.
 * A call the filter kills prints nothing: the process dies of SIGSYS
 * before printf runs. On a kernel without CONFIG_X86_X32_ABI, seccomp still
 * judges an x32 number first; a call it lets through gets -ENOSYS (-38). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: abi_call int80|x32|x86_64 NR [A1]\n");
        return 2;
    }
    long nr = strtol(argv[2], NULL, 0);
    long a1 = argc > 3 ? strtol(argv[3], NULL, 0) : 0;
    long ret;
    if (strcmp(argv[1], "int80") == 0) {
        int r;
        __asm__ volatile ("int $0x80" : "=a"(r) : "a"((int)nr), "b"((int)a1) : "memory");
        ret = r;
    } else if (strcmp(argv[1], "x32") == 0 || strcmp(argv[1], "x86_64") == 0) {
        if (argv[1][1] == '3')
            nr |= 0x40000000L;
        __asm__ volatile ("syscall" : "=a"(ret) : "a"(nr), "D"(a1) : "rcx", "r11", "memory");
    } else {
        fprintf(stderr, "unknown ABI %s\n", argv[1]);
        return 2;
    }
    printf("ret=%ld\n", ret);
    return 0;
}
