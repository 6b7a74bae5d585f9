/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/*
 * The few kernel types the program reads, declared with
 * preserve_access_index so that every field access is a CO-RE relocation
 * resolved against the running kernel's BTF at load time. Keeping this
 * minimal (instead of a full vmlinux.h dumped from the build host) makes
 * the object independent of the kernel it was built on.
 */
#ifndef SANDMINE_VMLINUX_MIN_H
#define SANDMINE_VMLINUX_MIN_H

typedef unsigned char __u8;
typedef short int __s16;
typedef short unsigned int __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long int __s64;
typedef long long unsigned int __u64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef int pid_t;

enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_PERCPU_HASH = 5,
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_QUEUE = 22,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
	BPF_F_NO_PREALLOC = 1,
};

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct pt_regs {
	long unsigned int bx;
	long unsigned int cx;
	long unsigned int dx;
	long unsigned int si;
	long unsigned int di;
	long unsigned int ax;
	long unsigned int orig_ax;
};

struct kernfs_node {
	__u64 id;
	const char *name;
};

struct cgroup {
	struct kernfs_node *kn;
	int level;
	struct cgroup *ancestors[];
};

struct cgroup_subsys_state {
	struct cgroup *cgroup;
};

/* Only the enumerator's name matters: its value is relocated (CO-RE). */
enum cgroup_subsys_id {
	pids_cgrp_id = 0,
};

struct css_set {
	struct cgroup *dfl_cgrp;
	struct cgroup_subsys_state *subsys[16];
};

/* Linux >= 6.18: every namespace has a 64-bit id that is never reused. */
struct ns_common___v618 {
	__u64 ns_id;
};

struct ns_common {
	unsigned int inum;
};

struct mnt_namespace {
	struct ns_common ns;
};

struct mnt_namespace___v618 {
	struct ns_common___v618 ns;
};

/* Linux < 6.18: the mount namespace's own 64-bit sequence number. */
struct mnt_namespace___seq {
	__u64 seq;
};

struct nsproxy {
	struct mnt_namespace *mnt_ns;
};

struct seccomp {
	int mode;
};

struct thread_info {
	__u32 status;
};

struct task_struct {
	struct thread_info thread_info;
	struct seccomp seccomp;
	struct css_set *cgroups;
	struct nsproxy *nsproxy;
	int pid;
	int tgid;
};

struct linux_binprm;

#pragma clang attribute pop

#endif
