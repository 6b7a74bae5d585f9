// empty.bpf.c - the cheapest possible sys_enter programs: the "floor".
//
// Two programs, one per attach type; the loader loads and attaches only the
// one it is asked for. Names are prefixed cc_ so run.sh can check that none
// is left loaded after a run.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tp_btf/sys_enter")
int cc_empty_btf(void *ctx)
{
	return 0;
}

/* The floor of the denial counter's hook (benchmarks/README.md, "The
 * denial path"). */
SEC("tp_btf/sys_exit")
int cc_empty_btf_exit(void *ctx)
{
	return 0;
}

SEC("raw_tracepoint/sys_enter")
int cc_empty_raw(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
