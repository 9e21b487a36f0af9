/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * DNS names, per session (bpf/authwall_abi.h, "DNS names, per session"):
 * the queries and answers of sessions whose policy has name rules, and the
 * addresses those answers gave each session.
 *
 * aw_name_allows is a global function, as aw_watch_dns
 * (lib/dns_watch.bpf.h): the verifier checks each once, on its own, from
 * the types of its arguments, instead of again at every place and state
 * that calls it (aw_ingress is near the verifier's bounds already).
 */
#ifndef AUTHWALL_LIB_NAMES_BPF_H
#define AUTHWALL_LIB_NAMES_BPF_H

#include "lib/packet.bpf.h"

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 65536);
    __type(key, struct aw_name_key);
    __type(value, struct aw_name_seen);
} names_seen SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_LRU_HASH);
    __uint(max_entries, 16384);
    __type(key, struct aw_dns_query_key);
    __type(value, __u64);
} dns_queries SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} dns_answers SEC(".maps");

/* The flow a name grant is asked about, in one scalar: direction,
 * protocol, port (host order), and for an inbound datagram the peer's port
 * with NAME_REPLY, to be admitted as a reply to what the session may send
 * to the peer (an egress grant). */
#define NAME_REPLY (1ULL << 48)
#define NAME_FLOW(dir, proto, port) ((__u64)(dir) | (__u64)(proto) << 8 | (__u64)bpf_ntohs(port) << 16)
#define NAME_FLOW_REPLY(peer_port) (NAME_REPLY | (__u64)bpf_ntohs(peer_port) << 32)

static __always_inline int grant_covers(const struct aw_name_grant* g, __u8 dir, __u8 proto, __u16 port)
{
    return g->rule && g->dir == dir && (!g->proto || g->proto == proto) &&
           (!g->port_first || (port >= g->port_first && port <= g->port_last));
}

/* The rule that allows the flow to or from `addr` (as two halves) for the
 * session of `policy_id` (`flow`: NAME_FLOW, with NAME_FLOW_REPLY), through
 * an address one of its DNS answers gave it and that has not expired; 0
 * when none does, or when the policy has no name rules (AW_META_NAMES). */
__noinline int aw_name_allows(__u64 session_id, __u32 policy_id, __u64 addr_hi, __u64 addr_lo, __u64 flow)
{
    if (!session_id)
        return 0;
    __u32 zero = 0;
    void* trie = bpf_map_lookup_elem(&policy_gen, &zero);
    if (!trie)
        return 0;
    /* One key for both lookups: this frame counts in the hooks' stack. */
    union {
        struct aw_rule_key meta;
        struct aw_name_key name;
    } key = {};
    key.meta.prefixlen = AW_RULE_KEY_FIXED_BITS + 128;
    key.meta.policy_id = bpf_htonl(policy_id);
    key.meta.dir = AW_DIR_META;
    struct aw_rule_val* meta = bpf_map_lookup_elem(trie, &key.meta);
    if (!meta || !(meta->rule_flags & AW_META_NAMES))
        return 0;
    __builtin_memset(&key, 0, sizeof(key));
    key.name.session_id = session_id;
    __builtin_memcpy(key.name.addr, &addr_hi, 8);
    __builtin_memcpy(key.name.addr + 8, &addr_lo, 8);
    struct aw_name_seen* seen = bpf_map_lookup_elem(&names_seen, &key.name);
    if (!seen || seen->expires_ns <= bpf_ktime_get_ns())
        return 0;
    __u8 dir = flow & 0xff, proto = (flow >> 8) & 0xff;
    __u16 port = (flow >> 16) & 0xffff, peer_port = (flow >> 32) & 0xffff;
    for (int i = 0; i < AW_NAME_GRANTS; i++) {
        if (grant_covers(&seen->grants[i], dir, proto, port))
            return seen->grants[i].rule;
        if ((flow & NAME_REPLY) && grant_covers(&seen->grants[i], AW_DIR_EGRESS, proto, peer_port))
            return seen->grants[i].rule;
    }
    return 0;
}

/* aw_name_allows on a flow; `reply_flags` is 0 or NAME_FLOW_REPLY(port),
 * computed without a branch (each one here multiplies the verifier's
 * walk of the hooks). */
static __always_inline __u32 name_allows(__u64 session_id, __u32 policy_id, __u8 dir, const struct flow* f,
                                         __u64 reply_flags)
{
    __u64 hi, lo;
    __builtin_memcpy(&hi, f->addr, 8);
    __builtin_memcpy(&lo, f->addr + 8, 8);
    return aw_name_allows(session_id, policy_id, hi, lo, NAME_FLOW(dir, f->proto, f->port) | reply_flags);
}

#endif /* AUTHWALL_LIB_NAMES_BPF_H */
