// SPDX-License-Identifier: Apache-2.0
#include "core/nft/mirror.h"

#include "core/nft/elements.h"
#include "core/nft/netlink.h"
#include "core/nft/refcounts.h"

#include <nftables/libnftables.h>

#include <cstring>
#include <memory>

namespace authwall {

namespace fs = std::filesystem;
using namespace nft;

Status nft_ensure_table()
{
    std::unique_ptr<nft_ctx, decltype(&nft_ctx_free)> ctx(nft_ctx_new(NFT_CTX_DEFAULT), nft_ctx_free);
    if (!ctx)
        return Error::msg("create", "libnftables context", "out of memory");
    nft_ctx_buffer_output(ctx.get());
    nft_ctx_buffer_error(ctx.get());
    std::string t = kNftTable;
    std::string cmd = "add table inet " + t + " { comment \"authwall sessions: managed by authwall, do not edit\"; }\n";
    const char* types[] = {"cgroupsv2", "cgroupsv2 . ipv4_addr", "cgroupsv2 . ipv6_addr", "ipv4_addr", "ipv6_addr"};
    for (size_t i = 0; i < std::size(kSets); ++i)
        cmd += "add set inet " + t + " " + kSets[i] + " { type " + types[i] + "; flags timeout; }\n";
    if (nft_run_cmd_from_buffer(ctx.get(), cmd.c_str()) != 0) {
        std::string err = nft_ctx_get_error_buffer(ctx.get());
        while (!err.empty() && err.back() == '\n')
            err.pop_back();
        return Error::msg("create", "nftables table inet " + t, err);
    }
    return {};
}

Status nft_delete_table()
{
    if (!nft_table_exists())
        return {};
    std::unique_ptr<nft_ctx, decltype(&nft_ctx_free)> ctx(nft_ctx_new(NFT_CTX_DEFAULT), nft_ctx_free);
    nft_ctx_buffer_output(ctx.get());
    nft_ctx_buffer_error(ctx.get());
    std::string cmd = std::string("delete table inet ") + kNftTable + "\n";
    if (nft_run_cmd_from_buffer(ctx.get(), cmd.c_str()) != 0)
        return Error::msg("delete", std::string("nftables table inet ") + kNftTable,
                          nft_ctx_get_error_buffer(ctx.get()));
    return {};
}

bool nft_table_exists()
{
    auto nl = Netlink::open();
    return nl && nl->keys("sessions").ok();
}

Status nft_mirror_add(const fs::path& run_dir, const MirrorSession& s)
{
    auto refs = AddrRefs::lock(run_dir);
    if (!refs)
        return refs.error();
    auto nl = Netlink::open();
    if (!nl)
        return nl.error();
    uint64_t addr_deadline = s.rhost ? refs->add(*s.rhost, s.id, s.deadline_ns) : 0;
    auto ops = add_ops(s, addr_deadline);
    Status st = run_ops(*nl, ops);
    if (!st && table_missing(st.error())) { // flushed, or never created: make it, once
        if (auto made = nft_ensure_table(); !made)
            st = made;
        else
            st = run_ops(*nl, ops);
    }
    if (!st && s.rhost)
        refs->remove(*s.rhost, s.id);
    return st;
}

Status nft_mirror_remove(const fs::path& run_dir, uint64_t id, std::optional<IpAddress> rhost)
{
    auto refs = AddrRefs::lock(run_dir);
    if (!refs)
        return refs.error();
    auto nl = Netlink::open();
    if (!nl)
        return nl.error();
    std::vector<Op> ops{del(session_elem(id))};
    if (rhost) {
        ops.push_back(del(pair_elem(id, *rhost)));
        if (refs->remove(*rhost, id) == 0) // the last session from that address
            ops.push_back(del(addr_elem(*rhost)));
    }
    Status st = run_ops(*nl, ops);
    if (!st && table_missing(st.error()))
        return {}; // no table, nothing to remove
    return st;
}

Result<MirrorContents> nft_read_mirror()
{
    MirrorContents out;
    auto nl = Netlink::open();
    if (!nl)
        return nl.error();
    for (const char* set : kSets) {
        auto keys = nl->keys(set);
        if (!keys && table_missing(keys.error()))
            return out; // table_present stays false
        if (!keys)
            return keys.error();
        std::string name = set;
        for (const auto& k : *keys) {
            if (name == "sessions" && k.size() == 8) {
                uint64_t id;
                std::memcpy(&id, k.data(), 8);
                out.sessions.push_back(id);
            } else if (name.starts_with("sessions_v") && (k.size() == 12 || k.size() == 24)) {
                uint64_t id;
                std::memcpy(&id, k.data(), 8);
                out.sessions_addr.emplace_back(id, addr_from(k.data() + 8, k.size() - 8));
            } else if (name.starts_with("session_addrs") && (k.size() == 4 || k.size() == 16)) {
                out.session_addrs.push_back(addr_from(k.data(), k.size()));
            }
        }
    }
    out.table_present = true;
    return out;
}

} // namespace authwall
