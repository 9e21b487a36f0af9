/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The policy decision: a flow against the rules of a layer's policy in the
 * active generation (an LPM trie reached through a one-slot map-in-map), and
 * both layers of a subject in turn. See docs/ARCHITECTURE.md for the rule
 * semantics.
 */
#ifndef AUTHWALL_LIB_DECISION_BPF_H
#define AUTHWALL_LIB_DECISION_BPF_H

#include "lib/events.bpf.h"
#include "lib/names.bpf.h"

/* Finds the meta entry of the session's policy in the active trie, falling
 * back to the fallback policy (id 0). Returns NULL when neither exists. */
static __always_inline struct aw_rule_val* policy_meta(void* trie, __u32* policy_id)
{
    struct aw_rule_key key = {};
    key.prefixlen = AW_RULE_KEY_FIXED_BITS + 128;
    key.policy_id = bpf_htonl(*policy_id);
    key.dir = AW_DIR_META;
    struct aw_rule_val* meta = bpf_map_lookup_elem(trie, &key);
    if (meta)
        return meta;
    *policy_id = AW_POLICY_FALLBACK;
    key.policy_id = bpf_htonl(AW_POLICY_FALLBACK);
    return bpf_map_lookup_elem(trie, &key);
}

/* The rule a probe found: its number and flags, for events. */
struct rule_hit {
    __u32 rule;
    __u32 flags; /* AW_RULE_* */
};

static __always_inline void note_hit(struct rule_hit* hit, const struct aw_rule_val* v)
{
    hit->rule = v->rule;
    hit->flags = v->rule_flags;
}

/* One probe's answer: 1 for a deny (the answer, noted in *hit); an allow is
 * noted when it is the first, the most specific. */
static __always_inline int take_probe(const struct aw_rule_val* v, __u32* seen, struct rule_hit* hit)
{
    if (!v)
        return 0;
    if (v->verdict == AW_VERDICT_DENY) {
        note_hit(hit, v);
        return 1;
    }
    if (v->verdict == AW_VERDICT_ALLOW && *seen != AW_VERDICT_ALLOW) {
        note_hit(hit, v);
        *seen = AW_VERDICT_ALLOW;
    }
    return 0;
}

/* The probe of the block of 2^bits ports that holds `port` (network order),
 * when the policy uses that block size: 1 for a deny, as take_probe. */
static __always_inline int probe_block(void* trie, struct aw_rule_key* key, __u16 port, __u32 bits, __u32 classes,
                                       __u32* seen, struct rule_hit* hit)
{
    if (!(classes & AW_POLICY_BLOCK_SIZE(bits)))
        return 0;
    key->port_bits = bits;
    key->port = bpf_htons(bpf_ntohs(port) & (__u16)(0xffffu << bits));
    return take_probe(bpf_map_lookup_elem(trie, key), seen, hit);
}

/* The probes of one flow, each only when the policy has rules of that class
 * in `dir` (the meta entry's flags): (proto, port); (proto, the block of
 * 2^b ports that holds port, b) for each block size b in use; (proto, any
 * port); (any proto, any port). Any DENY wins, then any ALLOW, else
 * AW_VERDICT_NONE (bpf/authwall_abi.h, aw_rule_key). *hit is the deny, or
 * the most specific allow. */
