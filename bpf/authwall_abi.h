/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * authwall_abi.h — the one definition of everything the BPF programs and the
 * C++ side share: map keys and values, event records, constants.
 *
 * Included by bpf/authwall.bpf.c (after vmlinux.h) and by core/base/abi.h (after
 * <linux/types.h>), which adds static_asserts on every size and offset. Any
 * change here is an ABI change of the pinned maps: bump AW_ABI_VERSION.
 */
#ifndef AUTHWALL_ABI_H
#define AUTHWALL_ABI_H

/* Bumped whenever a pinned map's key or value layout changes. The loader
 * refuses to adopt pins written with another version. */
#define AW_ABI_VERSION 4

/* Deepest cgroup level (counted from the cgroup2 root, root = 0) at which a
 * session cgroup may live. The data plane probes only levels that hold
 * sessions (see the session_levels map). */
#define AW_MAX_CGROUP_LEVEL 32

/* session_levels map: ARRAY with one entry (key 0), value __u64, created
 * BPF_F_MMAPABLE: bit l is set when some session cgroup lives at level l.
 * Userspace sets a bit with an atomic OR through a shared mapping of the
 * map, so two sessions opened at once never lose each other's level, and
 * never clears one while sessions may exist. One load tells the programs
 * which levels to probe and where to stop. */

/* Hooks, used as indexes into the per-session denial counters and in events. */
enum aw_hook {
    AW_HOOK_CONNECT4 = 0,
    AW_HOOK_CONNECT6 = 1,
    AW_HOOK_SENDMSG4 = 2,
    AW_HOOK_SENDMSG6 = 3,
    AW_HOOK_BIND4 = 4,
    AW_HOOK_BIND6 = 5,
    AW_HOOK_SOCK_CREATE = 6,
    AW_HOOK_INGRESS = 7,
    AW_HOOK_EGRESS = 8,
    AW_HOOK_COUNT = 9,
};

/* Rule directions: which rule set of a policy a hook consults. */
enum aw_dir {
    AW_DIR_META = 0,    /* the policy's meta entry (defaults, flags) */
    AW_DIR_EGRESS = 1,  /* connect, sendmsg, outgoing packets: destination */
    AW_DIR_INGRESS = 2, /* new incoming flows: source */
    AW_DIR_BIND = 3,    /* bind: local address and port */
};

/* $rhost rules ("$rhost tcp 22", egress and ingress only): entries of dir
 * AW_DIR_RHOST | the direction, with any address (prefix length 0). They
 * are probed only when the flow's address is the login's own
 * (aw_session.rhost with AW_SESSION_HAS_RHOST) and the policy has some in
 * that direction (AW_POLICY_HAS_RHOST), after the direction's own rules
 * found no deny; a deny among them wins, as everywhere. */
#define AW_DIR_RHOST 4

enum aw_verdict {
    AW_VERDICT_NONE = 0, /* no rule matched */
    AW_VERDICT_ALLOW = 1,
    AW_VERDICT_DENY = 2,
};

/* Why a denial happened (event field). */
enum aw_reason {
    AW_REASON_RULE = 1,      /* an explicit deny rule matched */
    AW_REASON_DEFAULT = 2,   /* no rule matched and the default is deny */
    AW_REASON_REVOKED = 3,   /* the session is revoked */
    AW_REASON_NO_POLICY = 4, /* the policy and the fallback are missing: fail closed */
    AW_REASON_FAMILY = 5,    /* socket family or raw socket denied */
    AW_REASON_NOT_RHOST = 6, /* inbound flow from another address than the login's */
    AW_REASON_MALFORMED = 7, /* a packet whose flow cannot be read (headers hidden or cut) */
    AW_REASON_COUNT = 8,     /* bound of the reasons (0 is none) */
};

/* Session flags (aw_session.flags). */
#define AW_SESSION_REVOKED (1u << 0)
#define AW_SESSION_CONTAINER (1u << 1) /* enrolled container, not a login */
#define AW_SESSION_HAS_RHOST (1u << 2) /* rhost is meaningful */

/* Which layer of the data plane decided (aw_event.layer). A connect must pass
 * both: the login layer (the session the task's cgroup belongs to) and the
 * user layer (the policy of the task's real uid, wherever it runs). */
enum aw_layer {
    AW_LAYER_LOGIN = 1,
    AW_LAYER_USER = 2,
};

