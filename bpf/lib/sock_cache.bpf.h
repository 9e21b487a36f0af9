/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the packet hooks remember about a socket, so that most packets cost
 * one lookup: who the socket belongs to (outside authwall, or confined and
 * in which session), and the last inbound and outbound datagram flows the
 * policy allowed. Everything remembered is tagged with the generation it was
 * found at and is worthless once userspace moves the generation on (a login
 * opens or closes, a user layer changes, a session is revoked, a policy is
 * swapped): revocations and reloads reach established flows at their next
 * packet.
 *
 * Concurrency: packets of one socket may run on several CPUs at once. The
 * subject is one 64-bit word, written and read whole, so it is never torn;
 * a word written late with an older generation is simply not used. The
 * flows are larger and copied under the socket's spin lock.
 */
#ifndef AUTHWALL_LIB_SOCK_CACHE_BPF_H
#define AUTHWALL_LIB_SOCK_CACHE_BPF_H

#include "lib/packet.bpf.h"

/* The subject word: the generation's high 56 bits, the session cgroup's
 * level (0: no session) in bits 2..7, the kind in bits 0..1. Userspace keeps
 * the generation's top bit set, so a valid word is never 0. */
#define SOCK_GEN_MASK (~0xFFULL)
#define SOCK_EMPTY 0
#define SOCK_OUTSIDE_PASS 1 /* no session, no user layer: the unknown-cgroup verdict */
#define SOCK_OUTSIDE_REFUSE 2
#define SOCK_CONFINED 3 /* a session or a user layer, neither revoked */

struct cached_flow {
    __u64 generation; /* 0: nothing cached */
    __u8 addr[16];    /* the peer */
    __u16 port;       /* egress: the peer's port; ingress: the local port */
    __u16 peer_port;  /* ingress: the peer's port (a datagram may be a reply) */
    __u8 proto;
    __u8 loopback;
    __u16 reserved;
};

struct sock_state {
    __u64 word;
    struct bpf_spin_lock lock; /* guards the flows */
    __u32 reserved;
    struct cached_flow egress;
    struct cached_flow ingress;
};

struct {
    __uint(type, BPF_MAP_TYPE_SK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct sock_state);
} sock_cache SEC(".maps");

/* The full socket a packet belongs to, or NULL (request and time-wait
 * sockets carry no storage). */
static __always_inline struct bpf_sock* full_socket(struct __sk_buff* skb)
{
    struct bpf_sock* sk = skb->sk;
    return sk ? bpf_sk_fullsock(sk) : 0;
}

/* A socket's memory, made when the socket carries a flow (TCP established,
 * a connected datagram socket): making it costs about as much as several
 * full decisions, so a socket that lives for a packet or two (a refused
 * connect, a SYN, an unconnected sendto) never pays for it and takes the
 * full path instead. */
static __always_inline struct sock_state* sock_state_of(struct bpf_sock* sk)
{
    if (!sk)
        return 0;
    __u64 create = sk->state == BPF_TCP_ESTABLISHED ? BPF_SK_STORAGE_GET_F_CREATE : 0;
    return bpf_sk_storage_get(&sock_cache, sk, 0, create);
}

static __always_inline __u64 read_word(const struct sock_state* c)
{
    return c ? *(volatile const __u64*)&c->word : 0;
}

static __always_inline int word_current(__u64 word, __u64 gen)
{
    return (gen & SOCK_GEN_MASK) && (word & SOCK_GEN_MASK) == (gen & SOCK_GEN_MASK) && (word & 3);
}

static __always_inline __u32 word_kind(__u64 word)
{
    return word & 3;
}

/* The session of a confined socket's word: its cgroup's ancestor at the
 * remembered level (one helper call instead of the walk); 0: none. */
static __always_inline __u64 word_session(struct __sk_buff* skb, __u64 word)
{
    __u32 level = (word >> 2) & 0x3F;
    return level ? bpf_skb_ancestor_cgroup_id(skb, level) : 0;
}

static __always_inline void write_word(struct sock_state* c, __u64 word)
{
    *(volatile __u64*)&c->word = word;
}

/* Remembers a socket no session and no user layer claims. */
static __always_inline void remember_outside(struct sock_state* c, __u64 gen, int verdict)
{
    if (c && (gen & SOCK_GEN_MASK))
        write_word(c, (gen & SOCK_GEN_MASK) | (verdict == PASS ? SOCK_OUTSIDE_PASS : SOCK_OUTSIDE_REFUSE));
}

/* Remembers a confined socket. A revoked subject is never remembered: each
 * of its packets takes the full path, which refuses it. */
static __always_inline void remember_subject(struct sock_state* c, __u64 gen, const struct subject* s)
{
    if (!c || !(gen & SOCK_GEN_MASK) || subject_revoked(s))
        return;
    write_word(c, (gen & SOCK_GEN_MASK) | ((__u64)(s->session_level & 0x3F) << 2) | SOCK_CONFINED);
}

/* A kernel TCP socket past LISTEN: its flow was judged at connect() or at
 * the inbound SYN, so its packets need no decision of their own. */
static __always_inline int is_tcp_flow_socket(const struct bpf_sock* sk, int ingress)
{
    if (!sk || sk->type != 1 /* SOCK_STREAM */ || sk->protocol != IPPROTO_TCP)
        return 0;
    return !ingress || sk->state != BPF_TCP_LISTEN;
}

/* The key a datagram's decision depends on, besides the subject. */
static __always_inline void flow_key(struct cached_flow* k, const struct packet* p, __u64 gen, int ingress,
                                     int loopback)
{
    k->generation = gen;
    if (ingress) {
        __builtin_memcpy(k->addr, p->src.addr, sizeof(k->addr));
        k->port = p->dst.port;
        k->peer_port = p->src.port;
        k->loopback = loopback;
    } else {
        __builtin_memcpy(k->addr, p->dst.addr, sizeof(k->addr));
        k->port = p->dst.port;
    }
    k->proto = p->src.proto;
}

static __always_inline int same_flow(const struct cached_flow* a, const struct cached_flow* b)
{
    const __u64 *x = (const __u64*)a, *y = (const __u64*)b;
    return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* Whether `k` is the flow last allowed in that direction at this generation. */
static __always_inline int flow_allowed_before(struct sock_state* c, const struct cached_flow* k, int ingress)
{
    struct cached_flow have;
    bpf_spin_lock(&c->lock);
    if (ingress)
        have = c->ingress;
    else
        have = c->egress;
    bpf_spin_unlock(&c->lock);
    return same_flow(&have, k);
}

static __always_inline void remember_flow(struct sock_state* c, const struct cached_flow* k, int ingress)
{
    bpf_spin_lock(&c->lock);
    if (ingress)
        c->ingress = *k;
    else
        c->egress = *k;
    bpf_spin_unlock(&c->lock);
}

#endif /* AUTHWALL_LIB_SOCK_CACHE_BPF_H */
