// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * authwall data plane: cgroup BPF programs that enforce a session's policy.
 *
 * Every program starts the same way: find the session the current task (or,
 * for packets, the socket) belongs to by walking the cgroup ancestors that
 * can hold a session; no session → pass untouched. Then consult the active
 * policy generation (an LPM trie reached through a one-slot map-in-map).
 * See docs/ARCHITECTURE.md for the rule semantics.
 */
#include "vmlinux.h"
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "authwall_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define AF_INET 2
#define AF_INET6 10
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10
#define NSEC_PER_SEC 1000000000ULL
#define LOOPBACK_IFINDEX 1 /* lo is ifindex 1 in every network namespace */

/* Programs return 1 to let the operation or packet through, 0 to refuse it
 * (EPERM for syscalls, drop for packets). */
#define PASS 1
#define REFUSE 0

/* ------------------------------------------------------------------ maps */

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

/* session_levels[l] != 0 when some session cgroup lives at level l. Written
 * only by userspace (set, never cleared while sessions may exist). */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, AW_MAX_CGROUP_LEVEL + 1);
    __type(key, __u32);
    __type(value, __u8);
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

/* Complete BTF for the ABI structs that no map declares with __type(), so
 * the object describes the whole ABI (tests compare it with the C++ side). */
const volatile struct aw_event aw_abi_event = {};
const volatile struct aw_rule_key aw_abi_rule_key = {};
const volatile struct aw_rule_val aw_abi_rule_val = {};

/* ------------------------------------------------------- who is acting */

/* Who an operation or packet belongs to: the login session its cgroup (or
 * an ancestor) is in, and the user layer of its uid. Either may be absent;
 * when both are, the cgroup is unknown to authwall. */
struct subject {
    struct aw_session *session;
    __u64 session_id; /* the session cgroup's id; 0 without a session */
    __u64 cgroup_id;  /* the offender's own cgroup id */
    struct aw_user *user;
    __u32 uid;
};

/* Outermost session first: a nested cgroup can never loosen the policy of
 * the session that contains it. One walk, two sources of ancestor ids: the
 * task's (syscall hooks) and the socket's (packet hooks). Each program type
 * may call only its own helper, and older verifiers (6.1) do not prune a
 * branch on the context pointer, so the two are separate functions. */
#define FIND_SESSION(s, ancestor_id, own_id)                                       \
    for (__u32 level = 1; level <= AW_MAX_CGROUP_LEVEL; level++) {                 \
        __u32 key = level;                                                         \
        __u8 *used = bpf_map_lookup_elem(&session_levels, &key);                   \
        if (!used || !*used)                                                       \
            continue;                                                              \
        __u64 id = ancestor_id;                                                    \
        if (!id)                                                                   \
            break; /* the cgroup is shallower than this level */                   \
        struct aw_session *found = bpf_map_lookup_elem(&sessions, &id);            \
        if (found) {                                                               \
            (s)->session = found;                                                  \
            (s)->session_id = id;                                                  \
            (s)->cgroup_id = own_id;                                               \
            break;                                                                 \
        }                                                                          \
    }

static __always_inline void find_session_of_task(struct subject *s)
{
    FIND_SESSION(s, bpf_get_current_ancestor_cgroup_id(level), bpf_get_current_cgroup_id());
}

static __always_inline void find_session_of_skb(struct __sk_buff *skb, struct subject *s)
{
    FIND_SESSION(s, bpf_skb_ancestor_cgroup_id(skb, level), bpf_skb_cgroup_id(skb));
}

/* Root (uid 0) is never in the user layer: userspace refuses to write it. */
static __always_inline void find_user(struct subject *s, __u32 uid)
{
    s->uid = uid;
    if (uid)
        s->user = bpf_map_lookup_elem(&users, &uid);
}

/* Syscall hooks: the task's cgroup and its *real* uid, so a setuid helper
 * (effective uid 0, real uid the user's) stays in its user's layer. */
static __always_inline int find_subject_of_task(struct subject *s)
{
    find_session_of_task(s);
    find_user(s, (__u32)bpf_get_current_uid_gid());
    return s->session || s->user;
}

/* Packet hooks: the socket's cgroup and its owner's uid. */
static __always_inline int find_subject_of_skb(struct __sk_buff *skb, struct subject *s)
{
    find_session_of_skb(skb, s);
    find_user(s, bpf_get_socket_uid(skb));
    return s->session || s->user;
}