/* Policy meta flags (aw_rule_val.flags on the AW_DIR_META entry). */
#define AW_POLICY_INGRESS_FROM_RHOST (1u << 0) /* only the rhost may open flows in */
#define AW_POLICY_DENY_RAW (1u << 1)           /* SOCK_RAW in AF_INET/AF_INET6 denied */
/* Audit mode: every decision is taken as in enforce mode, but what the
 * policy would refuse passes and is reported (AW_EVENT_AUDIT) and counted
 * (aw_stats.audited, aw_user.audited). A revocation, a missing policy and
 * an unreadable packet are refused whatever the mode: they are not the
 * policy's decision. */
#define AW_POLICY_AUDIT (1u << 2)
/* The direction (egress or ingress) has $rhost rules: bits 3 and 4. */
#define AW_POLICY_HAS_RHOST(dir) (1u << (2 + (dir)))

/* Which of the three probe classes a direction of the policy has rules in
 * (meta flags, set by the compiler): the data plane skips the probe of an
 * empty class. A set bit only means "probe it". */
#define AW_CLASS_PORT 0  /* (proto, port) */
#define AW_CLASS_PROTO 1 /* (proto, any port) */
#define AW_CLASS_ANY 2   /* (any proto, any port) */
#define AW_POLICY_HAS_CLASS(dir, cls) (1u << (8 + 3 * ((dir)-1) + (cls)))

/* Port blocks (see aw_rule_key.port_bits): the direction has rules stored as
 * blocks of 2^bits ports (bits 1..15), and which block sizes the policy uses
 * in any direction. A direction with blocks probes every size in use. Bits
 * of the meta flags: 0-2 the policy flags above, 3-4 HAS_RHOST, 5-7
 * HAS_BLOCKS, 8-16 HAS_CLASS, 17-31 BLOCK_SIZE. */
#define AW_PORT_BLOCK_BITS_MAX 15
#define AW_POLICY_HAS_BLOCKS(dir) (1u << (4 + (dir)))
#define AW_POLICY_BLOCK_SIZE(bits) (1u << (16 + (bits)))

/* Policy id 0 is reserved for the fallback ("unmatched") policy: a session
 * whose policy id has no meta entry in the active generation is enforced with
 * policy 0; if that is missing too, it is denied (fail closed). */
#define AW_POLICY_FALLBACK 0u

#define AW_POLICY_NAME_MAX 64

/* sessions map: key = cgroup id (__u64), value: */
struct aw_session {
    __u32 policy_id;
    __u32 uid;
    __u32 flags; /* AW_SESSION_* */
    __u32 reserved;
    __u8 rhost[16];  /* IPv6, or IPv4 as v4-mapped (::ffff:a.b.c.d) */
    __u64 opened_ns; /* CLOCK_REALTIME nanoseconds */
};

/* users map: key = uid (__u32, real uid in the syscall hooks, the socket's
 * owner in the packet hooks), value: the user layer of a confined user.
 * Written by the PAM module at every session open of that user (cron, at,
 * the user manager included); kept after logout, so what the user left
 * running or scheduled stays confined. */
#define AW_USER_REVOKED (1u << 0) /* every hook denies this uid */
struct aw_user {
    __u32 policy_id;
    __u32 flags;    /* AW_USER_* */
    __u64 armed_ns; /* CLOCK_REALTIME of the last write by userspace */
    __u64 denied;   /* denials by the user layer, all hooks (the programs add) */
    __u64 audited;  /* would-be denials of the user layer in audit mode */
};

/*
 * Policy rules: one LPM trie per generation, holding every rule of every
 * policy. Addresses are IPv6 or v4-mapped IPv6, so one trie serves both
 * families (and an IPv6 socket talking to ::ffff:a.b.c.d meets the IPv4
 * rules). The prefix always covers policy_id, dir, proto, port and
 * port_bits fully (AW_RULE_KEY_FIXED_BITS) and then `addr` up to 128 more
 * bits.
 *
 * proto 0 = any protocol, port 0 = any port. A port range is stored as
 * aligned blocks of 2^port_bits ports (port_bits 0: one port). The compiler
 * decides which sizes it uses (core/policy/compiler.h, kPortBlockStep: 1,
 * 16, 256 and 4096 ports, at most 104 blocks per range); every size in use
 * costs one probe. A lookup probes (proto, port), (proto, port & ~(2^b - 1), b) for
 * each block size b the policy uses (AW_POLICY_BLOCK_SIZE), (proto, any)
 * and (any, any): each probe is the class of one entry shape, and a flow's
 * port lies in at most one block of each size. The compiler guarantees
 * that within one (policy, dir, proto, port, port_bits) class the longest
 * match carries the right verdict (an allow covered by a deny of the same
 * class is dropped), and the data plane lets any DENY of the probes win over
 * any ALLOW. Together: a flow is denied when any deny rule matches it,
 * whatever class each rule's entries fell into (a deny of port 22 inside
 * an allowed 1-1023 is its own (proto, 22) entry, found by the first
 * probe); else allowed when any allow rule matches it.
 */
