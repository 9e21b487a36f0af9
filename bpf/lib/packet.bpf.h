/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Reading a packet's flow: the IP header (IPv6 extension headers walked),
 * the transport protocol and ports. Whatever cannot be read is reported as
 * such, so that the caller fails closed.
 */
#ifndef AUTHWALL_LIB_PACKET_BPF_H
#define AUTHWALL_LIB_PACKET_BPF_H

#include "lib/events.bpf.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10
#define LOOPBACK_IFINDEX 1 /* lo is ifindex 1 in every network namespace */

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
static __always_inline int skip_ipv6_ext(struct __sk_buff* skb, __u8* proto, __u32* off)
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

/* ICMP has no ports: the rules and the flows hold its type T as the port
 * T + 1 (0 is any port), so "icmp echo-request" is the port 9 of ICMP. An
 * inbound datagram is admitted as a reply when the egress rules let the
 * session send to its source address and port: an ICMP reply's source
 * "port" is the request it answers (echo-reply answers echo-request), so a
 * session that may ping a host gets the host's echo replies; other types
 * have none (0) and are replies only to a policy that allows any ICMP. */
static __always_inline __u16 icmp_type_port(__u8 type)
{
    return (__u16)type + 1;
}

static __always_inline __u16 icmp_request_port(__u8 proto, __u8 type)
{
    if (proto == IPPROTO_ICMP && (type == 0 || type == 14 || type == 16 || type == 18))
        return icmp_type_port(type == 0 ? 8 : type - 1); /* echo, timestamp, info, address mask */
    if (proto == IPPROTO_ICMPV6 && type == 129)
        return icmp_type_port(128); /* echo */
    return 0;
}

/* Parses the IP and transport headers. Returns 1 when the flow is known
 * (addresses, protocol, ports where the protocol has them), 0 when it is
 * not: not IP, truncated, or hidden behind headers we do not walk. A session
 * fails closed on 0. */
/* Not inlined: the packet hooks call it from two paths. */
static __noinline int parse_packet(struct __sk_buff* skb, struct packet* p)
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
    p->is_datagram =
        proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE || proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6;
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
    } else if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) {
        __u8 type;
        if (bpf_skb_load_bytes(skb, l4_off, &type, 1))
            return 0;
        p->dst.port = bpf_htons(icmp_type_port(type));
        p->src.port = bpf_htons(icmp_request_port(proto, type));
    }
    if (p->is_tcp && bpf_skb_load_bytes(skb, l4_off + 13, &p->tcp_flags, 1))
        return 0;
    return 1;
}

static __always_inline int is_new_tcp_flow(const struct packet* p)
{
    return (p->tcp_flags & TCP_FLAG_SYN) && !(p->tcp_flags & TCP_FLAG_ACK);
}

/* Whether the packet leaves through a kernel TCP socket, whose flows were
 * judged at connect() (or at the inbound SYN, for the SYN-ACK a listener
 * sends). A raw socket writing TCP segments is judged per packet. */
static __always_inline int from_tcp_socket(struct __sk_buff* skb)
{
    struct bpf_sock* sk = skb->sk;
    if (!sk)
        return 1;
    sk = bpf_sk_fullsock(sk);
    return !sk || sk->type == 1 /* SOCK_STREAM */;
}

#endif /* AUTHWALL_LIB_PACKET_BPF_H */