static __always_inline int unknown_cgroup_verdict(void)
{
    __u32 zero = 0;
    struct aw_settings *cfg = bpf_map_lookup_elem(&settings, &zero);
    if (cfg && cfg->unknown_verdict == AW_VERDICT_DENY)
        return REFUSE;
    return PASS;
}

/* ---------------------------------------------------------------- events */

struct flow {
    __u8 addr[16]; /* v6 or v4-mapped */
    __u16 port;    /* network byte order */
    __u8 proto;
    __u8 family;
};

static __always_inline void count_denial(const struct subject *s, __u32 hook, __u32 layer)
{
    if (s->session) {
        struct aw_stats *st = bpf_map_lookup_elem(&session_stats, &s->session_id);
        if (st && hook < AW_HOOK_COUNT)
            __sync_fetch_and_add(&st->denied[hook], 1);
    }
    if (layer == AW_LAYER_USER && s->user)
        __sync_fetch_and_add(&s->user->denied, 1);
}

struct decision {
    __u32 verdict; /* AW_VERDICT_ALLOW / AW_VERDICT_DENY */
    __u32 reason;  /* enum aw_reason when denied */
    __u32 policy_id;
    __u32 layer; /* enum aw_layer that refused */
};

static __always_inline void emit_denial(const struct subject *s, const struct decision *d, __u32 hook,
                                        const struct flow *f, __u32 pid)
{
    count_denial(s, hook, d->layer);

    __u32 zero = 0;
    struct aw_settings *cfg = bpf_map_lookup_elem(&settings, &zero);
    struct aw_event_budget *budget = bpf_map_lookup_elem(&event_budget, &zero);
    if (!cfg || !budget || cfg->events_per_sec == 0)
        return;
    __u64 now = bpf_ktime_get_ns();
    if (now - budget->window_start_ns >= NSEC_PER_SEC) {
        budget->window_start_ns = now;
        budget->emitted = 0;
    }
    if (budget->emitted >= cfg->events_per_sec) {
        budget->suppressed++;
        return;
    }
    struct aw_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        budget->suppressed++;
        return;
    }
    budget->emitted++;
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
    e->reserved = 0;
    __builtin_memcpy(e->addr, f->addr, sizeof(e->addr));
    e->uid = s->uid;
    e->reserved2 = 0;
    bpf_ringbuf_submit(e, 0);
}

static __always_inline __u32 current_pid(void)
{
    return bpf_get_current_pid_tgid() >> 32;
}

/* --------------------------------------------------------------- policy */

/* Finds the meta entry of the session's policy in the active trie, falling
 * back to the fallback policy (id 0). Returns NULL when neither exists. */
static __always_inline struct aw_rule_val *policy_meta(void *trie, __u32 *policy_id)
{
    struct aw_rule_key key = {};
    key.prefixlen = AW_RULE_KEY_FIXED_BITS + 128;
    key.policy_id = bpf_htonl(*policy_id);
    key.dir = AW_DIR_META;
    struct aw_rule_val *meta = bpf_map_lookup_elem(trie, &key);
    if (meta)
        return meta;
    *policy_id = AW_POLICY_FALLBACK;
    key.policy_id = bpf_htonl(AW_POLICY_FALLBACK);
    return bpf_map_lookup_elem(trie, &key);
}

/* Three probes: (proto, port), (proto, any port), (any proto, any port).
 * Any DENY wins, then any ALLOW, else AW_VERDICT_NONE. */
static __always_inline __u32 match_rules(void *trie, __u32 policy_id, __u8 dir, const struct flow *f)
{
    struct aw_rule_key key = {};
    key.prefixlen = AW_RULE_KEY_FIXED_BITS + 128;
    key.policy_id = bpf_htonl(policy_id);
    key.dir = dir;
    __builtin_memcpy(key.addr, f->addr, sizeof(key.addr));

    __u32 seen = AW_VERDICT_NONE;
    struct aw_rule_val *v;

    key.proto = f->proto;
    key.port = f->port;
    if (f->proto && f->port) {
        v = bpf_map_lookup_elem(trie, &key);
        if (v) {
            if (v->verdict == AW_VERDICT_DENY)
                return AW_VERDICT_DENY;
            seen = v->verdict;
        }
    }
    key.port = 0;
    if (f->proto) {
        v = bpf_map_lookup_elem(trie, &key);
        if (v) {
            if (v->verdict == AW_VERDICT_DENY)
                return AW_VERDICT_DENY;
            if (v->verdict == AW_VERDICT_ALLOW)
                seen = AW_VERDICT_ALLOW;
        }
    }
    key.proto = 0;
    v = bpf_map_lookup_elem(trie, &key);
    if (v) {
        if (v->verdict == AW_VERDICT_DENY)
            return AW_VERDICT_DENY;
        if (v->verdict == AW_VERDICT_ALLOW)
            seen = AW_VERDICT_ALLOW;
    }
    return seen;
}