struct aw_rule_key {
    __u32 prefixlen;
    __u32 policy_id; /* big endian: the trie compares bytes MSB first */
    __u8 dir;        /* enum aw_dir */
    __u8 proto;      /* IPPROTO_*, 0 = any */
    __u16 port;      /* network byte order, 0 = any; with port_bits: the block's first port */
    __u8 port_bits;  /* the entry covers ports port .. port + 2^port_bits - 1 */
    __u8 reserved[3];
    __u8 addr[16];
};

#define AW_RULE_KEY_FIXED_BITS 96 /* policy_id + dir + proto + port + port_bits + reserved */

/* Rule flags (aw_rule_val.rule_flags on a rule entry). */
#define AW_RULE_LOG (1u << 0) /* report every match (AW_EVENT_LOG when it allows) */
/* On the META entry, rule_flags: the policy has allow rules on DNS names.
 * Its sessions' DNS queries and answers are watched (dns_queries,
 * dns_answers), and an address a session received in an answer for such a
 * name is looked up in names_seen after the rules found nothing. */
#define AW_META_NAMES (1u << 0)

struct aw_rule_val {
    __u8 verdict;          /* enum aw_verdict; on META: default egress verdict */
    __u8 ingress_default;  /* META only: default ingress verdict */
    __u8 bind_default;     /* META only: default bind verdict */
    __u8 rule_flags;       /* rules only: AW_RULE_* */
    __u32 flags;           /* META only: AW_POLICY_* */
    __u64 denied_families; /* META only: bit n set = AF n may not be created */
    __u32 rule;            /* rules only: the rule's number within its policy (1..), for events */
    __u32 reserved;
};

/* policy_names map: key = policy id (__u32), value: the name the id stands
 * for. Ids are stable by name across reloads, so sessions keep their policy.
 * Not consulted by the data plane. */
#define AW_POLICY_NAME_ACTIVE (1u << 0) /* present in the active generation */
struct aw_policy_name {
    char name[AW_POLICY_NAME_MAX]; /* NUL-terminated */
    __u32 flags;                   /* AW_POLICY_NAME_* */
    __u32 reserved;
};

/* Per-session counters (session_stats, a HASH keyed by cgroup id, not
 * preallocated; one value per session, the programs add atomically). */
struct aw_stats {
    __u64 bytes_in;
    __u64 bytes_out;
    __u64 packets_in;
    __u64 packets_out;
    __u64 denied[AW_HOOK_COUNT];
    __u64 audited; /* would-be denials in audit mode, all hooks */
};

/* What ended sessions counted, per policy (policy_totals: an mmapable ARRAY
 * indexed by policy id, written by userspace only). The session service
 * adds a session's counters here as it removes the session, so a policy's
 * counters (authctl metrics) never go backwards. folds_begun and folds_done
 * bracket each fold: a reader that finds them equal and unchanged around
 * its read saw no fold half done. */
#define AW_POLICY_TOTALS_MAX 4097 /* ids 0..4096: policy_names holds 4096 names */
struct aw_policy_totals {
    __u64 folds_begun;
    __u64 folds_done;
    struct aw_stats stats;
};

/* What an event reports (aw_event.verdict). */
enum aw_event_verdict {
    AW_EVENT_DENY = 0,  /* refused */
    AW_EVENT_AUDIT = 1, /* would have been refused; passed in audit mode */
    AW_EVENT_LOG = 2,   /* allowed by a rule with log = true */
};

#define AW_COMM_LEN 16

/* A decision event (events ring buffer): a denial, an audited would-be
 * denial, or a logged match. */
