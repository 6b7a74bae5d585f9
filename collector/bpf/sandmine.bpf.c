/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * sandmine's in-kernel syscall aggregator.
 *
 * On every syscall entry it finds the calling task's workload (cgroup v2 id
 * + mount-namespace id), and if that workload is tracked, sets the
 * syscall's bit for the current phase and bumps its per-CPU count. Nothing
 * per syscall is sent to userspace: userspace reads the per-CPU maps when
 * it wants a snapshot.
 *
 * Cost matters: this runs on every syscall of the host. The hot path is one
 * helper (bpf_get_current_task_btf), a handful of direct BTF loads, one
 * hash lookup and two plain (per-CPU, so non-atomic) stores.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "sandmine.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SECCOMP_MODE_FILTER 2
#define TS_COMPAT 0x0002           /* arch/x86/include/asm/thread_info.h */
#define X32_SYSCALL_BIT 0x40000000 /* arch/x86/include/uapi/asm/unistd.h */
#define SM_MAX_CPUS 512

/* Set by the loader before load. */
const volatile __u64 host_mntns_id = 0; /* the init mount namespace's id */
const volatile __u32 auto_track = 0;    /* track every non-host mntns */
const volatile __u32 nr_cpus = 1;       /* possible CPUs */

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sm_key);
	__type(value, struct sm_stats);
} sm_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sm_key);
	__type(value, struct sm_info);
} sm_info SEC(".maps");

/* Cgroup names of auto-tracked workloads (see struct sm_cgname). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct sm_key);
	__type(value, struct sm_cgname);
} sm_cgname SEC(".maps");

/* Scratch space for one sm_cgname (too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sm_cgname);
} sm_cgname_scratch SEC(".maps");

/* One all-zero sm_stats, the source for in-kernel inserts (too big for the
 * 512-byte BPF stack). Never written. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sm_stats);
} sm_zero SEC(".maps");

/* Diagnostics: [0] workloads that could not be inserted (map full). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} sm_diag SEC(".maps");

static __always_inline __u64 mntns_id_of(struct task_struct *t)
{
	struct mnt_namespace *mnt = t->nsproxy->mnt_ns;

	if (bpf_core_field_exists(struct ns_common___v618, ns_id))
		return ((struct mnt_namespace___v618 *)mnt)->ns.ns_id;
	return ((struct mnt_namespace___seq *)mnt)->seq;
}

static __always_inline void key_of(struct task_struct *t, struct sm_key *key)
{
	key->cgroup_id = t->cgroups->dfl_cgrp->kn->id;
	key->mntns_id = mntns_id_of(t);
}

/* Record the names of the workload's cgroup and of its parent. Best
 * effort: a failed read leaves an empty name. */
static __always_inline void record_cgname(struct sm_key *key, struct task_struct *t)
{
	__u32 zero = 0;
	struct sm_cgname *n = bpf_map_lookup_elem(&sm_cgname_scratch, &zero);
	struct cgroup *cg;
	int level;

	if (!n)
		return;
	n->leaf[0] = 0;
	n->parent[0] = 0;
	n->hierarchy = 0;
	cg = BPF_CORE_READ(t, cgroups, dfl_cgrp);
	level = BPF_CORE_READ(cg, level);
	if (level > 0) {
		n->hierarchy = 2;
	} else if (bpf_core_enum_value_exists(enum cgroup_subsys_id, pids_cgrp_id)) {
		int i = bpf_core_enum_value(enum cgroup_subsys_id, pids_cgrp_id);

		if (i >= 0 && i < 16) {
			struct cgroup_subsys_state *css = BPF_CORE_READ(t, cgroups, subsys[i]);

			if (css) {
				cg = BPF_CORE_READ(css, cgroup);
				level = BPF_CORE_READ(cg, level);
				if (level > 0)
					n->hierarchy = 1;
			}
		}
	}
	n->level = level;
	if (n->hierarchy) {
		bpf_probe_read_kernel_str(n->leaf, sizeof(n->leaf), BPF_CORE_READ(cg, kn, name));
		if (level > 1 && level < 64)
			bpf_probe_read_kernel_str(n->parent, sizeof(n->parent),
						  BPF_CORE_READ(cg, ancestors[level - 1], kn, name));
	}
	bpf_map_update_elem(&sm_cgname, key, n, BPF_NOEXIST);
}