static __always_inline void *active_trie(void)
{
    __u32 zero = 0;
    return bpf_map_lookup_elem(&policy_gen, &zero);
}

/* One layer's view of a subject: the policy it enforces, whether it is
 * revoked, and the login's address (for from_rhost_only; none outside a
 * login: the user layer of a process outside any login has no address). */
struct layer {
    __u32 id; /* enum aw_layer */
    __u32 policy_id;
    __u32 revoked;
    const struct aw_session *login; /* for the rhost; NULL: no address */
};

static __always_inline struct layer login_layer(const struct subject *s)
{
    struct layer l = {.id = AW_LAYER_LOGIN, .policy_id = s->session->policy_id,
                      .revoked = s->session->flags & AW_SESSION_REVOKED, .login = s->session};
    return l;
}

/* Inside a login, the user layer judges with the login's address too: the
 * address is a fact of the flow's login, not of the policy. */
static __always_inline struct layer user_layer(const struct subject *s)
{
    struct layer l = {.id = AW_LAYER_USER, .policy_id = s->user->policy_id,
                      .revoked = s->user->flags & AW_USER_REVOKED, .login = s->session};
    return l;
}

/* Whether the user layer must be consulted after the login layer allowed:
 * always outside a login; inside one only when it enforces another policy
 * (the same policy would give the same answer) or is revoked. */
static __always_inline int user_layer_applies(const struct subject *s)
{
    if (!s->user)
        return 0;
    if (!s->session)
        return 1;
    return s->user->policy_id != s->session->policy_id || (s->user->flags & AW_USER_REVOKED);
}

static __always_inline struct decision deny(const struct layer *l, __u32 policy_id, __u32 reason)
{
    struct decision d = {.verdict = AW_VERDICT_DENY, .reason = reason, .policy_id = policy_id, .layer = l->id};
    return d;
}

static __always_inline struct decision allow(const struct layer *l, __u32 policy_id)
{
    struct decision d = {.verdict = AW_VERDICT_ALLOW, .policy_id = policy_id, .layer = l->id};
    return d;
}

/* The revocation and policy checks every decision starts with. Returns the
 * meta entry, or NULL with *d set to the refusal. */
static __always_inline struct aw_rule_val *layer_meta(const struct layer *l, void **trie, __u32 *policy_id,
                                                       struct decision *d)
{
    *policy_id = l->policy_id;
    if (l->revoked) {
        *d = deny(l, *policy_id, AW_REASON_REVOKED);
        return 0;
    }
    *trie = active_trie();
    struct aw_rule_val *meta = *trie ? policy_meta(*trie, policy_id) : 0;
    if (!meta)
        *d = deny(l, *policy_id, AW_REASON_NO_POLICY);
    return meta;
}

static __always_inline struct decision decide(const struct layer *l, __u8 dir, const struct flow *f)
{
    struct decision d;
    void *trie = 0;
    __u32 policy_id;
    struct aw_rule_val *meta = layer_meta(l, &trie, &policy_id, &d);
    if (!meta)
        return d;
    __u32 m = match_rules(trie, policy_id, dir, f);
    if (m == AW_VERDICT_DENY)
        return deny(l, policy_id, AW_REASON_RULE);
    if (m == AW_VERDICT_ALLOW)
        return allow(l, policy_id);
    __u8 def = dir == AW_DIR_BIND ? meta->bind_default : meta->verdict;
    if (def == AW_VERDICT_ALLOW)
        return allow(l, policy_id);
    return deny(l, policy_id, AW_REASON_DEFAULT);
}

static __always_inline int is_login_address(const struct layer *l, const struct flow *f)
{
    const struct aw_session *s = l->login;
    if (!s || !(s->flags & AW_SESSION_HAS_RHOST))
        return 0;
    for (int i = 0; i < 16; i++)
        if (s->rhost[i] != f->addr[i])
            return 0;
    return 1;
}

