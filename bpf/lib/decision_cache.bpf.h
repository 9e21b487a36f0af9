/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the syscall hooks (connect, sendmsg, bind) found for a process, so
 * that the next question of the same process costs one slot lookup: a
 * process outside authwall gets its verdict without the cgroup walk and the
 * user lookup, and a confined one passes to a destination it was allowed a
 * moment ago without them and without the meta entry and the LPM
 * probes per layer.
 *
 * A slot belongs to a subject key: the generation, the task's own cgroup and
 * its real uid. Within one generation these decide the answer: a cgroup's
 * ancestors never change (and its id is never reused), so the cgroup names
 * its session; the uid names its user layer; every write userspace makes to
 * sessions (flags and revocation included), users, settings and policies
 * moves the generation on after the write. The generation is read before
 * anything else, so a slot is either filled after a change or tagged with a
 * generation that is already gone: revocations and reloads apply to the next
 * connect() at once. The slot holds the outside verdict, or the last few
 * flows the confined subject was allowed (round robin). Only allows are
 * remembered for a subject; a refusal always takes the full path, which
 * counts it and reports it; a revoked layer is refused by judge() and so
 * never remembered.
 *
 * A direct-mapped table: the subject key's hash picks one slot, and another
 * subject takes the slot over. Unlike an LRU hash, whose insert costs more
 * than the lookups it saves, a miss costs one locked copy. A slot is read and
 * written under its spin lock and its whole key is compared, so a colliding
 * subject can only evict another, never take its answer. The generation
 * (random) is in the hash: slots move at every change. The programs' own
 * map, not pinned: a new object starts it empty.
 */
#ifndef AUTHWALL_LIB_DECISION_CACHE_BPF_H
#define AUTHWALL_LIB_DECISION_CACHE_BPF_H

#include "lib/decision.bpf.h"

struct subject_key {
    __u64 generation; /* 0: nothing is remembered */
    __u64 cgroup_id;  /* the task's own cgroup */
    __u32 uid;        /* the task's real uid */
    __u32 reserved;
};

struct remembered_flow {
    __u8 dir; /* enum aw_dir; 0: empty */
    __u8 proto;
    __u16 port;
    __u32 reserved;
    __u8 addr[16];
};

#define REMEMBERED_FLOWS 4

/* What a slot says about a subject key. */
#define REMEMBERED_NONE 0
#define REMEMBERED_PASS 1    /* outside authwall, the unknown-cgroup verdict: pass */
#define REMEMBERED_REFUSE 2  /* outside authwall, the unknown-cgroup verdict: refuse */
#define REMEMBERED_ALLOWED 3 /* confined, and this flow was allowed */

struct decision_slot {
    struct bpf_spin_lock lock;
    __u32 kind; /* REMEMBERED_PASS, _REFUSE, or _ALLOWED for a confined subject */
    struct subject_key key;
    __u32 next; /* the flow to overwrite next */
    __u32 reserved;
    struct remembered_flow flows[REMEMBERED_FLOWS];
};

#define DECISION_SLOTS 4096 /* a power of two */

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, DECISION_SLOTS);
    __type(key, __u32);
    __type(value, struct decision_slot);
} decisions SEC(".maps");

static __always_inline struct decision_slot* decision_slot_of(const struct subject_key* k)
{
    __u64 h = (k->generation ^ k->cgroup_id) * 0x9E3779B97F4A7C15ULL;
    h = (h ^ k->uid) * 0xC2B2AE3D27D4EB4FULL;
    __u32 index = (__u32)(h >> 32) & (DECISION_SLOTS - 1);
    return bpf_map_lookup_elem(&decisions, &index);
}

static __always_inline int same_subject_key(const struct subject_key* a, const struct subject_key* b)
{
    const __u64 *x = (const __u64*)a, *y = (const __u64*)b;
    return x[0] == y[0] && x[1] == y[1] && x[2] == y[2];
}

static __always_inline int same_flow_of(const struct remembered_flow* a, const struct remembered_flow* b)
{
    const __u64 *x = (const __u64*)a, *y = (const __u64*)b;
    return x[0] == y[0] && x[1] == y[1] && x[2] == y[2];
}

/* What the slot remembers of subject `k` and flow `f` (REMEMBERED_*). */
static __always_inline __u32 remembered(struct decision_slot* slot, const struct subject_key* k,
                                        const struct remembered_flow* f)
{
    if (!slot || !k->generation)
        return REMEMBERED_NONE;
    __u32 found = REMEMBERED_NONE;
    bpf_spin_lock(&slot->lock);
    if (same_subject_key(&slot->key, k)) {
        if (slot->kind != REMEMBERED_ALLOWED) {
            found = slot->kind;
        } else {
#pragma unroll
            for (int i = 0; i < REMEMBERED_FLOWS; i++)
                if (same_flow_of(&slot->flows[i], f))
                    found = REMEMBERED_ALLOWED;
        }
    }
    bpf_spin_unlock(&slot->lock);
    return found;
}

/* Makes the slot subject `k`'s, forgetting what it held. Under the lock. */
static __always_inline void take_slot(struct decision_slot* slot, const struct subject_key* k, __u32 kind)
{
    slot->key = *k;
    slot->kind = kind;
    slot->next = 0;
#pragma unroll
    for (int i = 0; i < REMEMBERED_FLOWS; i++)
        slot->flows[i].dir = 0;
}

/* Remembers that subject `k` is outside authwall, with this verdict. */
static __always_inline void remember_outside_task(struct decision_slot* slot, const struct subject_key* k, int verdict)
{
    if (!slot || !k->generation)
        return;
    bpf_spin_lock(&slot->lock);
    take_slot(slot, k, verdict == PASS ? REMEMBERED_PASS : REMEMBERED_REFUSE);
    bpf_spin_unlock(&slot->lock);
}

/* Remembers that confined subject `k` was allowed flow `f`. */
static __always_inline void remember_allowed_flow(struct decision_slot* slot, const struct subject_key* k,
                                                  const struct remembered_flow* f)
{
    if (!slot || !k->generation || !f->dir)
        return;
    bpf_spin_lock(&slot->lock);
    if (!same_subject_key(&slot->key, k) || slot->kind != REMEMBERED_ALLOWED)
        take_slot(slot, k, REMEMBERED_ALLOWED);
    __u32 i = slot->next & (REMEMBERED_FLOWS - 1);
    slot->flows[i] = *f;
    slot->next = i + 1;
    bpf_spin_unlock(&slot->lock);
}

#endif /* AUTHWALL_LIB_DECISION_CACHE_BPF_H */
