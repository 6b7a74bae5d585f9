/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * Layout shared by the BPF program (sandmine.bpf.c) and its loader
 * (collector/src/ebpf.rs, which mirrors these structs with #[repr(C)]).
 * Change both sides together; the loader checks the sizes at load time.
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

/* A workload: the cgroup v2 id plus the 64-bit mount-namespace id. Either
 * alone is ambiguous (on a cgroup v1 host every task has the root v2
 * cgroup; mount-namespace inode numbers are reused), together they are
 * unique for the life of the boot. */
struct sm_key {
	__u64 cgroup_id;
	__u64 mntns_id;
};

/* Per-CPU statistics of one workload. Only the owning CPU writes its copy,
 * so the hot path needs no atomics; userspace sums and ORs the copies. */
struct sm_stats {
	/* Set to 1 on every CPU's copy by the exec hook. */
	__u64 post_exec;
	/* Calls whose number had no slot. */
	__u64 out_of_range;
	__u64 bits[SM_NR_PHASES][SM_NR_ABIS][SM_NR_WORDS];
	__u64 counts[SM_NR_ABIS][SM_NR_SLOTS];
};

/* Facts about a workload, written once when its key is created in the
 * kernel (auto-track mode) so userspace can attribute it later, even if it
 * is gone by then. */
struct sm_info {
	__u64 parent_cgroup_id;
	__u64 created_ns;
	__u32 mntns_inum;
	__u32 creator_tgid;
	char creator_comm[16];
};

/* The cgroup a workload was created in, by name, written once with its
 * sm_info: the leaf (`docker-<id>.scope`, `<id>`, `cri-containerd-<id>.scope`)
 * and its parent (`kubepods-...-pod<uid>.slice`, `docker`). From the cgroup
 * v2 hierarchy when the task is below its root, else (a cgroup v1 host)
 * from the v1 `pids` hierarchy. Names are NUL-terminated, truncated to
 * SM_CGNAME_LEN - 1 bytes. Lets userspace attribute a container that was
 * gone before it looked. */
#define SM_CGNAME_LEN 128
struct sm_cgname {
	char leaf[SM_CGNAME_LEN];
	char parent[SM_CGNAME_LEN];
	/* 2 = from the v2 hierarchy, 1 = from v1 pids, 0 = none (root). */
	__u32 hierarchy;
	__u32 level;
};

#endif