/* A new inbound flow (TCP SYN, or any datagram) from f->addr to local port
 * f->port. Explicit deny wins; then allow rules and loopback; then the
 * login's own address when the policy pins ingress to it; datagrams are also
 * admitted from peers the egress policy lets the session talk to (replies);
 * else the ingress default, which is deny when ingress is pinned to the
 * rhost. */
static __always_inline struct decision decide_ingress(const struct layer *l, const struct flow *f,
                                                      const struct flow *reply, int is_datagram, int loopback)
{
    struct decision d;
    void *trie = 0;
    __u32 policy_id;
    struct aw_rule_val *meta = layer_meta(l, &trie, &policy_id, &d);
    if (!meta)
        return d;
    __u32 m = match_rules(trie, policy_id, AW_DIR_INGRESS, f);
    if (m == AW_VERDICT_DENY)
        return deny(l, policy_id, AW_REASON_RULE);
    /* Flows over loopback start on this host: they are governed by the
     * sender's egress policy, not by the session's network exposure. */
    if (loopback || m == AW_VERDICT_ALLOW)
        return allow(l, policy_id);
    int pinned = meta->flags & AW_POLICY_INGRESS_FROM_RHOST;
    if (pinned && is_login_address(l, f))
        return allow(l, policy_id);
    if (is_datagram) {
        __u32 e = match_rules(trie, policy_id, AW_DIR_EGRESS, reply);
        if (e == AW_VERDICT_ALLOW || (e == AW_VERDICT_NONE && meta->verdict == AW_VERDICT_ALLOW))
            return allow(l, policy_id);
    }
    if (!pinned && meta->ingress_default == AW_VERDICT_ALLOW)
        return allow(l, policy_id);
    return deny(l, policy_id, pinned ? AW_REASON_NOT_RHOST : AW_REASON_DEFAULT);
}

/* Both layers: the login's policy, then the user's. The first refusal is
 * the answer. */
static __always_inline struct decision judge(const struct subject *s, __u8 dir, const struct flow *f)
{
    struct decision d = {.verdict = AW_VERDICT_ALLOW};
    if (s->session) {
        struct layer l = login_layer(s);
        d = decide(&l, dir, f);
        if (d.verdict != AW_VERDICT_ALLOW)
            return d;
    }
    if (user_layer_applies(s)) {
        struct layer l = user_layer(s);
        d = decide(&l, dir, f);
    }
    return d;
}

static __always_inline struct decision judge_ingress(const struct subject *s, const struct flow *f,
                                                     const struct flow *reply, int is_datagram, int loopback)
{
    struct decision d = {.verdict = AW_VERDICT_ALLOW};
    if (s->session) {
        struct layer l = login_layer(s);
        d = decide_ingress(&l, f, reply, is_datagram, loopback);
        if (d.verdict != AW_VERDICT_ALLOW)
            return d;
    }
    if (user_layer_applies(s)) {
        struct layer l = user_layer(s);
        d = decide_ingress(&l, f, reply, is_datagram, loopback);
    }
    return d;
}

/* Every packet of a revoked login or user is refused, established flows
 * included; so is a packet whose flow cannot be read. */
static __always_inline int packet_precheck(const struct subject *s, int parsed, struct decision *d)
{
    if (s->session && (s->session->flags & AW_SESSION_REVOKED)) {
        struct layer l = login_layer(s);
        *d = deny(&l, l.policy_id, AW_REASON_REVOKED);
        return 0;
    }
    if (s->user && (s->user->flags & AW_USER_REVOKED)) {
        struct layer l = user_layer(s);
        *d = deny(&l, l.policy_id, AW_REASON_REVOKED);
        return 0;
    }
    if (!parsed) {
        struct layer l = s->session ? login_layer(s) : user_layer(s);
        *d = deny(&l, l.policy_id, AW_REASON_MALFORMED);
        return 0;
    }
    return 1;
}

/* Socket creation, for one layer: revoked, no policy, a denied family, or
 * SOCK_RAW in an inet family under deny_families = ["raw"]. 0: allowed. */
