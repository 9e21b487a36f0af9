/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The DNS queries and answers of sessions whose policy has name rules
 * (bpf/authwall_abi.h, "DNS names, per session"). A global function, like
 * aw_name_allows: verified once, on its own.
 */
#ifndef AUTHWALL_LIB_DNS_WATCH_BPF_H
#define AUTHWALL_LIB_DNS_WATCH_BPF_H

#include "lib/decision.bpf.h"

/* The packet's remote address (source when inbound), as 16 bytes. */
static __always_inline int remote_address(struct __sk_buff* skb, int ingress, __u8* out)
{
    if (skb->protocol == bpf_htons(ETH_P_IP)) {
        __u32 a;
        if (bpf_skb_load_bytes(skb, ingress ? 12 : 16, &a, 4))
            return -1;
        __builtin_memset(out, 0, 10);
        out[10] = 0xff;
        out[11] = 0xff;
        __builtin_memcpy(out + 12, &a, 4);
        return 0;
    }
    return bpf_skb_load_bytes(skb, ingress ? 8 : 24, out, 16) ? -1 : 0;
}

/* Where the UDP header of a DNS datagram starts (a query to port 53 when
 * outbound, its answer when inbound), or 0. IPv6 extension headers are not
 * walked: such a datagram is not watched. */
static __always_inline __u32 dns_udp_offset(struct __sk_buff* skb, int ingress)
{
    __u32 off;
    __u8 proto;
    if (skb->protocol == bpf_htons(ETH_P_IP)) {
        __u8 vihl;
        __u16 frag;
        if (bpf_skb_load_bytes(skb, 0, &vihl, 1) || bpf_skb_load_bytes(skb, 6, &frag, 2) ||
            bpf_skb_load_bytes(skb, 9, &proto, 1))
            return 0;
        if (bpf_ntohs(frag) & IP_OFFSET)
            return 0;
        off = (vihl & 0xf) * 4;
    } else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
        if (bpf_skb_load_bytes(skb, 6, &proto, 1))
            return 0;
        off = 40;
    } else {
        return 0;
    }
    __u16 ports[2];
    if (proto != IPPROTO_UDP || off < 20 || bpf_skb_load_bytes(skb, off, ports, sizeof(ports)))
        return 0;
    return ports[ingress ? 0 : 1] == bpf_htons(53) ? off : 0;
}

/* Whether the sessions of `policy_id` have their DNS watched: its policy
 * (or the fallback, as aw_watch_dns finds it) has name rules. For the
 * socket's memory (SOCK_NAMES), so that the datagrams of other sessions
 * pass without the watch's header reads. */
__noinline int aw_policy_has_names(__u32 policy_id)
{
    void* trie = active_trie();
    struct aw_rule_val* meta = trie ? policy_meta(trie, &policy_id) : 0;
    return meta && (meta->rule_flags & AW_META_NAMES);
}

/* Skips the packet (DNS_SKIP, with the direction in `how`): its socket's
 * memory says its session's DNS is not watched (no SOCK_NAMES). An
 * argument, not a branch at the call: the hooks' verifier walk stays as
 * long as it was. */
#define DNS_SKIP 2

/* Every packet of a socket that is not an established kernel TCP flow
 * (packet_hook; `how`: 1 inbound, 0 outbound, | DNS_SKIP): when it is a
 * session's DNS datagram over UDP and the session's policy has name rules,
 * a query is noted; the answer to a noted query goes to the loader
 * (dns_answers) and its note is dropped, so one query lets one answer
 * through. Answers nobody asked for, from another server, port or id, are
 * ignored; which servers' answers count at all is the loader's to say
 * ([dns] observe_from). Watched before the policy decides: a query it then
 * drops gets no answer, and an answer it drops still names addresses of a
 * name the policy allows. */
__noinline int aw_watch_dns(struct __sk_buff* skb, __u32 how)
{
    if (how & DNS_SKIP)
        return 0;
    __u32 ingress = how & 1;
    __u32 l4_off = dns_udp_offset(skb, ingress);
    if (!l4_off)
        return 0;
    struct subject sub = {};
    find_session_of_skb(skb, &sub);
    if (!sub.session)
        return 0;
    __u32 policy_id = sub.session->policy_id;
    void* trie = active_trie();
    struct aw_rule_val* meta = trie ? policy_meta(trie, &policy_id) : 0;
    if (!meta || !(meta->rule_flags & AW_META_NAMES))
        return 0;
    struct aw_dns_query_key key = {.session_id = sub.session_id};
    __u16 ports[2];
    if (remote_address(skb, ingress, key.server) || bpf_skb_load_bytes(skb, l4_off, ports, sizeof(ports)) ||
        bpf_skb_load_bytes(skb, l4_off + 8, &key.txid, sizeof(key.txid)))
        return 0;
    key.port = ingress ? ports[1] : ports[0];
    if (!ingress) {
        __u64 now = bpf_ktime_get_ns();
        bpf_map_update_elem(&dns_queries, &key, &now, BPF_ANY);
        return 0;
    }
    if (!bpf_map_lookup_elem(&dns_queries, &key))
        return 0;
    bpf_map_delete_elem(&dns_queries, &key);
    __u64 start = (__u64)l4_off + 8, length = skb->len;
    length = length > start ? length - start : 0;
    if (length < 12)
        return 0; /* shorter than a DNS header */
    if (length > AW_DNS_ANSWER_MAX)
        length = AW_DNS_ANSWER_MAX;
    struct aw_dns_answer* a = bpf_ringbuf_reserve(&dns_answers, sizeof(*a), 0);
    if (!a)
        return 0;
    a->session_id = sub.session_id;
    a->policy_id = policy_id;
    a->length = length;
    a->reserved = 0;
    __builtin_memcpy(a->server, key.server, 16);
    /* The bounds again, in a form every verifier tracks on the register it
     * checks: 1..AW_DNS_ANSWER_MAX by construction (a power of two), the
     * same value for a length already in that range. */
    __u64 n = ((length - 1) & (AW_DNS_ANSWER_MAX - 1)) + 1;
    if (bpf_skb_load_bytes(skb, start, a->payload, n)) {
        bpf_ringbuf_discard(a, 0);
        return 0;
    }
    bpf_ringbuf_submit(a, 0);
    return 1;
}

#endif /* AUTHWALL_LIB_DNS_WATCH_BPF_H */
