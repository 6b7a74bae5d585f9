/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Layout shared by the BPF program (sandmine.bpf.c) and its loader
 * (collector/src/ebpf.rs, which mirrors these structs with #[repr(C)]).
 * Change both sides together; the loader checks the sizes at load time.
 *
 * Every map is preallocated: the program never allocates memory, so a
 * burst of new workloads cannot fail an allocation. A workload gets a slot
 * (an index into the arrays below) from a queue of free slots the first
 * time it makes a syscall; userspace returns the slot when it forgets the
 * workload. See docs/ARCHITECTURE.md ("collector") for the memory bound.
 */
#ifndef SANDMINE_H
#define SANDMINE_H

/* ABIs, in the order of schemas::Abi's capture index. */
#define SM_ABI_X86_64 0
#define SM_ABI_I386 1
#define SM_ABI_X32 2
#define SM_NR_ABIS 3

/* Syscall numbers per ABI that get a slot. x32 reaches 547; the highest
 * x86_64 and i386 numbers in Linux 6.18 are below 470. */
#define SM_NR_SLOTS 576
#define SM_NR_WORDS (SM_NR_SLOTS / 64)

/* Phases: bit 1 = the workload had exec'd its first program,
 * bit 0 = the calling task had a seccomp filter. See schemas::Phase. */
#define SM_NR_PHASES 4

/* Distinct (ABI, number) pairs one workload can count: each gets a dense
 * index, in the order the workload first makes them. Calls of a pair
 * beyond this still set their phase bit but are not counted: they go to
 * sm_work.lost_calls and the workload is incomplete. */
#define SM_NR_DENSE 256

/* A per-CPU u16 counter that reaches this value is moved, whole, into the
 * workload's shared u64 sm_work.spill[] (atomic add first, then the reset),
 * so counts are exact at any rate with 2 bytes per counter and CPU. */
#define SM_SPILL 0x8000

/* A workload: the cgroup v2 id plus the 64-bit mount-namespace id. Either
 * alone is ambiguous (on a cgroup v1 host every task has the root v2
 * cgroup; mount-namespace inode numbers are reused), together they are
 * unique for the life of the boot. */
struct sm_key {
	__u64 cgroup_id;
	__u64 mntns_id;
};

/* One workload's shared state, in its slot of sm_work. Written by every
 * CPU: bits are set with an atomic OR (only when not yet set), the rest
 * once or with atomic adds. */
struct sm_work {
	/* The workload holding the slot; all zero while the slot is free. */
	struct sm_key key;
	/* Facts recorded when the slot was taken (auto-track mode), so
	 * userspace can attribute the workload even if it is gone by then. */
	__u64 parent_cgroup_id;
	__u64 created_ns;
	__u32 mntns_inum;
	__u32 creator_tgid;
	char creator_comm[16];
	/* Set to 1 by the exec hook: the workload exec'd its first program. */
	__u32 post_exec;
	/* Dense indices handed out (a race between CPUs may waste one). */
	__u32 nr_dense;
	/* Calls not counted: their (ABI, number) got no dense index. */
	__u64 lost_calls;
	/* Calls whose number had no slot. */
	__u64 out_of_range;
	__u64 bits[SM_NR_PHASES][SM_NR_ABIS][SM_NR_WORDS];
	/* 1 + the dense index of each (ABI, number); 0: none yet. */
	__u32 dense[SM_NR_ABIS][SM_NR_SLOTS];
	/* Per dense index: the calls spilled from the per-CPU counters. */
	__u64 spill[SM_NR_DENSE];
};

/* One workload's per-CPU counters, in its slot of sm_counts. Only the
 * owning CPU writes its copy, so the hot path needs no atomics. The count
 * of dense index i is spill[i] plus the sum of n[i] over CPUs. */
struct sm_counts {
	__u16 n[SM_NR_DENSE];
};

/* The cgroup a workload was created in, by name, written once when its
 * slot is taken: the leaf (`docker-<id>.scope`, `<id>`,
 * `cri-containerd-<id>.scope`) and its parent (`kubepods-...-pod<uid>.slice`,
 * `docker`). From the cgroup v2 hierarchy when the task is below its root,
 * else (a cgroup v1 host) from the v1 `pids` hierarchy. Names are
 * NUL-terminated, truncated to SM_CGNAME_LEN - 1 bytes. Lets userspace
 * attribute a container that was gone before it looked. */
#define SM_CGNAME_LEN 128
struct sm_cgname {
	char leaf[SM_CGNAME_LEN];
	char parent[SM_CGNAME_LEN];
	/* 2 = from the v2 hierarchy, 1 = from v1 pids, 0 = none (root). */
	__u32 hierarchy;
	__u32 level;
};

/* A workload that found no free slot (over capacity): how many of its
 * calls were lost, and its cgroup's names, so userspace can say which
 * container is incomplete. */
struct sm_lost {
	__u64 calls;
	struct sm_cgname name;
};

/* Indices of sm_diag (per-CPU u64, summed by userspace). */
#define SM_DIAG_LOST_CALLS 0    /* calls of workloads with no slot */
#define SM_DIAG_UNNAMED_LOST 1  /* of which: sm_lost was full too */
#define SM_DIAG_SLOT_RACES 2    /* slots given back after losing a race */
#define SM_DIAG_DENIALS_LOST 3  /* denials not counted: sm_denied was full */
#define SM_DIAG_DENIALS_UNNAMED 4 /* denials of a number >= SM_NR_SLOTS */
#define SM_NR_DIAG 8

/* Denials: calls a seccomp filter answered instead of the kernel. Such a
 * call never reaches sys_enter; sys_exit sees it (errno, trap, and a kill
 * of the last thread), and sched_process_exit sees every kill. */
#define SM_DENY_ERRNO 1 /* SECCOMP_RET_ERRNO (and TRACE/USER_NOTIF answered with an error) */
#define SM_DENY_TRAP 2  /* SECCOMP_RET_TRAP: SIGSYS delivered, the call skipped */
#define SM_DENY_KILL 3  /* SECCOMP_RET_KILL_THREAD / KILL_PROCESS */

/* Distinct (workload, ABI, number, action) counted at once. Beyond it a
 * denial is counted only in sm_diag[SM_DIAG_DENIALS_LOST]. */
#define SM_DENIED_KEYS 4096

struct sm_deny_key {
	struct sm_key key;
	__u32 nr;
	/* The errno (SM_DENY_ERRNO), else 0. */
	__u16 err;
	__u8 abi;
	__u8 kind;
};

/* Per task (indexed by its global tid), one byte: 0 = not seen since the
 * program attached or since the tid was last freed, 1 = inside a syscall
 * that reached sys_enter, 2 = seen, not inside such a syscall. Tids are
 * below PID_MAX_LIMIT (4,194,304 on 64-bit), so 65,536 chunks of 64
 * bytes (4 MiB) cover every task. */
#define SM_TASK_CHUNK 64
#define SM_TASK_CHUNKS 65536
struct sm_inflight {
	__u8 state[SM_TASK_CHUNK];
};

/* Argument values (issue 11). For a few syscalls (the tracks; the list,
 * its numbers per ABI and the reasons are in collector/src/ebpf/args.rs,
 * which writes sm_arg_track and sm_arg_desc before load), each workload
 * records the distinct values of one or two chosen arguments, masked and
 * cut to their low 32 bits. A track of one ABI has `cap` cells (a power
 * of two) in sm_args.cell[abi], filled by open addressing (see
 * record_args); a cell is 0 while free, else SM_ARG_PRESENT | the
 * second argument's value << 32 | the first's. A value that finds no free
 * cell (or a second value with bit 31 set, which a cell cannot hold) is
 * not recorded: it counts in overflow[abi][track] instead, so a set is
 * either complete or known to be incomplete. */
#define SM_ARG_TRACKS 13
#define SM_ARG_CELLS 164
#define SM_ARG_MAX_CAP 32
#define SM_ARG_NONE 0xff
#define SM_ARG_PRESENT (1ULL << 63)

struct sm_arg_desc {
	/* Mask applied to each argument (after the cut to 32 bits). */
	__u32 mask[2];
	/* Argument index (0-2) of each; SM_ARG_NONE: the track has one. */
	__u8 arg[2];
	/* Cells of the track in each ABI's row, from `off`. */
	__u8 cap;
	__u8 pad;
	__u16 off;
	__u16 pad2;
};

/* One workload's argument values, in its slot of sm_args. Written by
 * every CPU: a cell only once (compare-and-swap from 0), overflows with
 * atomic adds. */
struct sm_args {
	__u64 cell[SM_NR_ABIS][SM_ARG_CELLS];
	__u64 overflow[SM_NR_ABIS][SM_ARG_TRACKS];
};

#endif
