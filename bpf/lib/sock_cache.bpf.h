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
 * flows are larger: a writer copies one in under the socket's spin lock
 * (writers take turns) inside a sequence count (`flow_seq` odd while a flow
 * is being written), and a reader (on x86: see flow_allowed_before) copies
 * it with no lock and uses the copy only if the count was even and the same
 * before and after: a copy torn between two allowed flows, which could be a
 * flow never allowed, is never used (the packet takes the full path).
 */
#ifndef AUTHWALL_LIB_SOCK_CACHE_BPF_H
#define AUTHWALL_LIB_SOCK_CACHE_BPF_H

#include "lib/dns_watch.bpf.h"
#include "lib/packet.bpf.h"

/* The subject word: the generation's high 56 bits, flags in bits 2..7, the
 * kind in bits 0..1. Userspace keeps the generation's top bit set, so a
 * valid word is never 0. */
#define SOCK_GEN_MASK (~0xFFULL)
#define SOCK_EMPTY 0
#define SOCK_OUTSIDE_PASS 1 /* no session, no user layer: the unknown-cgroup verdict */
#define SOCK_OUTSIDE_REFUSE 2
#define SOCK_CONFINED 3          /* a session or a user layer, neither revoked */
#define SOCK_TCP (1ULL << 2)     /* a kernel TCP socket (SOCK_STREAM, IPPROTO_TCP) */
#define SOCK_COUNTED (1ULL << 3) /* in a session: its packets are counted to `session` */
#define SOCK_NAMES (1ULL << 4)   /* in a session whose policy has name rules: its DNS is watched */

struct cached_flow {
    __u64 generation; /* 0: nothing cached */
    __u8 addr[16];    /* the peer */
    __u16 port;       /* egress: the peer's port; ingress: the local port */
    __u16 peer_port;  /* ingress: the peer's port (a datagram may be a reply) */
    __u8 proto;
    __u8 loopback;
    __u16 reserved;
};

/* A socket's traffic not yet added to its session's counters, one word per
 * direction: packets in the high 24 bits, bytes in the low 40. */
#define PENDING_PACKET (1ULL << 40)
#define PENDING_BYTES_MASK (PENDING_PACKET - 1)
/* Added to the session's counters every this many packets or bytes, at
 * once when the socket leaves ESTABLISHED, and when it is closed. */
#define FOLD_PACKETS 64
#define FOLD_BYTES (4ULL << 20)

struct sock_state {
    __u64 word;
    struct bpf_spin_lock lock; /* writers of the flows, `session` and taking the pending counts */
    __u32 flow_seq;            /* odd while a flow is written (see above) */
    __u64 session;             /* the session cgroup id the counts belong to */
    __u64 pending[2];          /* [egress, ingress] */
    struct cached_flow egress;
    struct cached_flow ingress;
};

struct {
    __uint(type, BPF_MAP_TYPE_SK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, struct sock_state);
} sock_cache SEC(".maps");

/* A packet's socket's memory, or NULL. The kernel runs cgroup_skb programs
 * with skb->sk set to the full socket (a request socket's listener), so no
 * bpf_sk_fullsock() is needed: the storage helper takes the socket as it
 * is, and refuses anything but a full socket itself.
 *
 * The memory is made here when the socket carries a flow (TCP established,
 * a connected datagram socket), and by aw_datagram_memory when a socket
 * that is not connected sends its second datagram: making it costs about
 * two full decisions, so a socket that lives for a packet or two (a
 * refused connect, a SYN, one sendto) never pays for it and takes the full
 * path instead. */