static __always_inline __u32 socket_refusal(const struct layer *l, __u32 family, __u32 type, __u32 *policy_id)
{
    struct decision d;
    void *trie = 0;
    struct aw_rule_val *meta = layer_meta(l, &trie, policy_id, &d);
    if (!meta)
        return d.reason;
    if (family < 64 && (meta->denied_families & (1ULL << family)))
        return AW_REASON_FAMILY;
    if ((meta->flags & AW_POLICY_DENY_RAW) && type == 3 /* SOCK_RAW */ && (family == AF_INET || family == AF_INET6))
        return AW_REASON_FAMILY;
    return 0;
}

static __always_inline struct decision judge_socket(const struct subject *s, __u32 family, __u32 type)
{
    struct decision d = {.verdict = AW_VERDICT_ALLOW};
    __u32 policy_id = 0, reason;
    if (s->session) {
        struct layer l = login_layer(s);
        reason = socket_refusal(&l, family, type, &policy_id);
        if (reason)
            return deny(&l, policy_id, reason);
    }
    if (user_layer_applies(s)) {
        struct layer l = user_layer(s);
        reason = socket_refusal(&l, family, type, &policy_id);
        if (reason)
            return deny(&l, policy_id, reason);
    }
    return d;
}

/* ------------------------------------------------------ address helpers */

static __always_inline void set_v4(struct flow *f, __u32 addr_be)
{
    __builtin_memset(f->addr, 0, 10);
    f->addr[10] = 0xff;
    f->addr[11] = 0xff;
    __builtin_memcpy(&f->addr[12], &addr_be, 4);
    f->family = AF_INET;
}

static __always_inline void set_v6_words(struct flow *f, const __u32 *w)
{
    __u32 tmp[4];
    tmp[0] = w[0];
    tmp[1] = w[1];
    tmp[2] = w[2];
    tmp[3] = w[3];
    __builtin_memcpy(f->addr, tmp, 16);
    f->family = AF_INET6;
}

static __always_inline __u8 sock_proto(struct bpf_sock_addr *ctx)
{
    if (ctx->protocol)
        return ctx->protocol;
    return ctx->type == 1 /* SOCK_STREAM */ ? IPPROTO_TCP : IPPROTO_UDP;
}

/* ------------------------------------------------------ syscall hooks */

static __always_inline int sock_addr_hook(struct bpf_sock_addr *ctx, __u32 hook, __u8 dir, int v6)
{
    struct subject sub = {};
    if (!find_subject_of_task(&sub))
        return unknown_cgroup_verdict();

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

    struct decision d = judge(&sub, dir, &f);
    if (d.verdict == AW_VERDICT_ALLOW)
        return PASS;
    emit_denial(&sub, &d, hook, &f, current_pid());
    return REFUSE;
}

SEC("cgroup/connect4")
int aw_connect4(struct bpf_sock_addr *ctx)
{
    return sock_addr_hook(ctx, AW_HOOK_CONNECT4, AW_DIR_EGRESS, 0);
}

SEC("cgroup/connect6")
int aw_connect6(struct bpf_sock_addr *ctx)
{
    return sock_addr_hook(ctx, AW_HOOK_CONNECT6, AW_DIR_EGRESS, 1);
}

SEC("cgroup/sendmsg4")
int aw_sendmsg4(struct bpf_sock_addr *ctx)
{
    return sock_addr_hook(ctx, AW_HOOK_SENDMSG4, AW_DIR_EGRESS, 0);
}

SEC("cgroup/sendmsg6")
int aw_sendmsg6(struct bpf_sock_addr *ctx)
{
    return sock_addr_hook(ctx, AW_HOOK_SENDMSG6, AW_DIR_EGRESS, 1);
}

SEC("cgroup/bind4")
int aw_bind4(struct bpf_sock_addr *ctx)
{
    return sock_addr_hook(ctx, AW_HOOK_BIND4, AW_DIR_BIND, 0);
}

SEC("cgroup/bind6")
int aw_bind6(struct bpf_sock_addr *ctx)
{
    return sock_addr_hook(ctx, AW_HOOK_BIND6, AW_DIR_BIND, 1);
}