static __always_inline __u32 match_rules(void* trie, const struct aw_rule_val* meta, __u32 policy_id, __u8 dir,
                                         const struct flow* f, struct rule_hit* hit)
{
    __u32 classes = meta->flags;
    struct aw_rule_key key = {};
    key.prefixlen = AW_RULE_KEY_FIXED_BITS + 128;
    key.policy_id = bpf_htonl(policy_id);
    key.dir = dir;
    __builtin_memcpy(key.addr, f->addr, sizeof(key.addr));

    __u32 seen = AW_VERDICT_NONE;

    key.proto = f->proto;
    key.port = f->port;
    if (f->proto && f->port && (classes & AW_POLICY_HAS_CLASS(dir, AW_CLASS_PORT)))
        if (take_probe(bpf_map_lookup_elem(trie, &key), &seen, hit))
            return AW_VERDICT_DENY;
    if (f->proto && f->port && (classes & AW_POLICY_HAS_BLOCKS(dir))) {
        /* The block sizes the compiler makes (kPortBlockStep = 4): 16, 256
         * and 4096 ports. Three straight probes: a loop over every size
         * is more than the 6.1 verifier takes at every inlined decision. */
        if (probe_block(trie, &key, f->port, 4, classes, &seen, hit) ||
            probe_block(trie, &key, f->port, 8, classes, &seen, hit) ||
            probe_block(trie, &key, f->port, 12, classes, &seen, hit))
            return AW_VERDICT_DENY;
        key.port_bits = 0;
    }
    key.port = 0;
    if (f->proto && (classes & AW_POLICY_HAS_CLASS(dir, AW_CLASS_PROTO)))
        if (take_probe(bpf_map_lookup_elem(trie, &key), &seen, hit))
            return AW_VERDICT_DENY;
    key.proto = 0;
    if ((classes & AW_POLICY_HAS_CLASS(dir, AW_CLASS_ANY)) && take_probe(bpf_map_lookup_elem(trie, &key), &seen, hit))
        return AW_VERDICT_DENY;
    return seen;
}

/* What match_rhost_rules needs besides its pointers, in one argument (a
 * subprogram takes five): the policy id, the direction, and the verdict of
 * the direction's own rules. */
#define RHOST_ASK(policy_id, dir, seen) ((__u64)(policy_id) | (__u64)(dir) << 32 | (__u64)(seen) << 40)

/* One probe of a $rhost rule class: (proto, port, port_bits) on `key`. */
static __always_inline int probe_rhost(void* trie, struct aw_rule_key* key, __u8 proto, __u16 port, __u8 bits,
                                       __u32* seen, struct rule_hit* hit)
{
    key->proto = proto;
    key->port = port;
    key->port_bits = bits;
    return take_probe(bpf_map_lookup_elem(trie, key), seen, hit);
}

/* The $rhost rules of a direction (entries of dir AW_DIR_RHOST | dir, any
 * address) for a flow whose address is the login's own, after the
 * direction's rules found no deny (`ask`: RHOST_ASK). Returns the verdict of
 * both, a deny winning: *hit becomes the deny, or the most specific $rhost
 * allow when the direction's rules allowed nothing.
 *
 * A subprogram, not inlined: its key lives in its own frame, beside the
 * packet parser's, not in the hooks' deepest one (6.1 allows 512 bytes over
 * the call chain, each frame rounded up to 32); and only a policy with
 * $rhost rules in the direction calls it. The same probes as match_rules,
 * but each class and block size probed unconditionally: the verifier walks
 * this body again at every state that calls it, and a class the policy has
 * no rule in finds nothing (a flow without a port probes its protocol's
 * entry twice, and no block starts at port 0). */
static __noinline __u32 match_rhost_rules(void* trie, const struct flow* f, struct rule_hit* hit, __u64 ask)
{
    __u32 seen = (__u32)(ask >> 40) & 0xff;
    struct aw_rule_key key = {};
    key.prefixlen = AW_RULE_KEY_FIXED_BITS + 128;
    key.policy_id = bpf_htonl((__u32)ask);
    key.dir = (__u8)(ask >> 32) | AW_DIR_RHOST;
    __builtin_memcpy(key.addr, f->addr, sizeof(key.addr));
    /* The block sizes the compiler makes (kPortBlockStep = 4). */
    __u16 port = bpf_ntohs(f->port);
    if (probe_rhost(trie, &key, f->proto, f->port, 0, &seen, hit) ||
        probe_rhost(trie, &key, f->proto, bpf_htons(port & 0xfff0), 4, &seen, hit) ||
        probe_rhost(trie, &key, f->proto, bpf_htons(port & 0xff00), 8, &seen, hit) ||
        probe_rhost(trie, &key, f->proto, bpf_htons(port & 0xf000), 12, &seen, hit) ||
        probe_rhost(trie, &key, f->proto, 0, 0, &seen, hit) || probe_rhost(trie, &key, 0, 0, 0, &seen, hit))
        return AW_VERDICT_DENY;
    return seen;
}

