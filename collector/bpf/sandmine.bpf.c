/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * sandmine's in-kernel syscall counter.
 *
 * On every syscall entry it finds the calling task's workload (cgroup v2 id
 * + mount-namespace id) and its slot; if the workload is tracked, it sets
 * the syscall's bit for the current phase and bumps its per-CPU count.
 * Nothing per syscall is sent to userspace: userspace reads the maps when
 * it wants a snapshot.
 *
 * Cost matters: this runs on every syscall of the host. The hot path is one
 * helper (bpf_get_current_task_btf), a handful of direct BTF loads, three
 * array lookups the verifier inlines (the CPU's last workload and slot,
 * the slot's shared state, its per-CPU counters) and one plain per-CPU
 * store; the hash lookup (workload -> slot) only when the CPU's last
 * workload was another. Shared words are written only the first time (a
 * phase bit, a dense index) or once every SM_SPILL calls. A call of one
 * of the few syscalls whose arguments are recorded (sm_arg_track, one
 * byte load for every call) also compares its masked argument(s) with the
 * workload's cells for that syscall (record_args).
 *
 * Nothing here allocates: every map is preallocated (see sandmine.h), so a
 * burst of new workloads is counted from its first call up to the
 * capacity, and beyond it the workloads that found no slot are named in
 * sm_lost with the calls they lost.
 */
#include "vmlinux_min.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "sandmine.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define SECCOMP_MODE_FILTER 2
#define SECCOMP_MODE_DEAD 3        /* kernel/seccomp.c: set by a seccomp kill */
#define MAX_ERRNO 4095
#define TS_COMPAT 0x0002           /* arch/x86/include/asm/thread_info.h */
#define X32_SYSCALL_BIT 0x40000000 /* arch/x86/include/uapi/asm/unistd.h */

/* The number of slots; the loader sets max_entries of every per-slot map
 * to its capacity (this is only the object's default). */
#define SM_DEFAULT_SLOTS 2048
/* Workloads over capacity that are named in sm_lost. */
#define SM_LOST_KEYS 1024

/* Set by the loader before load. */
const volatile __u64 host_mntns_id = 0; /* the init mount namespace's id */
const volatile __u32 auto_track = 0;    /* track every non-host mntns */
/* Argument tracks (see sandmine.h): 1 + the track of each (ABI, number),
 * 0 for none; and each track's arguments, masks and cells. */
const volatile __u8 sm_arg_track[SM_NR_ABIS][SM_NR_SLOTS] = {};
const volatile struct sm_arg_desc sm_arg_desc[SM_ARG_TRACKS] = {};

/* Workload -> its slot. Preallocated (no BPF_F_NO_PREALLOC). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SM_DEFAULT_SLOTS);
	__type(key, struct sm_key);
	__type(value, __u32);
} sm_slot SEC(".maps");

/* Free slots. Filled with every index by the loader before it attaches;
 * userspace pushes a slot back after it zeroed it. */
struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, SM_DEFAULT_SLOTS);
	__type(value, __u32);
} sm_free SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SM_DEFAULT_SLOTS);
	__type(key, __u32);
	__type(value, struct sm_work);
} sm_work SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SM_DEFAULT_SLOTS);
	__type(key, __u32);
	__type(value, struct sm_counts);
} sm_counts SEC(".maps");

/* Cgroup names of auto-tracked workloads (see struct sm_cgname), by slot. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SM_DEFAULT_SLOTS);
	__type(key, __u32);
	__type(value, struct sm_cgname);
} sm_cgname SEC(".maps");

/* Argument values of each workload (struct sm_args), by slot. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SM_DEFAULT_SLOTS);
	__type(key, __u32);
	__type(value, struct sm_args);
} sm_args SEC(".maps");

/* Workloads that found no free slot. Preallocated. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SM_LOST_KEYS);
	__type(key, struct sm_key);
	__type(value, struct sm_lost);
} sm_lost SEC(".maps");

/* Scratch space for one sm_lost (too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sm_lost);
} sm_lost_scratch SEC(".maps");

/* Per CPU, the last workload seen and its slot: consecutive calls on a
 * CPU are mostly the same task's, so this saves the hash lookup. An entry
 * is trusted only while the slot still holds that key (sm_work.key), so a
 * slot freed or reused since is never written through it. */