static __noinline struct sm_stats *start_tracking(struct sm_key *key, struct task_struct *t)
{
	__u32 zero = 0;
	struct sm_stats *z = bpf_map_lookup_elem(&sm_zero, &zero);
	struct sm_info info = {};
	struct cgroup *cg;
	int level;

	if (!z)
		return 0;
	if (bpf_map_update_elem(&sm_stats, key, z, BPF_NOEXIST) != 0) {
		/* Another CPU may have won the race; otherwise the map is full. */
		struct sm_stats *s = bpf_map_lookup_elem(&sm_stats, key);
		if (!s) {
			__u64 *d = bpf_map_lookup_elem(&sm_diag, &zero);
			if (d)
				*d += 1;
		}
		return s;
	}
	cg = t->cgroups->dfl_cgrp;
	level = BPF_CORE_READ(cg, level);
	if (level > 0 && level < 64)
		info.parent_cgroup_id = BPF_CORE_READ(cg, ancestors[level - 1], kn, id);
	info.created_ns = bpf_ktime_get_ns();
	info.mntns_inum = BPF_CORE_READ(t, nsproxy, mnt_ns, ns.inum);
	info.creator_tgid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(info.creator_comm, sizeof(info.creator_comm));
	bpf_map_update_elem(&sm_info, key, &info, BPF_NOEXIST);
	record_cgname(key, t);
	return bpf_map_lookup_elem(&sm_stats, key);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sm_sys_enter, struct pt_regs *regs, long id)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct sm_key key;
	struct sm_stats *s;
	__u32 abi, phase;
	__u64 nr, bit, *w;

	key_of(t, &key);
	s = bpf_map_lookup_elem(&sm_stats, &key);
	if (!s) {
		if (!auto_track || key.mntns_id == host_mntns_id)
			return 0;
		s = start_tracking(&key, t);
		if (!s)
			return 0;
	}

	nr = (__u64)id;
	if (t->thread_info.status & TS_COMPAT) {
		abi = SM_ABI_I386;
	} else if (nr & X32_SYSCALL_BIT) {
		abi = SM_ABI_X32;
		nr &= ~(__u64)X32_SYSCALL_BIT;
	} else {
		abi = SM_ABI_X86_64;
	}
	if (nr >= SM_NR_SLOTS) {
		s->out_of_range++;
		return 0;
	}
	phase = (s->post_exec ? 2 : 0) | (t->seccomp.mode == SECCOMP_MODE_FILTER ? 1 : 0);

	w = &s->bits[phase & 3][abi][nr >> 6];
	bit = 1ULL << (nr & 63);
	if (!(*w & bit))
		*w |= bit;
	s->counts[abi][nr]++;
	return 0;
}

/* The first successful exec inside a workload ends its start-up: from then
 * on its calls are the image's. Mark every CPU's copy, since the next call
 * may run anywhere. de_thread() has already killed the other threads, so
 * no call of the old program can race with this. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(sm_sched_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct sm_key key;
	struct sm_stats *s;
	__u32 cpu;

	key_of(t, &key);
	s = bpf_map_lookup_elem(&sm_stats, &key);
	if (!s || s->post_exec)
		return 0;
	for (cpu = 0; cpu < SM_MAX_CPUS; cpu++) {
		if (cpu >= nr_cpus)
			break;
		s = bpf_map_lookup_percpu_elem(&sm_stats, &key, cpu);
		if (s)
			s->post_exec = 1;
	}
	return 0;
}