static __always_inline void* active_trie(void)
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
    const struct aw_session* login; /* for the rhost; NULL: no address */
};

static __always_inline struct layer login_layer(const struct subject* s)
{
    struct layer l = {.id = AW_LAYER_LOGIN,
                      .policy_id = s->session->policy_id,
                      .revoked = s->session->flags & AW_SESSION_REVOKED,
                      .login = s->session};
    return l;
}

/* Inside a login, the user layer judges with the login's address too: the
 * address is a fact of the flow's login, not of the policy. */
static __always_inline struct layer user_layer(const struct subject* s)
{
    struct layer l = {.id = AW_LAYER_USER,
                      .policy_id = s->user->policy_id,
                      .revoked = s->user->flags & AW_USER_REVOKED,
                      .login = s->session};
    return l;
}

/* Whether the user layer must be consulted after the login layer allowed:
 * always outside a login; inside one only when it enforces another policy
 * (the same policy would give the same answer) or is revoked. */
static __always_inline int user_layer_applies(const struct subject* s)
{
    if (!s->user)
        return 0;
    if (!s->session)
        return 1;
    return s->user->policy_id != s->session->policy_id || (s->user->flags & AW_USER_REVOKED);
}

static __always_inline struct decision deny(const struct layer* l, __u32 policy_id, __u32 reason)
{
    struct decision d = {.verdict = AW_VERDICT_DENY, .reason = reason, .policy_id = policy_id, .layer = l->id};
    return d;
}

/* A refusal by the policy itself (a rule, a default, the rhost pin, a
 * socket family): in audit mode it passes, to be reported. */
static __always_inline struct decision refuse(const struct layer* l, const struct aw_rule_val* meta, __u32 policy_id,
                                              __u32 reason, __u32 rule)
{
    struct decision d = deny(l, policy_id, reason);
    d.rule = rule;
    if (meta->flags & AW_POLICY_AUDIT) {
        d.verdict = AW_VERDICT_ALLOW;
        d.note = AW_EVENT_AUDIT;
    }
    return d;
}

/* An allow that holds only for a while (an address a DNS answer gave the
 * session): the reason field, unused by allows, says so, and the caches of
 * the hooks do not remember it. */
#define ALLOW_TRANSIENT 0xffu

static __always_inline int may_remember(const struct decision* d)
{
    return d->verdict == AW_VERDICT_ALLOW && !d->note && d->reason != ALLOW_TRANSIENT;
}

static __always_inline struct decision allow(const struct layer* l, __u32 policy_id)
{
    struct decision d = {.verdict = AW_VERDICT_ALLOW, .policy_id = policy_id, .layer = l->id};
    return d;
}

/* An allow by a rule, reported when the rule says log = true. */
static __always_inline struct decision allow_by(const struct layer* l, __u32 policy_id, const struct rule_hit* hit)
{
    struct decision d = allow(l, policy_id);
    d.rule = hit->rule;
    if (hit->flags & AW_RULE_LOG)
        d.note = AW_EVENT_LOG;
    return d;
}

/* The revocation and policy checks every decision starts with. Returns the
 * meta entry, or NULL with *d set to the refusal. */
static __always_inline struct aw_rule_val* layer_meta(const struct layer* l, void** trie, __u32* policy_id,
                                                      struct decision* d)
{
    *policy_id = l->policy_id;
    if (l->revoked) {
        *d = deny(l, *policy_id, AW_REASON_REVOKED);
        return 0;
    }
    *trie = active_trie();
    struct aw_rule_val* meta = *trie ? policy_meta(*trie, policy_id) : 0;
    if (!meta)
        *d = deny(l, *policy_id, AW_REASON_NO_POLICY);
    return meta;
}

static __always_inline int is_login_address(const struct layer* l, const struct flow* f)
{
    const struct aw_session* s = l->login;
    if (!s || !(s->flags & AW_SESSION_HAS_RHOST))
        return 0;
    for (int i = 0; i < 16; i++)
        if (s->rhost[i] != f->addr[i])
            return 0;
    return 1;
}

