/* Three i386 getpid calls (eax = 20) through `int $0x80` from a 64-bit
 * process: the compat ABI. Exits 1 as soon as one returns <= 0 (e.g.
 * -EPERM under a filter that denies it). */
int main(void) {
    for (int i = 0; i < 3; i++) {
        int ret;
        __asm__ volatile ("int $0x80" : "=a"(ret) : "a"(20) : "memory");
        if (ret <= 0) return 1;
    }
    return 0;
}
