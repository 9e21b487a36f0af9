#include "core/nft/mirror.h"

#include "core/base/fd.h"
#include "core/base/time.h"

#include <libmnl/libmnl.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <nftables/libnftables.h>
#include <poll.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <set>

namespace authwall {
namespace fs = std::filesystem;

namespace {

constexpr const char* kSets[] = {"sessions", "sessions_v4", "sessions_v6", "session_addrs_v4", "session_addrs_v6"};
constexpr size_t kOpsPerBatch = 256;

// One element of one set, with the label drift reports use.
struct Elem {
    std::string set;
    std::vector<uint8_t> key;
    std::string label; // "sessions_v4 12345 . 192.0.2.7"
};

void put_id(std::vector<uint8_t>& key, uint64_t id)
{
    // cgroupsv2 is host-endian, as `socket cgroupv2` loads it.
    uint8_t raw[8];
    std::memcpy(raw, &id, sizeof(id));
    key.insert(key.end(), raw, raw + 8);
}

void put_addr(std::vector<uint8_t>& key, const IpAddress& a)
{
    const auto& b = a.bytes();
    if (a.is_v4())
        key.insert(key.end(), b.begin() + 12, b.end());
    else
        key.insert(key.end(), b.begin(), b.end());
}

Elem session_elem(uint64_t id)
{
    Elem e{"sessions", {}, "sessions " + std::to_string(id)};
    put_id(e.key, id);
    return e;
}

Elem pair_elem(uint64_t id, const IpAddress& a)
{
    Elem e{a.is_v4() ? "sessions_v4" : "sessions_v6", {}, {}};
    e.label = e.set + " " + std::to_string(id) + " . " + a.str();
    put_id(e.key, id);
    put_addr(e.key, a);
    return e;
}

Elem addr_elem(const IpAddress& a)
{
    Elem e{a.is_v4() ? "session_addrs_v4" : "session_addrs_v6", {}, {}};
    e.label = e.set + " " + a.str();
    put_addr(e.key, a);
    return e;
}

IpAddress addr_from(const uint8_t* p, size_t len)
{
    std::array<uint8_t, 16> b{};
    if (len == 4) {
        b[10] = b[11] = 0xff;
        std::memcpy(b.data() + 12, p, 4);
    } else {
        std::memcpy(b.data(), p, 16);
    }
    return IpAddress(b);
}

struct Op {
    uint16_t msg; // NFT_MSG_NEWSETELEM or NFT_MSG_DELSETELEM
    Elem elem;
    uint64_t timeout_ms = 0;
    std::string comment;
};

Op del(Elem e)
{
    return Op{NFT_MSG_DELSETELEM, std::move(e), 0, {}};
}

// A netlink socket to nf_tables in the current network namespace.
class Netlink {
  public:
    static Result<Netlink> open()
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

    // One transaction. Returns 0 or the first errno the kernel reported
    // (the whole transaction is then void), with the failed op's index.
    Result<std::pair<int, size_t>> transact(const std::vector<Op>& ops)
    {
        std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE + ops.size() * 512);
        mnl_nlmsg_batch* batch = mnl_nlmsg_batch_start(buf.data(), buf.size());
        nftnl_batch_begin(static_cast<char*>(mnl_nlmsg_batch_current(batch)), seq_++);
        mnl_nlmsg_batch_next(batch);
        uint32_t first_seq = seq_;
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
            nlmsghdr* nlh = nftnl_nlmsg_build_hdr(static_cast<char*>(mnl_nlmsg_batch_current(batch)), op.msg,
                                                  NFPROTO_INET, flags, seq_++);
            nftnl_set_elems_nlmsg_build_payload(nlh, s.get());
            mnl_nlmsg_batch_next(batch);
        }
        nftnl_batch_end(static_cast<char*>(mnl_nlmsg_batch_current(batch)), seq_++);
        mnl_nlmsg_batch_next(batch);
        size_t size = mnl_nlmsg_batch_size(batch);
        ssize_t sent = mnl_socket_sendto(nl_.get(), mnl_nlmsg_batch_head(batch), size);
        mnl_nlmsg_batch_stop(batch);
        if (sent < 0)
            return Error::sys("send", "nftables transaction", errno);