/* A flow against the rules of `dir` (egress or ingress), and when the
 * flow's address is the login's own, against its $rhost rules too (a policy
 * without them in `dir` pays one test of a flag at hand): match_rules'
 * answer for both. */
static __always_inline __u32 match_with_rhost(const struct layer* l, void* trie, const struct aw_rule_val* meta,
                                              __u32 policy_id, __u8 dir, const struct flow* f, struct rule_hit* hit)
{
    __u32 m = match_rules(trie, meta, policy_id, dir, f, hit);
    if (m != AW_VERDICT_DENY && (meta->flags & AW_POLICY_HAS_RHOST(dir)) && is_login_address(l, f))
        m = match_rhost_rules(trie, f, hit, RHOST_ASK(policy_id, dir, m));
    return m;
}

/* What a new inbound flow is judged with besides the flow itself (the
 * peer's address and the local port): the peer as a destination, since a
 * datagram may be a reply, and whether it arrived over loopback. */
struct inbound {
    const struct flow* reply;
    int is_datagram;
    int loopback;
};

/* After the rules of an inbound flow found no deny: loopback and allow rules
 * admit; then the login's own address when the policy pins ingress to it;
 * datagrams are also admitted from peers the egress policy lets the session
 * talk to (replies: by its rules of addresses, not its $rhost rules, whose
 * probes once more here took aw_ingress past the verifier's million
 * instructions on 6.18); else the ingress default, which is deny when
 * ingress is pinned to the rhost. */
static __always_inline struct decision admit_inbound(const struct layer* l, void* trie, __u32 policy_id,
                                                     const struct aw_rule_val* meta, __u32 m,
                                                     const struct rule_hit* hit, const struct flow* f,
                                                     const struct inbound* in)
{
    if (m == AW_VERDICT_ALLOW)
        return allow_by(l, policy_id, hit);
    /* Flows over loopback start on this host: they are governed by the
     * sender's egress policy, not by the session's network exposure. */
    if (in->loopback)
        return allow(l, policy_id);
    int pinned = meta->flags & AW_POLICY_INGRESS_FROM_RHOST;
    if (pinned && is_login_address(l, f))
        return allow(l, policy_id);
    if (in->is_datagram) {
        struct rule_hit reply_hit = {};
        __u32 e = match_rules(trie, meta, policy_id, AW_DIR_EGRESS, in->reply, &reply_hit);
        if (e == AW_VERDICT_ALLOW || (e == AW_VERDICT_NONE && meta->verdict == AW_VERDICT_ALLOW))
            return allow(l, policy_id);
    }
    if (!pinned && meta->ingress_default == AW_VERDICT_ALLOW)
        return allow(l, policy_id);
    return refuse(l, meta, policy_id, pinned ? AW_REASON_NOT_RHOST : AW_REASON_DEFAULT, 0);
}

/* One layer's verdict on a flow: egress and bind (in == NULL: f is the
 * destination, or the local address for bind) or a new inbound flow (f is
 * the peer's address and the local port). An explicit deny always wins. */
static __always_inline struct decision decide(const struct layer* l, __u8 dir, const struct flow* f,
                                              const struct inbound* in)
{
    struct decision d;
    void* trie = 0;
    __u32 policy_id;
    struct aw_rule_val* meta = layer_meta(l, &trie, &policy_id, &d);
    if (!meta)
        return d;
    struct rule_hit hit = {};
    /* Bind has no $rhost rules (its bit is another flag). */
    __u32 m = dir == AW_DIR_BIND ? match_rules(trie, meta, policy_id, dir, f, &hit)
                                 : match_with_rhost(l, trie, meta, policy_id, dir, f, &hit);
    if (m == AW_VERDICT_DENY)
        return refuse(l, meta, policy_id, AW_REASON_RULE, hit.rule);
    if (in)
        return admit_inbound(l, trie, policy_id, meta, m, &hit, f, in);
    if (m == AW_VERDICT_ALLOW)
        return allow_by(l, policy_id, &hit);
    __u8 def = dir == AW_DIR_BIND ? meta->bind_default : meta->verdict;
    if (def == AW_VERDICT_ALLOW)
        return allow(l, policy_id);
    return refuse(l, meta, policy_id, AW_REASON_DEFAULT, 0);
}