struct sm_last {
	struct sm_key key;
	__u32 idx;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct sm_last);
} sm_last SEC(".maps");

/* Denials per (workload, ABI, number, action): exact counts. Preallocated. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SM_DENIED_KEYS);
	__type(key, struct sm_deny_key);
	__type(value, __u64);
} sm_denied SEC(".maps");

/* Per task, whether it is inside a call that reached sys_enter (see
 * struct sm_inflight). Each byte is written only by its own task. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SM_TASK_CHUNKS);
	__type(key, __u32);
	__type(value, struct sm_inflight);
} sm_inflight SEC(".maps");

/* Diagnostics, indexed by SM_DIAG_*. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, SM_NR_DIAG);
	__type(key, __u32);
	__type(value, __u64);
} sm_diag SEC(".maps");

static __always_inline void diag(__u32 i)
{
	__u64 *d = bpf_map_lookup_elem(&sm_diag, &i);

	if (d)
		*d += 1;
}

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

/* Record the names of the workload's cgroup and of its parent into `n`.
 * Best effort: a failed read leaves an empty name. */
static __always_inline void record_cgname(struct sm_cgname *n, struct task_struct *t)
{
	struct cgroup *cg;
	int level;

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
}

/* A call of a workload that has no slot: count it against the workload in
 * sm_lost (named on its first lost call), and globally. */
static __always_inline void lose_call(struct sm_key *key, struct task_struct *t)
{
	struct sm_lost *l = bpf_map_lookup_elem(&sm_lost, key);
	__u32 zero = 0;

	diag(SM_DIAG_LOST_CALLS);
	if (!l) {
		struct sm_lost *s = bpf_map_lookup_elem(&sm_lost_scratch, &zero);

		if (!s)
			return;
		s->calls = 0;
		record_cgname(&s->name, t);
		bpf_map_update_elem(&sm_lost, key, s, BPF_NOEXIST);
		l = bpf_map_lookup_elem(&sm_lost, key);
		if (!l) {
			diag(SM_DIAG_UNNAMED_LOST);
			return;
		}
	}
	__sync_fetch_and_add(&l->calls, 1);
}

/* Give `key` a slot: pop a free one, fill in what userspace needs to
 * attribute it, then publish it in sm_slot. Returns the slot, or -1 when
 * the call is lost. */
static __noinline long start_tracking(struct sm_key *key, struct task_struct *t)
{
	struct sm_work *w;
	struct sm_cgname *n;
	struct cgroup *cg;
	__u32 idx, *won;
	int level;

	/* Once over capacity, a workload stays lost (and named) until
	 * userspace forgets it: no retry on every call. */
	if (bpf_map_lookup_elem(&sm_lost, key)) {
		lose_call(key, t);
		return -1;
	}
	if (bpf_map_pop_elem(&sm_free, &idx) != 0) {
		lose_call(key, t);
		return -1;
	}
	w = bpf_map_lookup_elem(&sm_work, &idx);
	n = bpf_map_lookup_elem(&sm_cgname, &idx);
	if (!w || !n)
		return -1; /* not reached: the loader queues only valid slots */
	/* Userspace zeroed the slot before it queued it. */
	w->key = *key;
	cg = t->cgroups->dfl_cgrp;
	level = BPF_CORE_READ(cg, level);
	if (level > 0 && level < 64)
		w->parent_cgroup_id = BPF_CORE_READ(cg, ancestors[level - 1], kn, id);
	w->created_ns = bpf_ktime_get_ns();
	w->mntns_inum = BPF_CORE_READ(t, nsproxy, mnt_ns, ns.inum);
	w->creator_tgid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(w->creator_comm, sizeof(w->creator_comm));
	record_cgname(n, t);
	if (bpf_map_update_elem(&sm_slot, key, &idx, BPF_NOEXIST) == 0)
		return idx;
	/* Another CPU gave this workload a slot first: zero ours again and
	 * give it back. */
	__builtin_memset(&w->key, 0, sizeof(w->key));
	w->parent_cgroup_id = 0;
	w->created_ns = 0;
	w->mntns_inum = 0;
	w->creator_tgid = 0;
	__builtin_memset(w->creator_comm, 0, sizeof(w->creator_comm));
	__builtin_memset(n, 0, sizeof(*n));
	bpf_map_push_elem(&sm_free, &idx, 0);
	diag(SM_DIAG_SLOT_RACES);
	won = bpf_map_lookup_elem(&sm_slot, key);
	if (!won) {
		lose_call(key, t);
		return -1;
	}
	return *won;
}