        // Every message asked for an ack: one reply each, error or not.
        size_t replies = 0;
        int first_err = 0;
        size_t failed = 0;
        std::vector<char> rbuf(MNL_SOCKET_BUFFER_SIZE);
        while (replies < ops.size()) {
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

    // The keys of one set; ENOENT when the table or the set is missing.
    Result<std::vector<std::vector<uint8_t>>> keys(const std::string& set)
    {
        std::vector<char> buf(MNL_SOCKET_BUFFER_SIZE);
        uint32_t seq = seq_++;
        nlmsghdr* nlh =
            nftnl_nlmsg_build_hdr(buf.data(), NFT_MSG_GETSETELEM, NFPROTO_INET, NLM_F_DUMP | NLM_F_ACK, seq);
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

  private:
    std::unique_ptr<mnl_socket, decltype(&mnl_socket_close)> nl_{nullptr, mnl_socket_close};
    uint32_t portid_ = 0;
    uint32_t seq_ = 0;
};

// Runs ops in transactions of bounded size. Deletes of elements already
// gone (timed out, flushed) are not errors: a transaction that fails with
// ENOENT is retried op by op, skipping those.
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

uint64_t timeout_ms_until(uint64_t deadline_ns)
{
    uint64_t now = realtime_ns();
    if (deadline_ns == 0)
        return kNftDefaultTimeoutS * 1000;
    if (deadline_ns <= now + 1'000'000'000ULL)
        return 1000;
    return (deadline_ns - now) / 1'000'000;
}

std::string comment_of(const MirrorSession& s)
{
    std::string c = "user=" + (s.user.empty() ? std::string("-") : s.user) + " policy=" + s.policy +
                    " session=" + std::to_string(s.id);
    return c.substr(0, 120);
}

// The address reference counts: <run_dir>/nft/addr-<address>/<id>, each
// file holding the session's deadline; guarded by <run_dir>/nft/lock.
class AddrRefs {
  public:
    static Result<AddrRefs> lock(const fs::path& run_dir)
    {
        AddrRefs r;
        r.dir_ = run_dir / "nft";
        std::error_code ec;
        fs::create_directories(r.dir_, ec);
        if (ec)
            return Error::sys("create", r.dir_.string(), ec.value());
        ::chmod(r.dir_.c_str(), 0700);
        r.lock_ = Fd(::open((r.dir_ / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (!r.lock_)
            return Error::sys("open", (r.dir_ / "lock").string(), errno);
        if (::flock(r.lock_.get(), LOCK_EX) != 0)
            return Error::sys("lock", (r.dir_ / "lock").string(), errno);
        return r;
    }

    fs::path addr_dir(const IpAddress& a) const { return dir_ / ("addr-" + a.str()); }

    // Adds the session; returns the latest deadline among the address's
    // sessions (0 = one of them has none).
    uint64_t add(const IpAddress& a, uint64_t id, uint64_t deadline_ns)
    {
        std::error_code ec;
        fs::create_directories(addr_dir(a), ec);
        std::ofstream(addr_dir(a) / std::to_string(id)) << deadline_ns << "\n";
        return latest_deadline(a);
    }

    // Removes the session; returns how many sessions keep the address.
    size_t remove(const IpAddress& a, uint64_t id)
    {
        std::error_code ec;
        fs::remove(addr_dir(a) / std::to_string(id), ec);
        size_t left = count(a);
        if (left == 0)
            fs::remove(addr_dir(a), ec);
        return left;
    }

    // Replaces every count with the expected sessions.
    void rebuild(const std::vector<MirrorSession>& expected)
    {
        std::error_code ec;
        for (const auto& entry : fs::directory_iterator(dir_, ec))
            if (entry.path().filename().string().starts_with("addr-"))
                fs::remove_all(entry.path(), ec);
        for (const auto& s : expected)
            if (s.rhost)
                add(*s.rhost, s.id, s.deadline_ns);
    }

  private:
    size_t count(const IpAddress& a) const
    {
        std::error_code ec;
        size_t n = 0;
        for (auto it = fs::directory_iterator(addr_dir(a), ec); !ec && it != fs::directory_iterator(); it.increment(ec))
            ++n;
        return n;
    }

    uint64_t latest_deadline(const IpAddress& a) const
    {
        std::error_code ec;
        uint64_t latest = 1;
        for (auto it = fs::directory_iterator(addr_dir(a), ec); !ec && it != fs::directory_iterator();
             it.increment(ec)) {
            uint64_t d = 0;
            std::ifstream(it->path()) >> d;
            if (d == 0)
                return 0;
            latest = std::max(latest, d);
        }
        return latest;
    }

    fs::path dir_;
    Fd lock_;
};

std::vector<Op> add_ops(const MirrorSession& s, uint64_t addr_deadline_ns)
{
    std::vector<Op> ops;
    uint64_t timeout = timeout_ms_until(s.deadline_ns);
    std::string comment = comment_of(s);
    ops.push_back({NFT_MSG_NEWSETELEM, session_elem(s.id), timeout, comment});
    if (s.rhost) {
        ops.push_back({NFT_MSG_NEWSETELEM, pair_elem(s.id, *s.rhost), timeout, comment});
        ops.push_back({NFT_MSG_NEWSETELEM, addr_elem(*s.rhost), timeout_ms_until(addr_deadline_ns), comment});
    }
    return ops;
}

bool table_missing(const Error& e)
{
    return e.err == ENOENT;
}

} // namespace

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
        return Error::msg("delete", std::string("nftables table inet ") + kNftTable, nft_ctx_get_error_buffer(ctx.get()));
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
