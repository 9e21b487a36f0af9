// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Test entry points over the data plane's own library (bpf/lib), run with
 * BPF_PROG_TEST_RUN on crafted packets and never attached: the packet parser
 * alone, and the decision on a packet for a subject the test names.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "lib/decision_cache.bpf.h"
#include "lib/packet_decision.bpf.h"
#include "lib/sock_cache.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* What the parser found (t_parse). */
struct parse_result {
    __s32 parsed;
    __u8 is_tcp;
    __u8 is_datagram;
    __u8 tcp_flags;
    __u8 proto;
    struct flow src;
    struct flow dst;
};

/* Whom t_decide judges the packet for: a session (0: none) and a uid (its
 * user layer, when the users map has it), in a direction. */
struct decide_case {
    __u64 session_id;
    __u32 uid;
    __u32 ingress;
};

struct decide_result {
    __s32 parsed;
    __u32 judged;
    struct decision d;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct parse_result);
} parse_out SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct decide_case);
} decide_in SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct decide_result);
} decide_out SEC(".maps");

SEC("cgroup_skb/egress")
int t_parse(struct __sk_buff* skb)
{
    __u32 zero = 0;
    struct parse_result* out = bpf_map_lookup_elem(&parse_out, &zero);
    if (!out)
        return PASS;
    struct packet p = {};
    out->parsed = parse_packet(skb, &p);
    out->is_tcp = p.is_tcp;
    out->is_datagram = p.is_datagram;
    out->tcp_flags = p.tcp_flags;
    out->proto = p.src.proto;
    out->src = p.src;
    out->dst = p.dst;
    return PASS;
}

SEC("cgroup_skb/egress")
int t_decide(struct __sk_buff* skb)
{
    __u32 zero = 0;
    struct decide_case* in = bpf_map_lookup_elem(&decide_in, &zero);
    struct decide_result* out = bpf_map_lookup_elem(&decide_out, &zero);
    if (!in || !out)
        return PASS;
    struct subject sub = {};
    __u64 id = in->session_id;
    if (id) {
        sub.session = bpf_map_lookup_elem(&sessions, &id);
        sub.session_id = sub.session ? id : 0;
    }
    find_user(&sub, in->uid);
    if (!sub.session && !sub.user) {
        out->parsed = -1; /* no subject: the hooks give the unknown-cgroup verdict */
        return PASS;
    }
    struct packet p = {};
    int judged = 0;
    out->parsed = parse_packet(skb, &p);
    out->d = packet_decision(&sub, &p, out->parsed, skb, in->ingress, &judged);
    out->judged = judged;
    return out->d.verdict == AW_VERDICT_ALLOW ? PASS : REFUSE;
}

/* The syscall hooks' memory of what they found (lib/decision_cache.bpf.h):
 * t_remember stores what the test names (an outside verdict, or an allowed
 * flow), t_ask says what is found for a subject and flow. */
struct ask_case {
    struct subject_key key;
    struct remembered_flow flow;
    __u32 outside; /* t_remember: 0: remember the flow as allowed; else the outside verdict + 1 */
    __u32 found;   /* t_ask: REMEMBERED_* */
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct ask_case);
} ask SEC(".maps");

SEC("cgroup_skb/egress")
int t_remember(struct __sk_buff* skb)
{
    __u32 zero = 0;
    struct ask_case* c = bpf_map_lookup_elem(&ask, &zero);
    if (!c)
        return REFUSE;
    struct subject_key k = c->key;
    struct remembered_flow f = c->flow;
    if (c->outside)
        remember_outside_task(decision_slot_of(&k), &k, c->outside - 1);
    else
        remember_allowed_flow(decision_slot_of(&k), &k, &f);
    return PASS;
}

SEC("cgroup_skb/egress")
int t_ask(struct __sk_buff* skb)
{
    __u32 zero = 0;
    struct ask_case* c = bpf_map_lookup_elem(&ask, &zero);
    if (!c)
        return REFUSE;
    struct subject_key k = c->key;
    struct remembered_flow f = c->flow;
    c->found = remembered(decision_slot_of(&k), &k, &f);
    return PASS;
}

/* A socket's memory outside any socket (an array slot has the same layout
 * and lock), so the counting of lib/sock_cache.bpf.h runs on demand: t_count
 * counts one packet of skb->len bytes in the direction and socket state the
 * test names, t_fold is what closing the socket does, t_claim remembers the
 * socket for a session at a generation. */
struct count_case {
    __u64 word;
    __u64 session;
    __u64 generation;
    __u32 state;
    __u32 ingress;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct count_case);
} count_in SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct sock_state);
} socket_memory SEC(".maps");

SEC("cgroup_skb/egress")
int t_count(struct __sk_buff* skb)
{
    __u32 zero = 0;
    struct count_case* in = bpf_map_lookup_elem(&count_in, &zero);
    struct sock_state* c = bpf_map_lookup_elem(&socket_memory, &zero);
    if (!in || !c)
        return REFUSE;
    if (in->ingress)
        count_in_socket(c, in->word, skb->len, in->state, 1);
    else
        count_in_socket(c, in->word, skb->len, in->state, 0);
    return PASS;
}

SEC("cgroup_skb/egress")
int t_fold(struct __sk_buff* skb)
{
    __u32 zero = 0;
    fold_counts(bpf_map_lookup_elem(&socket_memory, &zero), 0);
    return PASS;
}

SEC("cgroup_skb/egress")
int t_claim(struct __sk_buff* skb)
{
    __u32 zero = 0;
    struct count_case* in = bpf_map_lookup_elem(&count_in, &zero);
    struct sock_state* c = bpf_map_lookup_elem(&socket_memory, &zero);
    if (!in || !c)
        return REFUSE;
    struct subject sub = {};
    __u64 id = in->session;
    sub.session = bpf_map_lookup_elem(&sessions, &id);
    sub.session_id = sub.session ? id : 0;
    remember_subject(c, in->generation, &sub, 1, 0);
    return PASS;
}

/* A datagram flow remembered in the test's socket memory, and asked of it:
 * t_remember_flow does what the full path does after an allow,
 * t_flow_allowed what the datagram fast path asks. */
struct flow_case {
    struct cached_flow flow;
    __u32 ingress;
    __u32 found;
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct flow_case);
} flow_in SEC(".maps");

SEC("cgroup_skb/egress")
int t_remember_flow(struct __sk_buff* skb)
{
    __u32 zero = 0;
    struct flow_case* in = bpf_map_lookup_elem(&flow_in, &zero);
    struct sock_state* c = bpf_map_lookup_elem(&socket_memory, &zero);
    if (!in || !c)
        return REFUSE;
    remember_flow(c, &in->flow, in->ingress);
    return PASS;
}

SEC("cgroup_skb/egress")
int t_flow_allowed(struct __sk_buff* skb)
{
    __u32 zero = 0;
    struct flow_case* in = bpf_map_lookup_elem(&flow_in, &zero);
    struct sock_state* c = bpf_map_lookup_elem(&socket_memory, &zero);
    if (!in || !c)
        return REFUSE;
    in->found = flow_allowed_before(c, &in->flow, in->ingress);
    return PASS;
}