/* The dense index (1-based) of (abi, nr) in `w`, given out on first use;
 * 0 when the workload has used up SM_NR_DENSE. */
static __always_inline __u32 dense_index(struct sm_work *w, __u32 *d)
{
	__u32 next, old;

	if (w->nr_dense >= SM_NR_DENSE)
		return 0;
	next = __sync_fetch_and_add(&w->nr_dense, 1);
	if (next >= SM_NR_DENSE)
		return 0;
	old = __sync_val_compare_and_swap(d, 0, next + 1);
	return old ? old : next + 1;
}

/* The task's byte in sm_inflight, or NULL for a tid out of range. */
static __always_inline __u8 *inflight_of(struct task_struct *t)
{
	__u32 tid = t->pid, chunk = tid / SM_TASK_CHUNK;
	struct sm_inflight *f;

	if (chunk >= SM_TASK_CHUNKS)
		return 0;
	f = bpf_map_lookup_elem(&sm_inflight, &chunk);
	if (!f)
		return 0;
	return &f->state[tid % SM_TASK_CHUNK];
}

/* The ABI of the call in `t`'s registers, with the x32 bit cleared from
 * `nr`: exactly as sys_enter derives them. */
static __always_inline __u32 abi_of(struct task_struct *t, __u64 *nr)
{
	if (t->thread_info.status & TS_COMPAT)
		return SM_ABI_I386;
	if (*nr & X32_SYSCALL_BIT) {
		*nr &= ~(__u64)X32_SYSCALL_BIT;
		return SM_ABI_X32;
	}
	return SM_ABI_X86_64;
}

/* Argument `i` (0-2) of the call in `regs`, cut to 32 bits: the i386
 * ABI passes them in bx, cx, dx; x86_64 and x32 in di, si, dx. */
static __always_inline __u32 arg_of(struct pt_regs *regs, __u32 abi, __u8 i)
{
	if (abi == SM_ABI_I386) {
		if (i == 0)
			return regs->bx;
		if (i == 1)
			return regs->cx;
		return regs->dx;
	}
	if (i == 0)
		return regs->di;
	if (i == 1)
		return regs->si;
	return regs->dx;
}

/* Record the value of track `k`'s arguments in this call into the
 * workload's sm_args: nothing if it is there already, else into the first
 * free cell of its probe sequence, else it counts as an overflow. The
 * sequence visits every cell of the track's row once, starting at a hash
 * of the value (open addressing; the row's size is a power of two), so a
 * known value is found in a few compares even in a full row. Cells are
 * never cleared while the slot is held, so every cell before a value's
 * in its sequence stays taken: the value is found before any free cell
 * and is never recorded twice, even by two CPUs at once (the
 * compare-and-swap decides); and a value overflows only when the row is
 * full. */
