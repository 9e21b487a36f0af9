/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The decision on one packet: the parser's flow before both layers.
 */
#ifndef AUTHWALL_LIB_PACKET_DECISION_BPF_H
#define AUTHWALL_LIB_PACKET_DECISION_BPF_H

#include "lib/decision.bpf.h"
#include "lib/packet.bpf.h"

/* The decision on one packet of a subject. Egress: TCP is decided once, at
 * connect() (or at the inbound SYN): a second look at the SYN here could
 * disagree with connect() across a policy swap and leave the caller
 * retransmitting into a drop; what has no connect/sendmsg hook (ICMP, raw
 * sockets) and datagrams are decided per flow. Ingress: new TCP flows and
 * datagrams, against the peer's address and the local port. *judged says
 * whether the policy was consulted (only such allows may be remembered). */
static __always_inline struct decision packet_decision(const struct subject* s, const struct packet* p, int parsed,
                                                       struct __sk_buff* skb, int ingress, int* judged)
{
    struct decision d = {.verdict = AW_VERDICT_ALLOW};
    *judged = 0;
    if (!packet_precheck(s, parsed, &d))
        return d; /* revoked or unreadable */
    if (!ingress) {
        if (p->is_tcp && from_tcp_socket(skb))
            return d;
        *judged = 1;
        return judge(s, AW_DIR_EGRESS, &p->dst, 0);
    }
    if (p->is_tcp && !is_new_tcp_flow(p))
        return d;
    struct flow in = p->src;
    in.port = p->dst.port;
    struct inbound ctx = {
        .reply = &p->src, .is_datagram = p->is_datagram, .loopback = skb->ifindex == LOOPBACK_IFINDEX};
    *judged = 1;
    return judge(s, AW_DIR_INGRESS, &in, &ctx);
}

#endif /* AUTHWALL_LIB_PACKET_DECISION_BPF_H */