SEC("cgroup/sock_create")
int aw_sock_create(struct bpf_sock *ctx)
{
    struct subject sub = {};
    if (!find_subject_of_task(&sub))
        return unknown_cgroup_verdict();
    struct decision d = judge_socket(&sub, ctx->family, ctx->type);
    if (d.verdict == AW_VERDICT_ALLOW)
        return PASS;
    struct flow f = {};
    f.family = ctx->family;
    f.proto = ctx->type;
    emit_denial(&sub, &d, AW_HOOK_SOCK_CREATE, &f, current_pid());
    return REFUSE;
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
    if (d.verdict == AW_VERDICT_ALLOW)
        return PASS;
    struct flow f = {};
    f.family = family;
    f.proto = type;
    emit_denial(&sub, &d, AW_HOOK_SOCK_CREATE, &f, current_pid());
    return REFUSE;
}

/* -------------------------------------------------------- packet hooks */

struct packet {
    struct flow src;
    struct flow dst;
    __u8 tcp_flags;
    __u8 is_tcp;
    __u8 is_datagram; /* stateless: a reply is judged by the egress policy */
};

/* IPv6 extension headers and ICMPv6: macros in the uapi headers, absent
 * from vmlinux.h. */
#define IPPROTO_HOPOPTS 0
#define IPPROTO_ROUTING 43
#define IPPROTO_FRAGMENT 44
#define IPPROTO_ICMPV6 58
#define IPPROTO_DSTOPTS 60
#define IPV6_MAX_EXT_HEADERS 8
#define IP_OFFSET 0x1FFF

/* Transport protocols whose header starts with the source and destination
 * ports (TCP, UDP, DCCP, SCTP, UDP-Lite). */
static __always_inline int has_ports(__u8 proto)
{
    return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_DCCP || proto == IPPROTO_SCTP ||
           proto == IPPROTO_UDPLITE;
}

/* Walks the IPv6 extension headers from *off (just past the fixed header)
 * to the transport header. Returns 1 with *proto and *off at the transport
 * header, 2 for a later fragment (no transport header), 0 when the chain
 * is unreadable or longer than we look (the caller fails closed: a header
 * we cannot see past must not hide a flow from the policy). */
static __always_inline int skip_ipv6_ext(struct __sk_buff *skb, __u8 *proto, __u32 *off)
{
    for (int i = 0; i < IPV6_MAX_EXT_HEADERS; i++) {
        __u8 h[2];
        switch (*proto) {
        case IPPROTO_HOPOPTS:
        case IPPROTO_ROUTING:
        case IPPROTO_DSTOPTS:
            if (bpf_skb_load_bytes(skb, *off, h, sizeof(h)))
                return 0;
            *proto = h[0];
            *off += ((__u32)h[1] + 1) * 8;
            break;
        case IPPROTO_AH:
            if (bpf_skb_load_bytes(skb, *off, h, sizeof(h)))
                return 0;
            *proto = h[0];
            *off += ((__u32)h[1] + 2) * 4;
            break;
        case IPPROTO_FRAGMENT: {
            __u8 frag[4];
            if (bpf_skb_load_bytes(skb, *off, frag, sizeof(frag)))
                return 0;
            *proto = frag[0];
            *off += 8;
            if (((frag[2] << 8) | frag[3]) & 0xFFF8)
                return 2;
            break;
        }
        default:
            return 1;
        }
    }
    return 0;
}

/* Parses the IP and transport headers. Returns 1 when the flow is known
 * (addresses, protocol, ports where the protocol has them), 0 when it is
 * not: not IP, truncated, or hidden behind headers we do not walk. A session
 * fails closed on 0. */
static __always_inline int parse_packet(struct __sk_buff *skb, struct packet *p)
{
    __u32 l4_off;
    __u8 proto;
    int first_fragment = 1;
    if (skb->protocol == bpf_htons(ETH_P_IP)) {
        struct iphdr ip;
        if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) || ip.ihl < 5)
            return 0;
        set_v4(&p->src, ip.saddr);
        set_v4(&p->dst, ip.daddr);
        proto = ip.protocol;
        l4_off = ip.ihl * 4;
        first_fragment = (bpf_ntohs(ip.frag_off) & IP_OFFSET) == 0;
    } else if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr ip6;
        if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)))
            return 0;
        set_v6_words(&p->src, ip6.saddr.in6_u.u6_addr32);
        set_v6_words(&p->dst, ip6.daddr.in6_u.u6_addr32);
        proto = ip6.nexthdr;
        l4_off = sizeof(ip6);
        int r = skip_ipv6_ext(skb, &proto, &l4_off);
        if (r == 0)
            return 0;
        first_fragment = r == 1;
    } else {
        return 0;
    }
    p->src.proto = proto;
    p->dst.proto = proto;
    p->is_tcp = proto == IPPROTO_TCP;
    p->is_datagram = proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE || proto == IPPROTO_ICMP ||
                     proto == IPPROTO_ICMPV6;
    /* A later fragment carries no transport header. These hooks run before
     * fragmentation (egress) and after reassembly (ingress), so only a
     * crafted packet is one: refuse it rather than guess its ports. */
    if (!first_fragment)
        return 0;
    if (has_ports(proto)) {
        __u16 ports[2];
        if (bpf_skb_load_bytes(skb, l4_off, ports, sizeof(ports)))
            return 0;
        p->src.port = ports[0];
        p->dst.port = ports[1];
    }
    if (p->is_tcp && bpf_skb_load_bytes(skb, l4_off + 13, &p->tcp_flags, 1))
        return 0;
    return 1;
}