static __always_inline struct sock_state* sock_state_of(struct bpf_sock* sk, __u32 state)
{
    if (!sk)
        return 0;
    __u64 create = state == BPF_TCP_ESTABLISHED ? BPF_SK_STORAGE_GET_F_CREATE : 0;
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

static __always_inline void write_word(struct sock_state* c, __u64 word)
{
    *(volatile __u64*)&c->word = word;
}

/* Adds traffic taken from a socket's memory to a session's counters. */
static __always_inline void add_to_session(__u64 session, __u64 out, __u64 in)
{
    if (!session || !(out | in))
        return;
    struct aw_stats* st = bpf_map_lookup_elem(&session_stats, &session);
    if (!st)
        return; /* the session is gone, and its counters with it */
    if (out) {
        __sync_fetch_and_add(&st->bytes_out, out & PENDING_BYTES_MASK);
        __sync_fetch_and_add(&st->packets_out, out >> 40);
    }
    if (in) {
        __sync_fetch_and_add(&st->bytes_in, in & PENDING_BYTES_MASK);
        __sync_fetch_and_add(&st->packets_in, in >> 40);
    }
}

/* Moves what a socket counted into its session's counters, and makes
 * `session` the session it counts for from now on. Packets keep adding to
 * the pending words meanwhile: exactly what was read is subtracted, under
 * the lock, so two folds never take the same packet and none is lost. */
static __noinline int fold_counts(struct sock_state* c, __u64 session)
{
    if (!c)
        return 0;
    bpf_spin_lock(&c->lock);
    __u64 owner = c->session;
    __u64 out = c->pending[0];
    __u64 in = c->pending[1];
    if (out)
        __sync_fetch_and_add(&c->pending[0], -out);
    if (in)
        __sync_fetch_and_add(&c->pending[1], -in);
    if (session)
        c->session = session;
    bpf_spin_unlock(&c->lock);
    add_to_session(owner, out, in);
    return 0;
}

/* Counts a packet of a socket in a session in its memory: one atomic add.
 * The counts reach the session every FOLD_PACKETS packets or FOLD_BYTES
 * bytes, at every packet of a socket not ESTABLISHED (a TCP socket that is
 * closing: its last packets are counted at once), and when the socket is
 * closed (aw_sock_release). A datagram's caller passes ESTABLISHED: a
 * datagram socket's state says only whether it is connected, and it counts
 * by batches either way. */
static __always_inline void count_in_socket(struct sock_state* c, __u64 word, __u32 len, __u32 state, int ingress)
{
    if (!(word & SOCK_COUNTED))
        return;
    __u64* pending = ingress ? &c->pending[1] : &c->pending[0];
    __sync_fetch_and_add(pending, PENDING_PACKET | len);
    __u64 now = *(volatile __u64*)pending;
    if (state == BPF_TCP_ESTABLISHED && (now >> 40) < FOLD_PACKETS && (now & PENDING_BYTES_MASK) < FOLD_BYTES)
        return;
    fold_counts(c, 0);
}

/* Remembers a socket no session and no user layer claims. */
static __always_inline void remember_outside(struct sock_state* c, __u64 gen, int verdict)
{
    if (c && (gen & SOCK_GEN_MASK))
        write_word(c, (gen & SOCK_GEN_MASK) | (verdict == PASS ? SOCK_OUTSIDE_PASS : SOCK_OUTSIDE_REFUSE));
}

/* The subject word of a confined socket: whether it is a kernel TCP socket,
 * whether it is in a session (its packets counted), whether its session's
 * DNS is watched (`names`). */
static __always_inline __u64 subject_word(__u64 gen, const struct subject* s, int tcp, int names)
{
    __u64 word = (gen & SOCK_GEN_MASK) | SOCK_CONFINED;
    if (tcp)
        word |= SOCK_TCP;
    if (s->session_id) {
        word |= SOCK_COUNTED;
        if (names)
            word |= SOCK_NAMES;
    }
    return word;
}

/* Remembers a confined socket, and the session its packets are counted to
 * (what it counted for another session before goes to that one first). A
 * revoked subject is never remembered: each of its packets takes the full
 * path, which refuses it. */
static __always_inline void remember_subject(struct sock_state* c, __u64 gen, const struct subject* s, int tcp,
                                             int names)
{
    if (!c || !(gen & SOCK_GEN_MASK) || subject_revoked(s))
        return;
    __u64 word = (gen & SOCK_GEN_MASK) | SOCK_CONFINED;
    if (tcp)
        word |= SOCK_TCP;
    if (s->session_id) {
        word |= SOCK_COUNTED;
        if (names)
            word |= SOCK_NAMES;
        if (c->session != s->session_id)
            fold_counts(c, s->session_id);
    }
    write_word(c, word);
}

/* Whether a packet's socket is a kernel TCP socket (the full path only:
 * the fast path has it in the word). */
static __always_inline int is_tcp_socket(struct bpf_sock* sk)
{
    sk = sk ? bpf_sk_fullsock(sk) : 0;
    return sk && sk->type == 1 /* SOCK_STREAM */ && sk->protocol == IPPROTO_TCP;
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

/* The key of a plain UDP datagram (IPv4 without options and not a later
 * fragment, or IPv6 with no extension header), read straight from the
 * packet's linear data: the key flow_key makes of parse_packet's flow,
 * without its helper calls (about a third of a session datagram's cost).
 * 0 for anything else, with *k untouched: the caller parses. `generation`
 * is the caller's to set. A global function: verified once, whatever the
 * paths of the hooks that call it. */
__noinline int aw_datagram_key(struct __sk_buff* skb, struct cached_flow* k, int ingress)
{
    void* data = (void*)(long)skb->data;
    void* end = (void*)(long)skb->data_end;
    const __u16* ports;
    __u32 addr[4] = {0, 0, bpf_htonl(0xffff), 0};
    if (!k)
        return 0;
    if (skb->protocol == bpf_htons(ETH_P_IP)) {
        struct iphdr* ip = data;
        if ((void*)(ip + 1) + 4 > end || ip->ihl != 5 || ip->protocol != IPPROTO_UDP ||
            (ip->frag_off & bpf_htons(IP_OFFSET)))
            return 0;
        addr[3] = ingress ? ip->saddr : ip->daddr;
        ports = (const __u16*)(ip + 1);
    } else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr* ip6 = data;
        if ((void*)(ip6 + 1) + 4 > end || ip6->nexthdr != IPPROTO_UDP)
            return 0;
        const __u32* a = ingress ? ip6->saddr.in6_u.u6_addr32 : ip6->daddr.in6_u.u6_addr32;
        addr[0] = a[0];
        addr[1] = a[1];
        addr[2] = a[2];
        addr[3] = a[3];
        ports = (const __u16*)(ip6 + 1);
    } else {
        return 0;
    }
    __builtin_memcpy(k->addr, addr, sizeof(addr));
    k->port = ports[1];
    k->peer_port = ingress ? ports[0] : 0;
    k->proto = IPPROTO_UDP;
    k->loopback = ingress && skb->ifindex == LOOPBACK_IFINDEX;
    k->reserved = 0;
    return 1;
}

static __always_inline int same_flow(const struct cached_flow* a, const struct cached_flow* b)
{
    const __u64 *x = (const __u64*)a, *y = (const __u64*)b;
    return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

/* Whether `k` is the flow last allowed in that direction at this
 * generation: a copy read while no writer ran, or not at all (the caller
 * takes the full path).
 *
 * On x86, whose loads are never reordered with other loads, the count read
 * with plain loads the compiler keeps in place (barrier()) orders the copy
 * between them, as the kernel's own seqcount does there. BPF has no acquire
 * load before 6.15, and a fully ordered atomic read takes instructions the
 * build does not target (-mcpu=v1), so elsewhere the copy is taken under
 * the writers' lock. */
static __always_inline int flow_allowed_before(struct sock_state* c, const struct cached_flow* k, int ingress)
{
    struct cached_flow have;
#if defined(__TARGET_ARCH_x86)
    __u32 seq = *(volatile __u32*)&c->flow_seq;
    if (seq & 1)
        return 0;
    barrier();
    if (ingress)
        have = c->ingress;
    else
        have = c->egress;
    barrier();
    if (*(volatile __u32*)&c->flow_seq != seq)
        return 0;
#else
    bpf_spin_lock(&c->lock);
    if (ingress)
        have = c->ingress;
    else
        have = c->egress;
    bpf_spin_unlock(&c->lock);
#endif
    return same_flow(&have, k);
}

/* Writers take turns under the lock; the count's atomic adds (a locked
 * add, a full barrier, on x86) order its moves around the copy. */
static __always_inline void remember_flow(struct sock_state* c, const struct cached_flow* k, int ingress)
{
    bpf_spin_lock(&c->lock);
    __sync_fetch_and_add(&c->flow_seq, 1);
    if (ingress)
        c->ingress = *k;
    else
        c->egress = *k;
    __sync_fetch_and_add(&c->flow_seq, 1);
    bpf_spin_unlock(&c->lock);
}

/* The sockets that sent a datagram out on the full path lately, per CPU:
 * their cookies, by the cookie's low bits. A socket found here is sending
 * again, and is given its memory; one that sends once (socket(), sendto(),
 * close()) never pays for it. A hint only: a cookie overwritten or torn, or
 * a socket that moved to another CPU, costs one more full path, never a
 * wrong verdict. */
#define DATAGRAM_SENDERS 64

struct datagram_senders {
    __u64 cookie[DATAGRAM_SENDERS];
};

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 1);
    __type(key, __u32);
    __type(value, struct datagram_senders);
} datagram_senders SEC(".maps");

