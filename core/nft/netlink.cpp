// SPDX-License-Identifier: Apache-2.0
#include "core/nft/netlink.h"

#include <libnftnl/set.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <poll.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

namespace authwall::nft {

namespace {

constexpr size_t kOpsPerBatch = 256;

} // namespace

Result<Netlink> Netlink::open()
{
    Netlink n;
    n.nl_.reset(mnl_socket_open(NETLINK_NETFILTER));
    if (!n.nl_)
        return Error::sys("open", "netfilter netlink socket", errno);
    if (mnl_socket_bind(n.nl_.get(), 0, MNL_SOCKET_AUTOPID) < 0)
        return Error::sys("bind", "netfilter netlink socket", errno);
    n.portid_ = mnl_socket_get_portid(n.nl_.get());
    n.seq_ = static_cast<uint32_t>(::time(nullptr));
    return n;
}

std::vector<char> Netlink::batch_of(const std::vector<Op>& ops, uint32_t& first_seq)
{
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE + ops.size() * 512);
    mnl_nlmsg_batch* batch = mnl_nlmsg_batch_start(buf.data(), buf.size());
    nftnl_batch_begin(static_cast<char*>(mnl_nlmsg_batch_current(batch)), seq_++);
    mnl_nlmsg_batch_next(batch);
    first_seq = seq_;
    for (const auto& op : ops) {
        std::unique_ptr<nftnl_set, decltype(&nftnl_set_free)> s(nftnl_set_alloc(), nftnl_set_free);
        nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, kNftTable);
        nftnl_set_set_str(s.get(), NFTNL_SET_NAME, op.elem.set.c_str());
        nftnl_set_elem* e = nftnl_set_elem_alloc();
        nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, op.elem.key.data(), static_cast<uint32_t>(op.elem.key.size()));
        if (op.msg == NFT_MSG_NEWSETELEM) {
            nftnl_set_elem_set_u64(e, NFTNL_SET_ELEM_TIMEOUT, op.timeout_ms);
            if (!op.comment.empty()) {
                std::unique_ptr<nftnl_udata_buf, decltype(&nftnl_udata_buf_free)> u(
                    nftnl_udata_buf_alloc(NFT_USERDATA_MAXLEN), nftnl_udata_buf_free);
                nftnl_udata_put_strz(u.get(), NFTNL_UDATA_SET_ELEM_COMMENT, op.comment.c_str());
                nftnl_set_elem_set(e, NFTNL_SET_ELEM_USERDATA, nftnl_udata_buf_data(u.get()),
                                   nftnl_udata_buf_len(u.get()));
            }
        }
        nftnl_set_elem_add(s.get(), e);
        uint16_t flags = NLM_F_ACK | (op.msg == NFT_MSG_NEWSETELEM ? NLM_F_CREATE : 0);
        nlmsghdr* nlh = nftnl_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(batch)), op.msg, NFPROTO_INET,
                                              flags, seq_++);
        nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
        mnl_nlmsg_batch_next(batch);
    }
    nftnl_batch_end(static_cast<char*>(mnl_nlmsg_batch_current(batch)), seq_++);
    mnl_nlmsg_batch_next(batch);
    buf.resize(mnl_nlmsg_batch_size(batch));
    mnl_nlmsg_batch_stop(batch);
    return buf;
}

Result<std::pair<int, size_t>> Netlink::transact(const std::vector<Op>& ops)
{
    uint32_t first_seq = 0;
    std::vector<char> batch = batch_of(ops, first_seq);
    if (mnl_socket_sendto(nl_.get(), batch.data(), batch.size()) < 0)
        return Error::sys("send", "nftables transaction", errno);
    return read_acks(ops.size(), first_seq);
}

