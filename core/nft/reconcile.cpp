// SPDX-License-Identifier: Apache-2.0
// Comparing the mirror with the sessions that should be in it, and
// repairing it.
#include "core/nft/mirror.h"

#include "core/nft/elements.h"
#include "core/nft/netlink.h"
#include "core/nft/refcounts.h"

#include <map>
#include <set>

namespace authwall {

namespace fs = std::filesystem;
using namespace nft;

namespace {

std::map<std::string, Elem> elements_of(const MirrorContents& c)
{
    std::map<std::string, Elem> out;
    for (uint64_t id : c.sessions) {
        auto e = session_elem(id);
        out.emplace(e.label, e);
    }
    for (const auto& [id, a] : c.sessions_addr) {
        auto e = pair_elem(id, a);
        out.emplace(e.label, e);
    }
    for (const auto& a : c.session_addrs) {
        auto e = addr_elem(a);
        out.emplace(e.label, e);
    }
    return out;
}

MirrorContents expected_contents(const std::vector<MirrorSession>& expected)
{
    MirrorContents c;
    c.table_present = true;
    std::set<IpAddress> addrs;
    for (const auto& s : expected) {
        c.sessions.push_back(s.id);
        if (s.rhost) {
            c.sessions_addr.emplace_back(s.id, *s.rhost);
            addrs.insert(*s.rhost);
        }
    }
    c.session_addrs.assign(addrs.begin(), addrs.end());
    return c;
}

} // namespace

MirrorDrift nft_compare(const MirrorContents& actual, const std::vector<MirrorSession>& expected)
{
    MirrorDrift d;
    d.table_missing = !actual.table_present;
    auto have = elements_of(actual);
    auto want = elements_of(expected_contents(expected));
    for (const auto& [label, e] : want)
        if (!have.count(label))
            d.missing.push_back(label);
    for (const auto& [label, e] : have)
        if (!want.count(label))
            d.stray.push_back(label);
    return d;
}

Result<MirrorDrift> nft_reconcile(const fs::path& run_dir, const std::vector<MirrorSession>& expected)
{
    auto refs = AddrRefs::lock(run_dir);
    if (!refs)
        return refs.error();
    auto actual = nft_read_mirror();
    if (!actual)
        return actual.error();
    if (!actual->table_present)
        if (auto st = nft_ensure_table(); !st)
            return st.error();
    MirrorDrift drift = nft_compare(*actual, expected);
    if (drift.missing.empty() && drift.stray.empty()) {
        refs->rebuild(expected);
        return drift;
    }
    std::set<std::string> missing(drift.missing.begin(), drift.missing.end());
    std::vector<Op> ops;
    auto have = elements_of(*actual);
    for (const auto& label : drift.stray)
        ops.push_back(del(have.at(label)));
    // Sessions' own elements, then each address with its latest deadline.
    std::map<IpAddress, uint64_t> addr_deadline;
    for (const auto& s : expected) {
        if (!s.rhost)
            continue;
        auto [it, fresh] = addr_deadline.emplace(*s.rhost, s.deadline_ns);
        if (!fresh && (s.deadline_ns == 0 || (it->second != 0 && s.deadline_ns > it->second)))
            it->second = s.deadline_ns;
    }
    for (const auto& s : expected)
        for (auto& op : add_ops(s, s.rhost ? addr_deadline[*s.rhost] : 0))
            if (missing.erase(op.elem.label))
                ops.push_back(std::move(op));
    auto nl = Netlink::open();
    if (!nl)
        return nl.error();
    if (auto st = run_ops(*nl, ops); !st)
        return st.error();
    refs->rebuild(expected);
    return drift;
}

} // namespace authwall