/* Which of two layers' allows to report: an audited refusal before a
 * logged match, the login layer's before the user layer's. */
static __always_inline int reports_first(const struct decision* a, const struct decision* b)
{
    return a->note == AW_EVENT_AUDIT || !b->note;
}

/* The login layer refused a flow by its default (or would have, in audit
 * mode): an address one of the session's DNS answers gave it, for a name its
 * policy allows, lets it through after all (lib/names.bpf.h); for an
 * inbound datagram, also as a reply to what the session may send there.
 * Asked here, once per hook, not in decide(): each test there multiplies
 * the states the verifier walks. */
static __always_inline void names_override(const struct subject* s, __u8 dir, const struct flow* f,
                                           const struct inbound* in, struct decision* d)
{
    /* Only a refusal (or an audited one) has a reason; dir is a constant
     * at each inlined call. */
    if (dir == AW_DIR_BIND || d->reason != AW_REASON_DEFAULT)
        return;
    __u64 reply = 0;
    if (in) /* a constant at each inlined call */
        reply = NAME_FLOW_REPLY(in->reply->port) * (__u64)(in->is_datagram != 0);
    __u32 rule = name_allows(s->session_id, d->policy_id, dir, f, reply);
    if (!rule)
        return;
    d->verdict = AW_VERDICT_ALLOW;
    d->note = 0;
    d->rule = rule;
    d->reason = ALLOW_TRANSIENT;
}

/* Both layers: the login's policy, then the user's. The first refusal is
 * the answer; when both allow, the allow to report, if any. */
static __always_inline struct decision judge(const struct subject* s, __u8 dir, const struct flow* f,
                                             const struct inbound* in)
{
    struct decision d = {.verdict = AW_VERDICT_ALLOW};
    if (s->session) {
        struct layer l = login_layer(s);
        d = decide(&l, dir, f, in);
        names_override(s, dir, f, in, &d);
        if (d.verdict != AW_VERDICT_ALLOW)
            return d;
    }
    if (user_layer_applies(s)) {
        struct layer l = user_layer(s);
        struct decision u = decide(&l, dir, f, in);
        if (u.verdict != AW_VERDICT_ALLOW || !s->session || !reports_first(&d, &u))
            d = u;
    }
    return d;
}

/* Every packet of a revoked login or user is refused, established flows
 * included; so is a packet whose flow cannot be read. */
static __always_inline int packet_precheck(const struct subject* s, int parsed, struct decision* d)
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
 * SOCK_RAW in an inet family under deny_families = ["raw"]. */
static __always_inline struct decision decide_socket(const struct layer* l, __u32 family, __u32 type)
{
    struct decision d;
    void* trie = 0;
    __u32 policy_id;
    struct aw_rule_val* meta = layer_meta(l, &trie, &policy_id, &d);
    if (!meta)
        return d;
    if (family < 64 && (meta->denied_families & (1ULL << family)))
        return refuse(l, meta, policy_id, AW_REASON_FAMILY, 0);
    if ((meta->flags & AW_POLICY_DENY_RAW) && type == 3 /* SOCK_RAW */ && (family == AF_INET || family == AF_INET6))
        return refuse(l, meta, policy_id, AW_REASON_FAMILY, 0);
    return allow(l, policy_id);
}

/* The socket-creation decision of both layers (sock_create and the LSM
 * socket_create hook share it, revocation included). */
static __always_inline struct decision judge_socket(const struct subject* s, __u32 family, __u32 type)
{
    struct decision d = {.verdict = AW_VERDICT_ALLOW};
    if (s->session) {
        struct layer l = login_layer(s);
        d = decide_socket(&l, family, type);
        if (d.verdict != AW_VERDICT_ALLOW)
            return d;
    }
    if (user_layer_applies(s)) {
        struct layer l = user_layer(s);
        struct decision u = decide_socket(&l, family, type);
        if (u.verdict != AW_VERDICT_ALLOW || !s->session || !reports_first(&d, &u))
            d = u;
    }
    return d;
}

#endif /* AUTHWALL_LIB_DECISION_BPF_H */
