/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Who is acting: the login session a cgroup (or one of its ancestors) is
 * in, and the user layer of a uid. Either may be absent; when both are,
 * the cgroup is unknown to authwall.
 */
#ifndef AUTHWALL_LIB_SUBJECT_BPF_H
#define AUTHWALL_LIB_SUBJECT_BPF_H

#include "lib/maps.bpf.h"

/* Programs return 1 to let the operation or packet through, 0 to refuse it
 * (EPERM for syscalls, drop for packets). */
#define PASS 1
#define REFUSE 0

struct subject {
    struct aw_session* session;
    __u64 session_id; /* the session cgroup's id; 0 without a session */
    __u64 cgroup_id;  /* the offender's own cgroup id */
    struct aw_user* user;
    __u32 uid;
    __u32 session_level; /* the session cgroup's level; 0 without a session */
};

/* The levels that hold sessions, one bit each. */
static __always_inline __u64 session_levels_in_use(void)
{
    __u32 zero = 0;
    __u64* levels = bpf_map_lookup_elem(&session_levels, &zero);
    return levels ? *(volatile __u64*)levels : 0;
}

/* Outermost session first: a nested cgroup can never loosen the policy of
 * the session that contains it. One walk, two sources of ancestor ids: the
 * task's (syscall hooks) and the socket's (packet hooks). Each program type
 * may call only its own helper, and older verifiers (6.1) do not prune a
 * branch on the context pointer, so the two are separate functions. */
#define FIND_SESSION(s, ancestor_id, own_id)                                                                           \
    __u64 used = session_levels_in_use();                                                                              \
    for (__u32 level = 1; level <= AW_MAX_CGROUP_LEVEL && (used >> level); level++) {                                  \
        if (!(used & (1ULL << level)))                                                                                 \
            continue;                                                                                                  \
        __u64 id = ancestor_id;                                                                                        \
        if (!id)                                                                                                       \
            break; /* the cgroup is shallower than this level */                                                       \
        struct aw_session* found = bpf_map_lookup_elem(&sessions, &id);                                                \
        if (found) {                                                                                                   \
            (s)->session = found;                                                                                      \
            (s)->session_id = id;                                                                                      \
            (s)->session_level = level;                                                                                \
            (s)->cgroup_id = own_id;                                                                                   \
            break;                                                                                                     \
        }                                                                                                              \
    }

static __always_inline void find_session_of_task(struct subject* s)
{
    FIND_SESSION(s, bpf_get_current_ancestor_cgroup_id(level), bpf_get_current_cgroup_id());
}

static __always_inline void find_session_of_skb(struct __sk_buff* skb, struct subject* s)
{
    FIND_SESSION(s, bpf_skb_ancestor_cgroup_id(skb, level), bpf_skb_cgroup_id(skb));
}

/* Root (uid 0) is never in the user layer: userspace refuses to write it. */
static __always_inline void find_user(struct subject* s, __u32 uid)
{
    s->uid = uid;
    if (uid)
        s->user = bpf_map_lookup_elem(&users, &uid);
}

/* Syscall hooks: the task's cgroup and its *real* uid, so a setuid helper
 * (effective uid 0, real uid the user's) stays in its user's layer. */
static __always_inline int find_subject_of_task(struct subject* s)
{
    find_session_of_task(s);
    find_user(s, (__u32)bpf_get_current_uid_gid());
    return s->session || s->user;
}

/* Packet hooks: the socket's cgroup and its owner's uid. */
static __always_inline int find_subject_of_skb(struct __sk_buff* skb, struct subject* s)
{
    find_session_of_skb(skb, s);
    find_user(s, bpf_get_socket_uid(skb));
    return s->session || s->user;
}

static __always_inline int subject_revoked(const struct subject* s)
{
    return (s->session && (s->session->flags & AW_SESSION_REVOKED)) || (s->user && (s->user->flags & AW_USER_REVOKED));
}

static __always_inline int unknown_cgroup_verdict(void)
{
    struct aw_settings* cfg = current_settings();
    if (cfg && cfg->unknown_verdict == AW_VERDICT_DENY)
        return REFUSE;
    return PASS;
}

#endif /* AUTHWALL_LIB_SUBJECT_BPF_H */