static __always_inline int is_new_tcp_flow(const struct packet *p)
{
    return (p->tcp_flags & TCP_FLAG_SYN) && !(p->tcp_flags & TCP_FLAG_ACK);
}

/* Whether the packet leaves through a kernel TCP socket, whose flows were
 * judged at connect() (or at the inbound SYN, for the SYN-ACK a listener
 * sends). A raw socket writing TCP segments is judged per packet. */
static __always_inline int from_tcp_socket(struct __sk_buff *skb)
{
    struct bpf_sock *sk = skb->sk;
    if (!sk)
        return 1;
    sk = bpf_sk_fullsock(sk);
    return !sk || sk->type == 1 /* SOCK_STREAM */;
}

static __always_inline void count_traffic(const struct subject *s, struct __sk_buff *skb, int in)
{
    if (!s->session)
        return;
    struct aw_stats *st = bpf_map_lookup_elem(&session_stats, &s->session_id);
    if (!st)
        return;
    if (in) {
        __sync_fetch_and_add(&st->bytes_in, skb->len);
        __sync_fetch_and_add(&st->packets_in, 1);
    } else {
        __sync_fetch_and_add(&st->bytes_out, skb->len);
        __sync_fetch_and_add(&st->packets_out, 1);
    }
}

SEC("cgroup_skb/egress")
int aw_egress(struct __sk_buff *skb)
{
    struct subject sub = {};
    if (!find_subject_of_skb(skb, &sub))
        return unknown_cgroup_verdict();

    struct packet p = {};
    struct decision d = {.verdict = AW_VERDICT_ALLOW};
    int parsed = parse_packet(skb, &p);
    if (!packet_precheck(&sub, parsed, &d)) {
        /* refused: revoked or unreadable */
    } else if (!p.is_tcp || !from_tcp_socket(skb)) {
        /* TCP is decided once, at connect() (or at the inbound SYN): a
         * second look at the SYN here could disagree with connect() across a
         * policy swap and leave the caller retransmitting into a drop. What
         * has no connect/sendmsg hook (ICMP, raw sockets) is decided here. */
        d = judge(&sub, AW_DIR_EGRESS, &p.dst);
    }
    if (d.verdict != AW_VERDICT_ALLOW) {
        emit_denial(&sub, &d, AW_HOOK_EGRESS, &p.dst, 0);
        return REFUSE;
    }
    count_traffic(&sub, skb, 0);
    return PASS;
}

SEC("cgroup_skb/ingress")
int aw_ingress(struct __sk_buff *skb)
{
    struct subject sub = {};
    if (!find_subject_of_skb(skb, &sub))
        return unknown_cgroup_verdict();

    struct packet p = {};
    struct decision d = {.verdict = AW_VERDICT_ALLOW};
    int parsed = parse_packet(skb, &p);
    /* The inbound flow: the peer's address and the local port it reaches;
     * a datagram may also be a reply from a peer the session may talk to. */
    struct flow in = p.src;
    in.port = p.dst.port;
    if (!packet_precheck(&sub, parsed, &d)) {
        /* refused: revoked or unreadable */
    } else if (!p.is_tcp || is_new_tcp_flow(&p)) {
        d = judge_ingress(&sub, &in, &p.src, p.is_datagram, skb->ifindex == LOOPBACK_IFINDEX);
    }
    if (d.verdict != AW_VERDICT_ALLOW) {
        emit_denial(&sub, &d, AW_HOOK_INGRESS, &in, 0);
        return REFUSE;
    }
    count_traffic(&sub, skb, 1);
    return PASS;
}