// Every message asked for an ack: one reply each, error or not.
Result<std::pair<int, size_t>> Netlink::read_acks(size_t count, uint32_t first_seq)
{
    size_t replies = 0;
    int first_err = 0;
    size_t failed = 0;
    std::vector<char> rbuf(MNL_SOCKET_BUFFER_SIZE);
    while (replies < count) {
        pollfd p{mnl_socket_get_fd(nl_.get()), POLLIN, 0};
        int r = ::poll(&p, 1, first_err ? 200 : 5000);
        if (r == 0 && first_err)
            break;
        if (r <= 0)
            return Error::sys("wait for", "nftables acknowledgement", r == 0 ? ETIMEDOUT : errno);
        ssize_t n = mnl_socket_recvfrom(nl_.get(), rbuf.data(), rbuf.size());
        if (n < 0)
            return Error::sys("receive", "nftables acknowledgement", errno);
        int len = static_cast<int>(n);
        for (auto* h = reinterpret_cast<nlmsghdr*>(rbuf.data()); mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len)) {
            if (h->nlmsg_type != NLMSG_ERROR)
                continue;
            ++replies;
            auto* err = static_cast<nlmsgerr*>(mnl_nlmsg_get_payload(h));
            if (err->error != 0 && !first_err) {
                first_err = -err->error;
                failed = h->nlmsg_seq - first_seq;
            }
        }
    }
    return std::make_pair(first_err, failed);
}

Result<std::vector<std::vector<uint8_t>>> Netlink::keys(const std::string& set)
{
    std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
    uint32_t seq = seq_++;
    nlmsghdr* nlh = nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP | NLM_F_ACK, seq);
    std::unique_ptr<nftnl_set, decltype(&nftnl_set_free)> s(nftnl_set_alloc(), nftnl_set_free);
    nftnl_set_set_str(s.get(), NFTNL_SET_TABLE, kNftTable);
    nftnl_set_set_str(s.get(), NFTNL_SET_NAME, set.c_str());
    nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
    if (mnl_socket_sendto(nl_.get(), nlh, nlh->nlmsg_len) < 0)
        return Error::sys("send", "nftables dump of " + set, errno);
    auto parse = [](const nlmsghdr* h, void* data) {
        nftnl_set_elems_nlmsg_parse(h, static_cast<nftnl_set*>(data));
        return MNL_CB_OK;
    };
    std::vector<char> rbuf(32768);
    for (;;) {
        ssize_t n = mnl_socket_recvfrom(nl_.get(), rbuf.data(), rbuf.size());
        if (n < 0)
            return Error::sys("receive", "nftables dump of " + set, errno);
        int r = mnl_cb_run(rbuf.data(), static_cast<size_t>(n), seq, portid_, parse, s.get());
        if (r < 0)
            return Error::sys("dump", "nftables set " + std::string(kNftTable) + " " + set, errno);
        if (r == MNL_CB_STOP)
            break;
    }
    std::vector<std::vector<uint8_t>> out;
    nftnl_set_elems_iter* it = nftnl_set_elems_iter_create(s.get());
    for (nftnl_set_elem* e = nftnl_set_elems_iter_next(it); e; e = nftnl_set_elems_iter_next(it)) {
        uint32_t len = 0;
        const void* key = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &len);
        if (key)
            out.emplace_back(static_cast<const uint8_t*>(key), static_cast<const uint8_t*>(key) + len);
    }
    nftnl_set_elems_iter_destroy(it);
    return out;
}

Status run_ops(Netlink& nl, const std::vector<Op>& ops)
{
    for (size_t at = 0; at < ops.size(); at += kOpsPerBatch) {
        std::vector<Op> chunk(ops.begin() + static_cast<long>(at),
                              ops.begin() + static_cast<long>(std::min(ops.size(), at + kOpsPerBatch)));
        auto r = nl.transact(chunk);
        if (!r)
            return r.error();
        auto [err, failed] = *r;
        if (err == 0)
            continue;
        if (err != ENOENT || chunk[std::min(failed, chunk.size() - 1)].msg != NFT_MSG_DELSETELEM)
            return Error::sys("update", "nftables set " + chunk[std::min(failed, chunk.size() - 1)].elem.label, err);
        for (const auto& op : chunk) {
            auto one = nl.transact(std::vector<Op>{op});
            if (!one)
                return one.error();
            if (one->first != 0 && !(one->first == ENOENT && op.msg == NFT_MSG_DELSETELEM))
                return Error::sys("update", "nftables set " + op.elem.label, one->first);
        }
    }
    return {};
}

bool table_missing(const Error& e)
{
    return e.err == ENOENT;
}

} // namespace authwall::nft
