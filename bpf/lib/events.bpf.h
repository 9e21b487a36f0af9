/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Flows, decisions and what a reported decision leaves behind: a counter
 * and, within the per-CPU rate limit, an event in the ring buffer.
 */
#ifndef AUTHWALL_LIB_EVENTS_BPF_H
#define AUTHWALL_LIB_EVENTS_BPF_H

#include "lib/subject.bpf.h"

#define AF_INET 2
#define AF_INET6 10
#define NSEC_PER_SEC 1000000000ULL

/* One side of a flow, as the rules see it. */
struct flow {
    __u8 addr[16]; /* v6 or v4-mapped */
    __u16 port;    /* network byte order */
    __u8 proto;
    __u8 family;
};

static __always_inline void set_v4(struct flow* f, __u32 addr_be)
{
    __builtin_memset(f->addr, 0, 10);
    f->addr[10] = 0xff;
    f->addr[11] = 0xff;
    __builtin_memcpy(&f->addr[12], &addr_be, 4);
    f->family = AF_INET;
}

static __always_inline void set_v6_words(struct flow* f, const __u32* w)
{
    __u32 tmp[4];
    tmp[0] = w[0];
    tmp[1] = w[1];
    tmp[2] = w[2];
    tmp[3] = w[3];
    __builtin_memcpy(f->addr, tmp, 16);
    f->family = AF_INET6;
}

/* A layer's (or both layers') answer. `verdict` is what the hook does; an
 * allow may still have to be reported (`note`): a would-be refusal passed in
 * audit mode, or a match of a rule with log = true. */
struct decision {
    __u32 verdict; /* AW_VERDICT_ALLOW / AW_VERDICT_DENY */
    __u32 reason;  /* enum aw_reason when refused, or would have been (audit) */
    __u32 policy_id;
    __u32 layer; /* enum aw_layer that decided */
    __u32 rule;  /* the deciding rule's number in its policy; 0: a default */
    __u32 note;  /* allows only: AW_EVENT_AUDIT or AW_EVENT_LOG to report it, else 0 */
};

/* What the event of a decision says (enum aw_event_verdict). */
static __always_inline __u32 event_verdict(const struct decision* d)
{
    return d->verdict == AW_VERDICT_ALLOW ? d->note : AW_EVENT_DENY;
}

/* The counters a reported decision moves: a refusal counts per hook in the
 * session and in the user layer that refused, and by hook and reason for
 * the host; an audited would-be refusal counts as audited; a logged allow
 * counts nothing. */
static __always_inline void count_report(const struct subject* s, const struct decision* d, __u32 hook, __u32 verdict)
{
    if (verdict == AW_EVENT_LOG)
        return;
    __u32 zero = 0, reason = d->reason;
    struct aw_refusals* why = bpf_map_lookup_elem(&refusals, &zero);
    if (why && hook < AW_HOOK_COUNT && reason < AW_REASON_COUNT) {
        if (verdict == AW_EVENT_AUDIT)
            why->audited[hook][reason]++;
        else
            why->denied[hook][reason]++;
    }
    if (s->session) {
        struct aw_stats* st = bpf_map_lookup_elem(&session_stats, &s->session_id);
        if (st && verdict == AW_EVENT_AUDIT)
            __sync_fetch_and_add(&st->audited, 1);
        else if (st && hook < AW_HOOK_COUNT)
            __sync_fetch_and_add(&st->denied[hook], 1);
    }
    if (d->layer == AW_LAYER_USER && s->user) {
        if (verdict == AW_EVENT_AUDIT)
            __sync_fetch_and_add(&s->user->audited, 1);
        else
            __sync_fetch_and_add(&s->user->denied, 1);
    }
}

/* Whether the per-CPU rate limit lets one more event out. */
static __always_inline int event_budget_allows(__u64 now)
{
    __u32 zero = 0;
    struct aw_settings* cfg = current_settings();
    struct aw_event_budget* budget = bpf_map_lookup_elem(&event_budget, &zero);
    if (!cfg || !budget || cfg->events_per_sec == 0)
        return 0;
    if (now - budget->window_start_ns >= NSEC_PER_SEC) {
        budget->window_start_ns = now;
        budget->emitted = 0;
    }
    if (budget->emitted >= cfg->events_per_sec) {
        budget->suppressed++;
        return 0;
    }
    budget->emitted++;
    return 1;
}

/* Counts a refusal, an audited would-be refusal or a logged match and,
 * within the rate limit, reports it in the ring buffer. `pid` is 0 in the
 * packet hooks, which run outside the sender's context (no task name). */
static __always_inline void report(const struct subject* s, const struct decision* d, __u32 hook, const struct flow* f,
                                   __u32 pid)
{
    __u32 verdict = event_verdict(d);
    count_report(s, d, hook, verdict);

    __u64 now = bpf_ktime_get_ns();
    if (!event_budget_allows(now))
        return;
    struct aw_event* e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        __u32 zero = 0;
        struct aw_event_budget* budget = bpf_map_lookup_elem(&event_budget, &zero);
        if (budget)
            budget->suppressed++;
        return;
    }
    e->timestamp_ns = now;
    e->session_id = s->session_id;
    e->cgroup_id = s->session ? s->cgroup_id : 0;
    e->pid = pid;
    e->policy_id = d->policy_id;
    e->hook = hook;
    e->reason = d->reason;
    e->proto = f->proto;
    e->family = f->family;
    e->port = bpf_ntohs(f->port);
    e->layer = d->layer;
    e->verdict = verdict;
    __builtin_memcpy(e->addr, f->addr, sizeof(e->addr));
    e->uid = s->uid;
    e->rule = d->rule;
    __builtin_memset(e->comm, 0, sizeof(e->comm));
    if (pid)
        bpf_get_current_comm(e->comm, sizeof(e->comm));
    bpf_ringbuf_submit(e, 0);
}

static __always_inline __u32 current_pid(void)
{
    return bpf_get_current_pid_tgid() >> 32;
}

#endif /* AUTHWALL_LIB_EVENTS_BPF_H */