static __always_inline void record_args(struct pt_regs *regs, __u32 idx, __u32 abi, __u32 k)
{
	struct sm_args *a;
	__u64 want, hi = 0;
	__u32 off, cap, start, i;
	__u8 a0, a1;

	if (k >= SM_ARG_TRACKS || abi >= SM_NR_ABIS)
		return;
	a = bpf_map_lookup_elem(&sm_args, &idx);
	if (!a)
		return;
	a0 = sm_arg_desc[k].arg[0];
	a1 = sm_arg_desc[k].arg[1];
	want = arg_of(regs, abi, a0) & sm_arg_desc[k].mask[0];
	if (a1 != SM_ARG_NONE) {
		hi = arg_of(regs, abi, a1) & sm_arg_desc[k].mask[1];
		if (hi & 0x80000000)
			goto overflow;
	}
	want |= SM_ARG_PRESENT | (hi << 32);
	off = sm_arg_desc[k].off;
	cap = sm_arg_desc[k].cap;
	/* Fibonacci hashing of both halves; the top bits are the best. */
	start = (__u32)(((want ^ (want >> 29)) * 0x9e3779b97f4a7c15ULL) >> 32);
	for (i = 0; i < SM_ARG_MAX_CAP; i++) {
		__u32 j = off + ((start + i) & (cap - 1));
		__u64 *c, old;

		if (i >= cap)
			break;
		/* Check the index the access uses (no pointer derived from
		 * `off` before the check: the verifier could not bound it). */
		barrier_var(j);
		if (j >= SM_ARG_CELLS)
			break;
		c = &a->cell[abi][j];
		old = *c;
		if (old == want)
			return;
		if (old == 0) {
			old = __sync_val_compare_and_swap(c, 0, want);
			if (old == 0 || old == want)
				return;
		}
	}
overflow:
	__sync_fetch_and_add(&a->overflow[abi][k], 1);
}

/* Count one denial of `t`'s call `raw_nr` against its workload, if the
 * workload is tracked. */
static __always_inline void count_denial(struct task_struct *t, __u64 raw_nr, __u8 kind, __u16 err)
{
	struct sm_deny_key dk = {};
	__u64 nr = raw_nr, one = 1, *n;
	__u32 abi;

	key_of(t, &dk.key);
	if (auto_track && dk.key.mntns_id == host_mntns_id)
		return;
	if (!bpf_map_lookup_elem(&sm_slot, &dk.key))
		return;
	abi = abi_of(t, &nr);
	if (nr >= SM_NR_SLOTS) {
		diag(SM_DIAG_DENIALS_UNNAMED);
		return;
	}
	dk.nr = nr;
	dk.abi = abi;
	dk.kind = kind;
	dk.err = err;
	n = bpf_map_lookup_elem(&sm_denied, &dk);
	if (n) {
		__sync_fetch_and_add(n, 1);
		return;
	}
	if (bpf_map_update_elem(&sm_denied, &dk, &one, BPF_NOEXIST) == 0)
		return;
	/* Another CPU added the key first, or the map is full. */
	n = bpf_map_lookup_elem(&sm_denied, &dk);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		diag(SM_DIAG_DENIALS_LOST);
}

SEC("tp_btf/sys_enter")
int BPF_PROG(sm_sys_enter, struct pt_regs *regs, long id)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct sm_key key;
	struct sm_last *last;
	struct sm_work *w;
	struct sm_counts *c;
	__u32 *slot, idx, abi, phase, d, n, zero = 0;
	__u64 nr, bit, *word;
	__u8 *in = inflight_of(t);

	/* The call passed every seccomp filter: sys_exit must not count it. */
	if (in)
		*in = 1;
	key_of(t, &key);
	/* Auto-track never counts the host's own processes. */
	if (auto_track && key.mntns_id == host_mntns_id)
		return 0;
	last = bpf_map_lookup_elem(&sm_last, &zero);
	if (!last)
		return 0;
	if (last->key.cgroup_id == key.cgroup_id && last->key.mntns_id == key.mntns_id) {
		idx = last->idx;
		w = bpf_map_lookup_elem(&sm_work, &idx);
		if (w && w->key.cgroup_id == key.cgroup_id && w->key.mntns_id == key.mntns_id)
			goto tracked;
	}
	slot = bpf_map_lookup_elem(&sm_slot, &key);
	if (slot) {
		idx = *slot;
	} else {
		long r;

		if (!auto_track)
			return 0;
		r = start_tracking(&key, t);
		if (r < 0)
			return 0;
		idx = r;
	}
	last->key = key;
	last->idx = idx;
	w = bpf_map_lookup_elem(&sm_work, &idx);
	if (!w)
		return 0;
