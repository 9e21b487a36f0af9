// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * authwall data plane: cgroup BPF programs that enforce a session's policy.
 *
 * The entry points. Every program starts the same way: find the subject (the
 * session the task or socket belongs to, and its user's layer); no subject:
 * the unknown-cgroup verdict. Then both layers judge. The shared pieces live
 * in lib/: the maps, the subject, events, the decision, the packet parser and
 * the per-socket cache. See docs/ARCHITECTURE.md for the rule semantics.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "authwall_abi.h"
#include "lib/decision_cache.bpf.h"
#include "lib/dns_watch.bpf.h"
#include "lib/packet_decision.bpf.h"
#include "lib/sock_cache.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Complete BTF for the ABI structs that no map declares with __type(), so
 * the object describes the whole ABI (tests compare it with the C++ side). */
const volatile struct aw_event aw_abi_event = {};
const volatile struct aw_rule_key aw_abi_rule_key = {};
const volatile struct aw_rule_val aw_abi_rule_val = {};

/* ------------------------------------------------------ syscall hooks */

static __always_inline __u8 sock_proto(struct bpf_sock_addr* ctx)
{
    if (ctx->protocol)
        return ctx->protocol;
    return ctx->type == 1 /* SOCK_STREAM */ ? IPPROTO_TCP : IPPROTO_UDP;
}

/* The syscall hooks on an address (connect, sendmsg, bind). What they found
 * for a process is remembered (lib/decision_cache.bpf.h): asked again at the
 * same generation, a process outside authwall gets its verdict, a confined
 * one passes to a destination it was allowed, at once. */
static __always_inline int sock_addr_hook(struct bpf_sock_addr* ctx, __u32 hook, __u8 dir, int v6)
{
    struct subject_key k = {};
    k.generation = current_generation(); /* before anything the decision reads */
    k.cgroup_id = bpf_get_current_cgroup_id();
    k.uid = (__u32)bpf_get_current_uid_gid();

    struct flow f = {};
    if (v6) {
        __u32 w[4];
        w[0] = ctx->user_ip6[0];
        w[1] = ctx->user_ip6[1];
        w[2] = ctx->user_ip6[2];
        w[3] = ctx->user_ip6[3];
        set_v6_words(&f, w);
    } else {
        set_v4(&f, ctx->user_ip4);
    }
    f.port = (__u16)ctx->user_port;
    f.proto = sock_proto(ctx);
    struct remembered_flow rf = {.dir = dir, .proto = f.proto, .port = f.port};
    __builtin_memcpy(rf.addr, f.addr, sizeof(rf.addr));

    struct decision_slot* slot = k.generation ? decision_slot_of(&k) : 0;
    switch (remembered(slot, &k, &rf)) {
    case REMEMBERED_PASS:
    case REMEMBERED_ALLOWED:
        return PASS;
    case REMEMBERED_REFUSE:
        return REFUSE;
    }

    /* The walk reads the task's cgroup again, level by level: a task moved
     * meanwhile is judged by where the walk found it, and what was found
     * is remembered only if the task is still where the key says. (Moving a
     * task takes write access to both cgroups' common parent, which already
     * lets its owner take the task out of a session for good; the key's uid
     * cannot change during the call.) */
    struct subject sub = {};
    if (!find_subject_of_task(&sub)) {
        int verdict = unknown_cgroup_verdict();
        if (bpf_get_current_cgroup_id() == k.cgroup_id)
            remember_outside_task(slot, &k, verdict);
        return verdict;
    }
    struct decision d = judge(&sub, dir, &f, 0);
    if (d.verdict == AW_VERDICT_ALLOW && !d.note) {
        if (may_remember(&d) && bpf_get_current_cgroup_id() == k.cgroup_id)
            remember_allowed_flow(slot, &k, &rf); /* judge() refuses a revoked layer */
        return PASS;
    }
    /* A refusal, or an allow to report (audited, logged): never
     * remembered, so each one is counted and reported. */
    report(&sub, &d, hook, &f, current_pid());
    return d.verdict == AW_VERDICT_ALLOW ? PASS : REFUSE;
}

SEC("cgroup/connect4")
int aw_connect4(struct bpf_sock_addr* ctx)
{
    return sock_addr_hook(ctx, AW_HOOK_CONNECT4, AW_DIR_EGRESS, 0);
}

SEC("cgroup/connect6")
int aw_connect6(struct bpf_sock_addr* ctx)
{
    return sock_addr_hook(ctx, AW_HOOK_CONNECT6, AW_DIR_EGRESS, 1);
}

SEC("cgroup/sendmsg4")
int aw_sendmsg4(struct bpf_sock_addr* ctx)
{
    return sock_addr_hook(ctx, AW_HOOK_SENDMSG4, AW_DIR_EGRESS, 0);
}

SEC("cgroup/sendmsg6")
int aw_sendmsg6(struct bpf_sock_addr* ctx)
{
    return sock_addr_hook(ctx, AW_HOOK_SENDMSG6, AW_DIR_EGRESS, 1);
}

SEC("cgroup/bind4")
int aw_bind4(struct bpf_sock_addr* ctx)
{
    return sock_addr_hook(ctx, AW_HOOK_BIND4, AW_DIR_BIND, 0);
}

SEC("cgroup/bind6")
int aw_bind6(struct bpf_sock_addr* ctx)
{
    return sock_addr_hook(ctx, AW_HOOK_BIND6, AW_DIR_BIND, 1);
}

SEC("cgroup/sock_create")
int aw_sock_create(struct bpf_sock* ctx)
{
    struct subject sub = {};
    if (!find_subject_of_task(&sub))
        return unknown_cgroup_verdict();
    struct decision d = judge_socket(&sub, ctx->family, ctx->type);
    if (d.verdict == AW_VERDICT_ALLOW && !d.note)
        return PASS;
    struct flow f = {};
    f.family = ctx->family;
    f.proto = ctx->type;
    report(&sub, &d, AW_HOOK_SOCK_CREATE, &f, current_pid());
    return d.verdict == AW_VERDICT_ALLOW ? PASS : REFUSE;
}

/* Families other than inet never reach cgroup/sock_create (it runs from
 * inet_create only), so packet, netlink, vsock, ... are refused through a
 * cgroup-scoped LSM hook. Loaded only where the kernel has BPF LSM and BTF;
 * the loader reports when it is missing. The same checks as sock_create
 * (revocation included), through judge_socket. */
SEC("lsm_cgroup/socket_create")
int BPF_PROG(aw_socket_create, int family, int type, int protocol, int kern)
{
    if (kern || family == AF_INET || family == AF_INET6 || family < 0)
        return PASS; /* kernel sockets; inet is handled by aw_sock_create */
    struct subject sub = {};
    if (!find_subject_of_task(&sub))
        return PASS;
    struct decision d = judge_socket(&sub, family, type);
    if (d.verdict == AW_VERDICT_ALLOW && !d.note)
        return PASS;
    struct flow f = {};
    f.family = family;
    f.proto = type;
    report(&sub, &d, AW_HOOK_SOCK_CREATE, &f, current_pid());
    return d.verdict == AW_VERDICT_ALLOW ? PASS : REFUSE;
}

/* -------------------------------------------------------- packet hooks */

/* A packet counted on the full path: straight into the session's counters. */
static __always_inline void count_traffic(__u64 session_id, struct __sk_buff* skb, int ingress)
{
    if (!session_id)
        return;
    struct aw_stats* st = bpf_map_lookup_elem(&session_stats, &session_id);
    if (!st)
        return;
    if (ingress) {
        __sync_fetch_and_add(&st->bytes_in, skb->len);
        __sync_fetch_and_add(&st->packets_in, 1);
    } else {
        __sync_fetch_and_add(&st->bytes_out, skb->len);
        __sync_fetch_and_add(&st->packets_out, 1);
    }
}

/* Both packet hooks. Fast paths, while the socket's memory is current: a
 * socket outside authwall gets its verdict; a kernel TCP socket of a session
 * is counted in its memory and passes; a datagram of a flow allowed before
 * passes. Anything else takes the full path: find the subject, parse,
 * decide, remember. */
static __always_inline int packet_hook(struct __sk_buff* skb, int ingress)
{
    __u64 gen = current_generation();
    struct bpf_sock* sk = skb->sk;
    __u32 state = sk ? sk->state : 0;
    struct sock_state* c = sock_state_of(sk, state);
    __u64 word = read_word(c);
    int current = word_current(word, gen);
    struct packet p = {};
    struct cached_flow key = {};
    int parsed = -1;

    if (current) {
        if (word_kind(word) != SOCK_CONFINED)
            return word_kind(word) == SOCK_OUTSIDE_PASS ? PASS : REFUSE;
        /* A kernel TCP socket past LISTEN: its flow was judged at
         * connect() or at the inbound SYN. */
        if ((word & SOCK_TCP) && (!ingress || state != BPF_TCP_LISTEN)) {
            count_in_socket(c, word, skb->len, state, ingress);
            return PASS;
        }
    }
    /* A session's DNS queries and answers are watched before anything is
     * remembered or decided (lib/dns_watch.bpf.h): here, where few paths
     * of the verifier's walk meet, and before the datagram fast path,
     * which would hide the second query of a socket. A socket whose
     * memory says its session's policy has no name rules skips it. */
    aw_watch_dns(skb, ingress | (current && !(word & SOCK_NAMES) ? DNS_SKIP : 0));
    if (current) {
        /* A plain UDP datagram's key comes straight from the packet (no
         * parse); anything else, or a flow not allowed before, is parsed. */
        struct cached_flow fast = {};
        if (aw_datagram_key(skb, &fast, ingress)) {
            fast.generation = gen;
            if (flow_allowed_before(c, &fast, ingress)) {
                count_in_socket(c, word, skb->len, BPF_TCP_ESTABLISHED, ingress);
                return PASS;
            }
        }
        parsed = parse_packet(skb, &p);
        if (parsed && c) {
            flow_key(&key, &p, gen, ingress, skb->ifindex == LOOPBACK_IFINDEX);
            if (flow_allowed_before(c, &key, ingress)) {
                count_in_socket(c, word, skb->len, BPF_TCP_ESTABLISHED, ingress);
                return PASS;
            }
        }
    }

    struct subject sub = {};
    if (!find_subject_of_skb(skb, &sub)) {
        int verdict = unknown_cgroup_verdict();
        remember_outside(c, gen, verdict);
        return verdict;
    }
    if (c)
        remember_subject(c, gen, &sub, is_tcp_socket(sk), sub.session && aw_policy_has_names(sub.session->policy_id));
    if (parsed < 0)
        parsed = parse_packet(skb, &p);

    int judged;
    struct decision d = packet_decision(&sub, &p, parsed, skb, ingress, &judged);
    if (d.verdict != AW_VERDICT_ALLOW || d.note) {
        struct flow peer = ingress ? p.src : p.dst;
        if (ingress)
            peer.port = p.dst.port;
        report(&sub, &d, ingress ? AW_HOOK_INGRESS : AW_HOOK_EGRESS, &peer, 0);
        if (d.verdict != AW_VERDICT_ALLOW)
            return REFUSE;
    } else if (judged && c && (gen & SOCK_GEN_MASK) && !subject_revoked(&sub) && may_remember(&d)) {
        /* Only plain allows are remembered: an audited or logged one is
         * reported at each packet that takes this path, and one that holds
         * only for a while is asked again. */
        if (!key.generation)
            flow_key(&key, &p, gen, ingress, skb->ifindex == LOOPBACK_IFINDEX);
        remember_flow(c, &key, ingress);
    } else if (!ingress && judged && !c && p.is_datagram && (gen & SOCK_GEN_MASK) && !subject_revoked(&sub) &&
               may_remember(&d)) {
        /* An unconnected socket's first allowed datagram out: its memory
         * is made now, so that its next datagrams to the same peer, and
         * the answers once their flow is allowed, take the fast path. */
        flow_key(&key, &p, gen, 0, 0);
        aw_datagram_memory(skb, &key, subject_word(gen, &sub, 0, 0), sub.session_id,
                           sub.session ? sub.session->policy_id : 0);
    }
    count_traffic(sub.session_id, skb, ingress);
    return PASS;
}

SEC("cgroup_skb/egress")
int aw_egress(struct __sk_buff* skb)
{
    return packet_hook(skb, 0);
}

SEC("cgroup_skb/ingress")
int aw_ingress(struct __sk_buff* skb)
{
    return packet_hook(skb, 1);
}

/* A socket closed by its process: what it counted in its memory goes to its
 * session now (packets sent after this, such as TCP's closing handshake,
 * are counted at once: the socket is no longer ESTABLISHED). */
SEC("cgroup/sock_release")
int aw_sock_release(struct bpf_sock* sk)
{
    fold_counts(bpf_sk_storage_get(&sock_cache, sk, 0, 0), 0);
    return PASS;
}
