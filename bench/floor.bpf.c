// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The floor: cgroup programs that do nothing but let everything through,
 * on the hooks authwall uses. What they cost per run is the least any
 * program on that hook can cost; bench_datapath prints authwall's cost
 * beside it.
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
