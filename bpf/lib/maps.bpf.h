/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The maps of the data plane. Every map but sock_cache is pinned by the
 * loader and shared with userspace (layouts in authwall_abi.h); sock_cache
 * is the programs' own per-socket memory (lib/sock_cache.bpf.h).
 */
#ifndef AUTHWALL_LIB_MAPS_BPF_H
#define AUTHWALL_LIB_MAPS_BPF_H

#include "authwall_abi.h"

/* Sessions and their counters are not preallocated: an open slot costs
 * nothing, an open session its two elements whatever the CPU count (the
 * counters are one shared value, added to atomically, not one per CPU). */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, __u64);
    __type(value, struct aw_session);
} sessions SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, __u64);
    __type(value, struct aw_stats);
} session_stats SEC(".maps");

/* Counters of ended sessions by policy id (see authwall_abi.h); the
 * programs never touch it. Mmapable: concurrent folds add to it atomically
 * through shared memory. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, AW_POLICY_TOTALS_MAX);
    __uint(map_flags, BPF_F_MMAPABLE);
    __type(key, __u32);
    __type(value, struct aw_policy_totals);
} policy_totals SEC(".maps");

/* Refusals by hook and reason, one set per CPU (see authwall_abi.h). */
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct aw_refusals);
} refusals SEC(".maps");

/* The levels that hold sessions, one bit each (see authwall_abi.h). */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __uint(map_flags, BPF_F_MMAPABLE);
    __type(key, __u32);
    __type(value, __u64);
} session_levels SEC(".maps");

/* The user layer: a confined user's policy by uid (see authwall_abi.h). Not
 * preallocated: a slot costs memory only while a user is confined. */
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 65536);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, __u32);
    __type(value, struct aw_user);
} users SEC(".maps");

struct policy_trie {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 1);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    /* Sizes, not __type(): clang 14 emits the key and value structs of an
     * inner map only as forward declarations, which libbpf cannot size. */
    __uint(key_size, sizeof(struct aw_rule_key));
    __uint(value_size, sizeof(struct aw_rule_val));
};

/* The active policy generation: slot 0 holds the trie in force. Userspace
 * swaps it in one update; the kernel waits for running programs before the
 * update returns, so the old trie can then be dropped safely. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 1);
    __type(key, __u32);
    __array(values, struct policy_trie);
} policy_gen SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 4096);
    __type(key, __u32);
    __type(value, struct aw_policy_name);
} policy_names SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct aw_event_budget);
} event_budget SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct aw_settings);
} settings SEC(".maps");

/* The generation: a random non-zero value userspace rewrites after every
 * change a cached decision depends on (sessions, users, policies, settings).
 * A socket's cached verdict is good only while it was taken at the current
 * generation. */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, __u64);
} generation SEC(".maps");

static __always_inline __u64 current_generation(void)
{
    __u32 zero = 0;
    __u64* g = bpf_map_lookup_elem(&generation, &zero);
    return g ? *g : 0;
}

static __always_inline struct aw_settings* current_settings(void)
{
    __u32 zero = 0;
    return bpf_map_lookup_elem(&settings, &zero);
}

#endif /* AUTHWALL_LIB_MAPS_BPF_H */
