/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* The floor: an empty program on the same hook as sandmine's. */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tp_btf/sys_enter")
int BPF_PROG(sm_empty, struct pt_regs *regs, long id)
{
	return 0;
}