struct aw_event {
    __u64 timestamp_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
    __u64 session_id;   /* cgroup id of the session (the key in sessions); 0: none (user layer) */
    __u64 cgroup_id;    /* cgroup id of the offender (may be a descendant) */
    __u32 pid;          /* tgid; 0 in packet hooks */
    __u32 policy_id;
    __u8 hook;              /* enum aw_hook */
    __u8 reason;            /* enum aw_reason */
    __u8 proto;             /* IPPROTO_*, or the socket type for sock_create */
    __u8 family;            /* AF_INET / AF_INET6 / socket family */
    __u16 port;             /* host byte order */
    __u8 layer;             /* enum aw_layer: which layer decided */
    __u8 verdict;           /* enum aw_event_verdict */
    __u8 addr[16];          /* remote (egress/connect/sendmsg/ingress) or local (bind) */
    __u32 uid;              /* the task's real uid (syscall hooks) or the socket's uid (packets) */
    __u32 rule;             /* the deciding rule's number in the policy; 0: the policy's default or no rule */
    char comm[AW_COMM_LEN]; /* the task's name (syscall hooks); empty in packet hooks */
};

/* Rate limiter of the events ring buffer, one per CPU (event_budget). */
struct aw_event_budget {
    __u64 window_start_ns;
    __u64 emitted;    /* in the current window */
    __u64 suppressed; /* total, since load */
};

/* Refusals by hook and reason, for the whole host (refusals: a PERCPU_ARRAY
 * with one entry, summed by userspace): what a session's counters do not
 * say, why. `audited` counts the would-be refusals passed in audit mode. */
struct aw_refusals {
    __u64 denied[AW_HOOK_COUNT][AW_REASON_COUNT];
    __u64 audited[AW_HOOK_COUNT][AW_REASON_COUNT];
};

/*
 * DNS names, per session (docs/POLICY.md, "DNS names"). A session whose
 * policy has name rules (AW_META_NAMES) has each DNS query it sends over UDP
 * to port 53 noted in dns_queries (LRU_HASH); the answer that matches one
 * (same server, local port and transaction id; the note is then dropped)
 * is copied to the dns_answers ring buffer for the loader, which parses it
 * and, for a name the policy allows, writes each answered address to
 * names_seen (LRU_HASH) with what the name's rules allow and until when
 * (the TTL, clamped, then [dns] grace_sec). The programs look an address
 * up there only after the policy's rules found neither an allow nor a
 * deny, and never remember what it allowed.
 */
struct aw_dns_query_key {
    __u64 session_id;
    __u8 server[16]; /* v6 or v4-mapped */
    __u16 port;      /* the session's local port, network byte order */
    __u16 txid;      /* the query's id, as on the wire */
    __u32 reserved;
};

#define AW_DNS_ANSWER_MAX 1024 /* bytes of an answer copied; the rest is cut */
struct aw_dns_answer {
    __u64 session_id;
    __u32 policy_id; /* the session's policy when the answer came */
    __u16 length;    /* bytes in payload */
    __u16 reserved;
    __u8 server[16];
    __u8 payload[AW_DNS_ANSWER_MAX]; /* the DNS message, from its header */
};

struct aw_name_key {
    __u64 session_id;
    __u8 addr[16]; /* v6 or v4-mapped */
};

/* What one name rule allows to an address: a direction, a protocol (0:
 * any) and a port range in host order (0-0: any; ICMP types as ports, as
 * in the rules). rule 0: an empty slot. */
struct aw_name_grant {
    __u32 rule;
    __u16 port_first;
    __u16 port_last;
    __u8 proto;
    __u8 dir; /* AW_DIR_EGRESS or AW_DIR_INGRESS */
    __u8 reserved[2];
};

#define AW_NAME_GRANTS 4
struct aw_name_seen {
    __u64 expires_ns; /* CLOCK_MONOTONIC (bpf_ktime_get_ns) */
    struct aw_name_grant grants[AW_NAME_GRANTS];
};

/* generation map: ARRAY with one entry, key 0, value __u64. A random value
 * with the top bit set, rewritten by userspace after every change that a
 * decision the programs cache may depend on: a session inserted, removed or
 * flagged, a user layer written or removed, a policy generation swapped,
 * the settings written. The programs remember per socket what they found at
 * a generation and use it only while the generation is unchanged. */
#define AW_GENERATION_VALID (1ULL << 63)

/* Global switches (settings, ARRAY with one entry). */
struct aw_settings {
    __u32 abi_version;
    __u32 unknown_verdict; /* AW_VERDICT_ALLOW: a cgroup with no session passes */
    __u32 events_per_sec;  /* per CPU; 0 = no events */
    __u32 reserved;
};

#endif /* AUTHWALL_ABI_H */
