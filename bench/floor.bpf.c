// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The floor: cgroup programs that do nothing but let everything through,
 * on the hooks authwall uses. What they cost per run is the least any
 * program on that hook can cost; bench_datapath prints authwall's cost
 * beside it.
 *
 * And the least a program that remembers anything per socket can cost on
 * the packet hooks: one lookup of the socket's storage (what authwall's
 * packet hooks do first), nothing else. bench_datapath attaches these
 * (lookup_*) to a cgroup of their own.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup_skb/egress")
int floor_egress(struct __sk_buff* skb)
{
    return 1;
}

SEC("cgroup_skb/ingress")
int floor_ingress(struct __sk_buff* skb)
{
    return 1;
}

SEC("cgroup/connect4")
int floor_connect4(struct bpf_sock_addr* ctx)
{
    return 1;
}

SEC("cgroup/sendmsg4")
int floor_sendmsg4(struct bpf_sock_addr* ctx)
{
    return 1;
}

SEC("cgroup/sock_create")
int floor_sock_create(struct bpf_sock* ctx)
{
    return 1;
}

struct {
    __uint(type, BPF_MAP_TYPE_SK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, __u64);
} socket_word SEC(".maps");

/* One storage lookup, made when the socket is established, as authwall's. */
static __always_inline int socket_lookup(struct __sk_buff* skb)
{
    struct bpf_sock* sk = skb->sk;
    if (!sk)
        return 1;
    __u64 create = sk->state == BPF_TCP_ESTABLISHED ? BPF_SK_STORAGE_GET_F_CREATE : 0;
    __u64* word = bpf_sk_storage_get(&socket_word, sk, 0, create);
    return word && *word == 2 ? 0 : 1;
}

SEC("cgroup_skb/egress")
int lookup_egress(struct __sk_buff* skb)
{
    return socket_lookup(skb);
}

SEC("cgroup_skb/ingress")
int lookup_ingress(struct __sk_buff* skb)
{
    return socket_lookup(skb);
}
