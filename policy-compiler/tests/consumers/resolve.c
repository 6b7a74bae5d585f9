/*
 * Prints how the installed libseccomp (the one runc links) resolves each
 * x86_64 syscall name: "NAME NR", NR -1 when it does not know the name
 * (negative pseudo-numbers, for names x86_64 lacks, are printed as -1 too).
 * For tests/consumers.rs: runc ignores names its libseccomp cannot resolve
 * and answers ENOSYS above the largest number it resolved in the profile.
 *
 * Build: cc resolve.c -lseccomp
 */
#include <seccomp.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        int nr = seccomp_syscall_resolve_name_arch(SCMP_ARCH_X86_64, argv[i]);
        printf("%s %d\n", argv[i], nr < 0 ? -1 : nr);
    }
    return 0;
}