tracked:
	c = bpf_map_lookup_elem(&sm_counts, &idx);
	if (!c)
		return 0;

	nr = (__u64)id;
	abi = abi_of(t, &nr);
	if (nr >= SM_NR_SLOTS) {
		__sync_fetch_and_add(&w->out_of_range, 1);
		return 0;
	}
	d = abi < SM_NR_ABIS ? sm_arg_track[abi][nr] : 0;
	if (d)
		record_args(regs, idx, abi, d - 1);
	phase = (w->post_exec ? 2 : 0) | (t->seccomp.mode == SECCOMP_MODE_FILTER ? 1 : 0);

	word = &w->bits[phase & 3][abi][nr >> 6];
	bit = 1ULL << (nr & 63);
	if (!(*word & bit))
		__sync_fetch_and_or(word, bit);

	d = w->dense[abi][nr];
	if (!d) {
		d = dense_index(w, &w->dense[abi][nr]);
		if (!d) {
			__sync_fetch_and_add(&w->lost_calls, 1);
			return 0;
		}
	}
	d -= 1;
	if (d >= SM_NR_DENSE)
		return 0;
	n = c->n[d] + 1;
	if (n >= SM_SPILL) {
		/* Add first, then reset: a reader that sees the same spill
		 * before and after reading the counters saw neither half. */
		__sync_fetch_and_add(&w->spill[d], n);
		c->n[d] = 0;
	} else {
		c->n[d] = n;
	}
	return 0;
}

/* The first successful exec inside a workload ends its start-up: from then
 * on its calls are the image's. de_thread() has already killed the other
 * threads, so no call of the old program can race with this. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(sm_sched_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct sm_key key;
	struct sm_work *w;
	__u32 *slot;

	key_of(t, &key);
	slot = bpf_map_lookup_elem(&sm_slot, &key);
	if (!slot)
		return 0;
	w = bpf_map_lookup_elem(&sm_work, slot);
	if (w && !w->post_exec)
		w->post_exec = 1;
	return 0;
}

/* A call that did not reach sys_enter was answered by a seccomp filter
 * (the kernel runs the filters before that tracepoint): with an errno
 * (SECCOMP_RET_ERRNO, or TRACE/USER_NOTIF answered with an error: the
 * return value is -errno) or with SIGSYS (SECCOMP_RET_TRAP: the registers
 * are rolled back, so the return value is the call's own number). A kill
 * also passes here when it takes the whole process (the task's seccomp
 * mode is then SECCOMP_MODE_DEAD); it is counted once, at exit. */
SEC("tp_btf/sys_exit")
int BPF_PROG(sm_sys_exit, struct pt_regs *regs, long ret)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u8 *in = inflight_of(t), was;
	__u64 nr;

	if (!in)
		return 0;
	was = *in;
	*in = 2;
	/* 1: the call reached sys_enter. 0: a task not seen before: a new
	 * thread's first return (from clone, which it never entered), or a
	 * call in flight since before the program attached. */
	if (was != 2)
		return 0;
	if (t->seccomp.mode != SECCOMP_MODE_FILTER)
		return 0;
	nr = regs->orig_ax;
	if (ret < 0 && ret >= -MAX_ERRNO)
		count_denial(t, nr, SM_DENY_ERRNO, -ret);
	else if (ret == (long)nr)
		count_denial(t, nr, SM_DENY_TRAP, 0);
	return 0;
}

/* A seccomp kill marks the calling task SECCOMP_MODE_DEAD and ends it
 * (KILL_THREAD of one thread among others: do_exit at once; otherwise
 * through a forced SIGSYS). Either way this task exits here, with the
 * call still in its user registers. The other threads of a killed
 * process are not marked, so each kill counts once. Also frees the
 * task's sm_inflight byte for the next task with its tid. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(sm_sched_exit, struct task_struct *p)
{
	struct task_struct *t = bpf_get_current_task_btf();
	__u8 *in = inflight_of(t);
	struct pt_regs *regs;

	if (in)
		*in = 0;
	if (t->seccomp.mode != SECCOMP_MODE_DEAD)
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(t);
	if (!regs)
		return 0;
	count_denial(t, regs->orig_ax, SM_DENY_KILL, 0);
	return 0;
}
