// SPDX-License-Identifier: Apache-2.0
// The remote address of a login as the kernel knows it: the peer of the
// established TCP connection the login process holds (rhost=kernel).
//
// The process's sockets are its /proc/PID/fd links "socket:[INODE]",
// matched by inode with what sock_diag (NETLINK_SOCK_DIAG,
// inet_diag_req_v2) says is an established TCP socket, IPv4 or IPv6: for
// the calling process one exact lookup per socket (by the addresses and
// ports its descriptor reports: 16 us a login here), for another process a
// dump of the namespace's established sockets per family (it walks the
// kernel's whole established hash table: 5 ms here with 262144 buckets, 22
// ms with 5000 connections). /proc/net/tcp is not parsed: it is text made
// for people, and the netlink answer carries the same facts as binary
// fields.
//
// sshd opens the PAM session in its privileged monitor ("sshd: USER
// [priv]"), which holds the client's connection at that moment (found on
// Debian 12's OpenSSH 9.2; the unprivileged child is forked after): the
// process itself is asked, never its parents, whose connections belong to
// no particular login.
#pragma once

#include "core/base/net.h"
#include "core/base/result.h"

#include <sys/types.h>

#include <cstdint>
#include <set>
#include <vector>

namespace authwall {

// The inodes of the sockets among `pid`'s open files.
Result<std::set<uint64_t>> socket_inodes(pid_t pid);

struct TcpConnection {
    uint64_t inode = 0;
    IpAddress local;
    uint16_t local_port = 0;
    IpAddress peer; // v4-mapped on a dual-stack socket is an IPv4 address
    uint16_t peer_port = 0;
};

// The established TCP connections (IPv4 and IPv6) whose socket inode is in
// `inodes`, through sock_diag.
Result<std::vector<TcpConnection>> established_tcp(const std::set<uint64_t>& inodes);

// The same for this process, without a dump: each socket descriptor's
// addresses and ports (getsockname, getpeername) are looked up exactly in
// sock_diag, which confirms it established and names its inode. A dump
// walks the kernel's whole established table, a lookup one bucket.
Result<std::vector<TcpConnection>> own_established_tcp();

// The address of the one peer `pid`'s established TCP connections lead to
// (own_established_tcp for this process, else established_tcp).
// An error when there is none (not a network login, or it has gone) or
// when they lead to several addresses (which of them is the login's is not
// known): rhost=kernel then fails as fail= says.
Result<IpAddress> login_peer_address(pid_t pid);

} // namespace authwall