/* A datagram allowed out on the full path from a socket with no memory
 * (one that is not connected). At the socket's second such datagram, its
 * memory is made (making it costs about two full decisions) and remembers
 * its subject (`word`, counted to `session`, whose policy is `policy_id`;
 * SOCK_NAMES is added here when that policy has name rules) and the flow
 * `k`, so that its next datagrams to that peer, and the answers once their
 * flow is allowed, take the fast path. A global function: verified once,
 * not on each of the egress hook's paths. 1 when the memory was made. */
__noinline int aw_datagram_memory(struct __sk_buff* skb, const struct cached_flow* k, __u64 word, __u64 session,
                                  __u32 policy_id)
{
    __u32 zero = 0;
    struct bpf_sock* sk = skb->sk;
    if (!k || !sk)
        return 0;
    __u64 cookie = bpf_get_socket_cookie(skb);
    struct datagram_senders* seen = bpf_map_lookup_elem(&datagram_senders, &zero);
    if (!seen || !cookie)
        return 0;
    __u64* slot = &seen->cookie[cookie & (DATAGRAM_SENDERS - 1)];
    if (*slot != cookie) {
        *slot = cookie;
        return 0;
    }
    if (session && aw_policy_has_names(policy_id))
        word |= SOCK_NAMES;
    struct sock_state* c = bpf_sk_storage_get(&sock_cache, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
    if (!c)
        return 0;
    if (session && c->session != session)
        fold_counts(c, session);
    write_word(c, word);
    remember_flow(c, k, 0);
    return 1;
}

#endif /* AUTHWALL_LIB_SOCK_CACHE_BPF_H */
