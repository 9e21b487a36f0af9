// SPDX-License-Identifier: Apache-2.0
#include "core/dataplane/maps.h"

#include "core/dataplane/pins.h"
#include "core/base/time.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace authwall {

aw_session SessionEntry::to_abi() const
{
    aw_session s{};
    s.policy_id = policy_id;
    s.uid = uid;
    s.flags = flags & ~static_cast<uint32_t>(AW_SESSION_HAS_RHOST);
    if (rhost) {
        s.flags |= AW_SESSION_HAS_RHOST;
        std::memcpy(s.rhost, rhost->bytes().data(), 16);
    }
    s.opened_ns = opened_ns;
    return s;
}

SessionEntry SessionEntry::from_abi(const aw_session& s)
{
    SessionEntry e;
    e.policy_id = s.policy_id;
    e.uid = s.uid;
    e.flags = s.flags;
    if (s.flags & AW_SESSION_HAS_RHOST) {
        std::array<uint8_t, 16> b{};
        std::memcpy(b.data(), s.rhost, 16);
        e.rhost = IpAddress(b);
    }
    e.opened_ns = s.opened_ns;
    return e;
}

uint64_t SessionStats::denied_total() const
{
    uint64_t n = 0;
    for (auto d : denied)
        n += d;
    return n;
}

const char* hook_name(unsigned hook)
{
    static constexpr const char* names[AW_HOOK_COUNT] = {"connect4", "connect6",    "sendmsg4", "sendmsg6", "bind4",
                                                         "bind6",    "sock_create", "ingress",  "egress"};
    return hook < AW_HOOK_COUNT ? names[hook] : "unknown";
}

const char* reason_name(unsigned reason)
{
    switch (reason) {
    case AW_REASON_RULE:
        return "rule";
    case AW_REASON_DEFAULT:
        return "default";
    case AW_REASON_REVOKED:
        return "revoked";
    case AW_REASON_NO_POLICY:
        return "no-policy";
    case AW_REASON_FAMILY:
        return "socket-family";
    case AW_REASON_NOT_RHOST:
        return "not-rhost";
    case AW_REASON_MALFORMED:
        return "malformed";
    default:
        return "unknown";
    }
}

const char* hook_direction(unsigned hook)
{
    switch (hook) {
    case AW_HOOK_BIND4:
    case AW_HOOK_BIND6:
        return "bind";
    case AW_HOOK_SOCK_CREATE:
        return "socket";
    case AW_HOOK_INGRESS:
        return "ingress";
    default:
        return "egress";
    }
}

const char* event_verdict_name(unsigned verdict)
{
    switch (verdict) {
    case AW_EVENT_AUDIT:
        return "audit";
    case AW_EVENT_LOG:
        return "log";
    default:
        return "deny";
    }
}

const char* layer_name(unsigned layer)
{
    switch (layer) {
    case AW_LAYER_LOGIN:
        return "login";
    case AW_LAYER_USER:
        return "user";
    default:
        return "unknown";
    }
}

namespace {

Result<Fd> open_pin(const std::filesystem::path& pin_dir, std::string_view name)
{
    auto path = map_pin_path(pin_dir, name);
    Fd fd(bpf_obj_get(path.c_str()));
    if (!fd) {
        int err = errno;
        if (err == ENOENT)
            return Error::sys("open pinned map", path.string(), err,
                              "authwall is not installed under this pin directory (start authwall-loader)");
        if (err == EACCES || err == EPERM)
            return Error::sys("open pinned map", path.string(), err, "reading the pins needs root");
        return Error::sys("open pinned map", path.string(), err);
    }
    return fd;
}

} // namespace

Result<PinnedMaps> PinnedMaps::open(const std::filesystem::path& pin_dir)
{
    PinnedMaps maps;
    maps.pin_dir_ = pin_dir;
    for (size_t slot = 0; slot < kMapNames.size(); ++slot) {
        auto fd = open_pin(pin_dir, kMapNames[slot]);
        // Pins of an older loader lack the later maps until it is
        // restarted: they work as before (retire_session only removes; no
        // refusals by reason; no DNS answers watched).
        auto id = static_cast<MapId>(slot);
        if (!fd && fd.error().err == ENOENT &&
            (id == MapId::PolicyTotals || id == MapId::Refusals || id == MapId::NamesSeen || id == MapId::DnsQueries ||
             id == MapId::DnsAnswers))
            continue;
        if (!fd)
            return fd.error();
        maps.fds_[slot] = std::move(fd).value();
    }
    return maps;
}

Result<PinnedMaps> PinnedMaps::open(const std::filesystem::path& pin_dir, std::initializer_list<MapId> list)
{
    PinnedMaps maps;
    maps.pin_dir_ = pin_dir;
    for (MapId map : list) {
        auto fd = open_pin(pin_dir, map_name(map));
        if (!fd)
            return fd.error();
        maps.fds_[static_cast<size_t>(map)] = std::move(fd).value();
    }
    return maps;
}

int PinnedMaps::map_fd(MapId map) const
{
    auto slot = static_cast<size_t>(map);
    if (!fds_[slot])
        if (auto fd = open_pin(pin_dir_, map_name(map)))
            fds_[slot] = std::move(fd).value();
    return fds_[slot].get();
}

Result<PinnedMaps::Fill> PinnedMaps::fill(MapId map) const
{
    int fd = map_fd(map);
    const std::string name(map_name(map));
    bpf_map_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd, &info, &len) != 0)
        return Error::sys("read map info", name, errno);
    Fill f;
    f.max_entries = info.max_entries;
    std::vector<uint8_t> key(info.key_size), next(info.key_size);
    void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, next.data()) == 0) {
        ++f.entries;
        key = next;
        prev = key.data();
    }
    return f;
}

// The bitmap of levels holding sessions is shared memory (the map is
// mmapable): an atomic OR there cannot lose a level another opener sets at
// the same moment, as a read-modify-write through bpf(2) could.
Status PinnedMaps::mark_session_level(int level)
{
    long page = sysconf(_SC_PAGESIZE);
    void* mem =
        mmap(nullptr, static_cast<size_t>(page), PROT_READ | PROT_WRITE, MAP_SHARED, map_fd(MapId::SessionLevels), 0);
    if (mem == MAP_FAILED)
        return Error::sys("mark session level", std::to_string(level), errno);
    __atomic_fetch_or(static_cast<uint64_t*>(mem), uint64_t{1} << level, __ATOMIC_SEQ_CST);
    munmap(mem, static_cast<size_t>(page));
    return {};
}

Status PinnedMaps::insert_session(uint64_t cgroup_id, int level, const SessionEntry& entry)
{
    if (level < 1 || level > AW_MAX_CGROUP_LEVEL)
        return Error::msg("insert session", std::to_string(cgroup_id),
                          "cgroup level " + std::to_string(level) + " is outside 1.." +
                              std::to_string(AW_MAX_CGROUP_LEVEL));
    // One session never replaces another: an id that is already a session
    // is refused, its counters untouched.
    aw_stats zero{};
    bool counters_existed = false;
    if (bpf_map_update_elem(map_fd(MapId::SessionStats), &cgroup_id, &zero, BPF_NOEXIST) != 0) {
        int err = errno;
        if (err != EEXIST)
            return Error::sys("create counters of session", std::to_string(cgroup_id), err,
                              err == E2BIG ? "the sessions map is full (raise limits.max_sessions)" : "");
        counters_existed = true;
    }
    if (auto st = mark_session_level(level); !st)
        return st;
    aw_session value = entry.to_abi();
    if (bpf_map_update_elem(map_fd(MapId::Sessions), &cgroup_id, &value, BPF_NOEXIST) != 0) {
        int err = errno;
        if (!counters_existed)
            bpf_map_delete_elem(map_fd(MapId::SessionStats), &cgroup_id);
        return Error::sys("insert session", std::to_string(cgroup_id), err,
                          err == EEXIST  ? "it is a session already (authctl show " + std::to_string(cgroup_id) + ")"
                          : err == E2BIG ? "the sessions map is full (raise limits.max_sessions)"
                                         : "");
    }
    return advance_generation();
}

Status PinnedMaps::set_user(uint32_t uid, uint32_t policy_id, uint32_t flags)
{
    if (uid == 0)
        return Error::msg("confine user", "uid 0", "root is never in the user layer (exempt_users)");
    aw_user value{};
    if (bpf_map_lookup_elem(map_fd(MapId::Users), &uid, &value) != 0)
        value = aw_user{};
    value.policy_id = policy_id;
    value.flags = flags;
    value.armed_ns = realtime_ns();
    if (bpf_map_update_elem(map_fd(MapId::Users), &uid, &value, BPF_ANY) != 0) {
        int err = errno;
        return Error::sys("confine user", "uid " + std::to_string(uid), err,
                          err == E2BIG ? "the users map is full (it holds limits.max_sessions users; raise it)" : "");
    }
    return advance_generation();
}

Status PinnedMaps::remove_user(uint32_t uid)
{
    if (bpf_map_delete_elem(map_fd(MapId::Users), &uid) != 0 && errno != ENOENT)
        return Error::sys("release user", "uid " + std::to_string(uid), errno);
    return advance_generation();
}

namespace {
UserEntry user_from_abi(const aw_user& u)
{
    return UserEntry{u.policy_id, u.flags, u.armed_ns, u.denied, u.audited};
}
} // namespace

Result<std::optional<UserEntry>> PinnedMaps::lookup_user(uint32_t uid) const
{
    aw_user value{};
    if (bpf_map_lookup_elem(map_fd(MapId::Users), &uid, &value) != 0) {
        if (errno == ENOENT)
            return std::optional<UserEntry>();
        return Error::sys("look up user", "uid " + std::to_string(uid), errno);
    }
    return std::optional<UserEntry>(user_from_abi(value));
}

Result<std::vector<std::pair<uint32_t, UserEntry>>> PinnedMaps::list_users() const
{
    std::vector<std::pair<uint32_t, UserEntry>> out;
    int fd = map_fd(MapId::Users);
    uint32_t key = 0, next = 0;
    void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        aw_user value{};
        if (bpf_map_lookup_elem(fd, &next, &value) == 0)
            out.emplace_back(next, user_from_abi(value));
        key = next;
        prev = &key;
    }
    return out;
}

Status PinnedMaps::remove_session(uint64_t cgroup_id)
{
    if (bpf_map_delete_elem(map_fd(MapId::Sessions), &cgroup_id) != 0 && errno != ENOENT)
        return Error::sys("remove session", std::to_string(cgroup_id), errno);
    if (bpf_map_delete_elem(map_fd(MapId::SessionStats), &cgroup_id) != 0 && errno != ENOENT)
        return Error::sys("remove counters of session", std::to_string(cgroup_id), errno);
    return advance_generation();
}

namespace {

// A window of shared memory onto part of an mmapable array map; unmapped
// when it goes.
class MappedArray {
  public:
    MappedArray(int fd, size_t offset, size_t length, int prot)
    {
        const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
        size_t first = offset / page * page;
        length_ = (offset + length - first + page - 1) / page * page;
        void* mem = fd < 0 ? MAP_FAILED : mmap(nullptr, length_, prot, MAP_SHARED, fd, static_cast<off_t>(first));
        if (mem != MAP_FAILED) {
            base_ = mem;
            at_ = static_cast<char*>(mem) + (offset - first);
        }
    }
    ~MappedArray()
    {
        if (base_)
            munmap(base_, length_);
    }
    MappedArray(const MappedArray&) = delete;
    MappedArray& operator=(const MappedArray&) = delete;
    template <typename T> T* at(size_t index = 0) const { return at_ ? reinterpret_cast<T*>(at_) + index : nullptr; }

  private:
    void* base_ = nullptr;
    char* at_ = nullptr;
    size_t length_ = 0;
};

void add_stats(aw_stats& into, const aw_stats& s)
{
    __atomic_fetch_add(&into.bytes_in, s.bytes_in, __ATOMIC_RELAXED);
    __atomic_fetch_add(&into.bytes_out, s.bytes_out, __ATOMIC_RELAXED);
    __atomic_fetch_add(&into.packets_in, s.packets_in, __ATOMIC_RELAXED);
    __atomic_fetch_add(&into.packets_out, s.packets_out, __ATOMIC_RELAXED);
    for (unsigned h = 0; h < AW_HOOK_COUNT; ++h)
        __atomic_fetch_add(&into.denied[h], s.denied[h], __ATOMIC_RELAXED);
    __atomic_fetch_add(&into.audited, s.audited, __ATOMIC_RELAXED);
}

SessionStats stats_from_abi(const aw_stats& s)
{
    SessionStats out;
    out.bytes_in = __atomic_load_n(&s.bytes_in, __ATOMIC_RELAXED);
    out.bytes_out = __atomic_load_n(&s.bytes_out, __ATOMIC_RELAXED);
    out.packets_in = __atomic_load_n(&s.packets_in, __ATOMIC_RELAXED);
    out.packets_out = __atomic_load_n(&s.packets_out, __ATOMIC_RELAXED);
    for (unsigned h = 0; h < AW_HOOK_COUNT; ++h)
        out.denied[h] = __atomic_load_n(&s.denied[h], __ATOMIC_RELAXED);
    out.audited = __atomic_load_n(&s.audited, __ATOMIC_RELAXED);
    return out;
}

} // namespace

// The fold is bracketed (folds_begun, folds_done) around both the addition
// and the removal, so a reader never takes a half-done fold (the session
// counted twice, or not at all) for a state. Atomic adds through shared
// memory: concurrent closes of one policy's sessions never lose one.
Status PinnedMaps::retire_session(uint64_t cgroup_id)
{
    aw_session entry{};
    aw_stats stats{};
    if (bpf_map_lookup_elem(map_fd(MapId::Sessions), &cgroup_id, &entry) != 0 ||
        entry.policy_id >= AW_POLICY_TOTALS_MAX)
        return remove_session(cgroup_id);
    MappedArray slot(map_fd(MapId::PolicyTotals), entry.policy_id * sizeof(aw_policy_totals), sizeof(aw_policy_totals),
                     PROT_READ | PROT_WRITE);
    auto* totals = slot.at<aw_policy_totals>();
    if (!totals)
        return remove_session(cgroup_id);
    __atomic_fetch_add(&totals->folds_begun, 1, __ATOMIC_SEQ_CST);
    if (bpf_map_lookup_elem(map_fd(MapId::SessionStats), &cgroup_id, &stats) == 0)
        add_stats(totals->stats, stats);
    Status removed = remove_session(cgroup_id);
    __atomic_fetch_add(&totals->folds_done, 1, __ATOMIC_SEQ_CST);
    return removed;
}

Result<FoldedTotals> PinnedMaps::policy_totals() const
{
    FoldedTotals out;
    int fd = map_fd(MapId::PolicyTotals);
    if (fd < 0)
        return out; // pins of an older loader: nothing was folded
    MappedArray all(fd, 0, AW_POLICY_TOTALS_MAX * sizeof(aw_policy_totals), PROT_READ);
    if (!all.at<aw_policy_totals>())
        return Error::sys("read policy totals", "policy_totals", errno);
    for (uint32_t id = 0; id < AW_POLICY_TOTALS_MAX; ++id) {
        const aw_policy_totals* t = all.at<aw_policy_totals>(id);
        uint64_t begun = __atomic_load_n(&t->folds_begun, __ATOMIC_SEQ_CST);
        out.folds_begun += begun;
        out.folds_done += __atomic_load_n(&t->folds_done, __ATOMIC_SEQ_CST);
        if (begun)
            out.by_policy[id] = stats_from_abi(t->stats);
    }
    return out;
}

Result<std::optional<SessionEntry>> PinnedMaps::lookup_session(uint64_t cgroup_id) const
{
    aw_session value{};
    if (bpf_map_lookup_elem(map_fd(MapId::Sessions), &cgroup_id, &value) != 0) {
        if (errno == ENOENT)
            return std::optional<SessionEntry>();
        return Error::sys("look up session", std::to_string(cgroup_id), errno);
    }
    return std::optional<SessionEntry>(SessionEntry::from_abi(value));
}

Result<std::vector<std::pair<uint64_t, SessionEntry>>> PinnedMaps::list_sessions() const
{
    std::vector<std::pair<uint64_t, SessionEntry>> out;
    uint64_t key = 0, next = 0;
    uint64_t* prev = nullptr;
    while (bpf_map_get_next_key(map_fd(MapId::Sessions), prev, &next) == 0) {
        aw_session value{};
        if (bpf_map_lookup_elem(map_fd(MapId::Sessions), &next, &value) == 0)
            out.emplace_back(next, SessionEntry::from_abi(value));
        key = next;
        prev = &key;
    }
    if (errno != ENOENT)
        return Error::sys("list sessions", "sessions", errno);
    return out;
}

Status PinnedMaps::set_session_flags(uint64_t cgroup_id, uint32_t set, uint32_t clear)
{
    aw_session value{};
    if (bpf_map_lookup_elem(map_fd(MapId::Sessions), &cgroup_id, &value) != 0)
        return Error::sys("look up session", std::to_string(cgroup_id), errno);
    value.flags = (value.flags | set) & ~clear;
    if (bpf_map_update_elem(map_fd(MapId::Sessions), &cgroup_id, &value, BPF_EXIST) != 0)
        return Error::sys("update session", std::to_string(cgroup_id), errno);
    return advance_generation();
}

namespace {
aw_name_key name_key(uint64_t session_id, const IpAddress& address)
{
    aw_name_key k{};
    k.session_id = session_id;
    std::memcpy(k.addr, address.bytes().data(), sizeof(k.addr));
    return k;
}
} // namespace

Result<std::optional<aw_name_seen>> PinnedMaps::name_seen(uint64_t session_id, const IpAddress& address) const
{
    aw_name_key k = name_key(session_id, address);
    aw_name_seen value{};
    if (bpf_map_lookup_elem(map_fd(MapId::NamesSeen), &k, &value) != 0) {
        if (errno == ENOENT)
            return std::optional<aw_name_seen>();
        return Error::sys("look up", "names_seen", errno);
    }
    return std::optional<aw_name_seen>(value);
}

Status PinnedMaps::write_name_seen(uint64_t session_id, const IpAddress& address, const aw_name_seen& seen)
{
    aw_name_key k = name_key(session_id, address);
    if (bpf_map_update_elem(map_fd(MapId::NamesSeen), &k, &seen, BPF_ANY) != 0)
        return Error::sys("write", "names_seen", errno);
    return {};
}

Result<SessionStats> PinnedMaps::session_stats(uint64_t cgroup_id) const
{
    aw_stats s{};
    if (bpf_map_lookup_elem(map_fd(MapId::SessionStats), &cgroup_id, &s) != 0)
        return Error::sys("read counters of session", std::to_string(cgroup_id), errno);
    SessionStats out;
    out.bytes_in = s.bytes_in;
    out.bytes_out = s.bytes_out;
    out.packets_in = s.packets_in;
    out.packets_out = s.packets_out;
    for (unsigned h = 0; h < AW_HOOK_COUNT; ++h)
        out.denied[h] = s.denied[h];
    out.audited = s.audited;
    return out;
}

Result<std::vector<std::pair<uint64_t, SessionEntry>>> PinnedMaps::list_sessions_batch() const
{
    int fd = map_fd(MapId::Sessions);
    std::vector<std::pair<uint64_t, SessionEntry>> out;
    uint32_t chunk = 4096;
    std::vector<uint64_t> keys(chunk);
    std::vector<aw_session> values(chunk);
    uint64_t in_batch = 0, out_batch = 0; // an opaque position (a bucket index for hashes)
    bool first = true;
    for (;;) {
        LIBBPF_OPTS(bpf_map_batch_opts, opts);
        uint32_t count = chunk;
        int rc = bpf_map_lookup_batch(fd, first ? nullptr : &in_batch, &out_batch, keys.data(), values.data(), &count,
                                      &opts);
        int err = rc != 0 ? errno : 0;
        if (err == ENOSPC && count == 0) { // one bucket holds more than a chunk
            chunk *= 2;
            keys.resize(chunk);
            values.resize(chunk);
            continue;
        }
        if (first && out.empty() && count == 0 && (err == EINVAL || err == EOPNOTSUPP || err == 524 /* ENOTSUPP */))
            return list_sessions();
        for (uint32_t i = 0; i < count; ++i)
            out.emplace_back(keys[i], SessionEntry::from_abi(values[i]));
        if (err == ENOENT)
            return out; // the end of the map
        if (err != 0)
            return Error::sys("list sessions", "sessions", err);
        in_batch = out_batch;
        first = false;
    }
}

namespace {
Result<std::map<std::string, uint32_t>> read_policy_names(int fd, bool active_only)
{
    std::map<std::string, uint32_t> out;
    uint32_t key = 0, next = 0;
    uint32_t* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
        aw_policy_name value{};
        if (bpf_map_lookup_elem(fd, &next, &value) == 0) {
            value.name[AW_POLICY_NAME_MAX - 1] = '\0';
            if (!active_only || (value.flags & AW_POLICY_NAME_ACTIVE))
                out[value.name] = next;
        }
        key = next;
        prev = &key;
    }
    if (errno != ENOENT)
        return Error::sys("list policies", "policy_names", errno);
    return out;
}
} // namespace

Result<std::map<std::string, uint32_t>> PinnedMaps::policy_ids() const
{
    return read_policy_names(map_fd(MapId::PolicyNames), false);
}

Result<std::map<std::string, uint32_t>> PinnedMaps::active_policy_ids() const
{
    return read_policy_names(map_fd(MapId::PolicyNames), true);
}

Result<bool> PinnedMaps::policy_in_force(const std::string& name, uint32_t id) const
{
    aw_policy_name value{};
    if (bpf_map_lookup_elem(map_fd(MapId::PolicyNames), &id, &value) != 0) {
        if (errno == ENOENT)
            return false;
        return Error::sys("look up policy", name + " (id " + std::to_string(id) + ")", errno);
    }
    value.name[AW_POLICY_NAME_MAX - 1] = '\0';
    return (value.flags & AW_POLICY_NAME_ACTIVE) && name == value.name;
}

Status PinnedMaps::install_policies(const CompiledPolicies& compiled)
{
    LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
    uint32_t max_entries = static_cast<uint32_t>(std::max<size_t>(compiled.entries.size(), 1));
    Fd trie(bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "aw_policy", sizeof(aw_rule_key), sizeof(aw_rule_val), max_entries,
                           &opts));
    if (!trie)
        return Error::sys("create policy trie", std::to_string(max_entries) + " entries", errno);
    for (const auto& e : compiled.entries)
        if (bpf_map_update_elem(trie.get(), &e.key, &e.value, BPF_NOEXIST) != 0)
            return Error::sys("fill policy trie", "aw_policy", errno);

    // Names first (inactive ones keep their id, so ids are never reused).
    auto known = policy_ids();
    if (!known)
        return known.error();
    int names = map_fd(MapId::PolicyNames);
    for (const auto& [name, id] : *known) {
        if (compiled.ids.count(name))
            continue;
        aw_policy_name value{};
        std::strncpy(value.name, name.c_str(), AW_POLICY_NAME_MAX - 1);
        value.flags = 0;
        if (bpf_map_update_elem(names, &id, &value, BPF_ANY) != 0)
            return Error::sys("record policy", name, errno);
    }
    for (const auto& [name, id] : compiled.ids) {
        aw_policy_name value{};
        std::strncpy(value.name, name.c_str(), AW_POLICY_NAME_MAX - 1);
        value.flags = AW_POLICY_NAME_ACTIVE;
        if (bpf_map_update_elem(names, &id, &value, BPF_ANY) != 0)
            return Error::sys("record policy", name, errno,
                              errno == E2BIG ? "more policies than policy_names holds" : "");
    }

    uint32_t slot = 0;
    int trie_fd = trie.get();
    if (bpf_map_update_elem(map_fd(MapId::PolicyGen), &slot, &trie_fd, BPF_ANY) != 0)
        return Error::sys("activate policy generation", "policy_gen", errno);
    return advance_generation();
}

namespace {
Result<Fd> active_trie(int outer)
{
    uint32_t slot = 0, inner_id = 0;
    if (bpf_map_lookup_elem(outer, &slot, &inner_id) != 0) {
        if (errno == ENOENT)
            return Fd();
        return Error::sys("read active generation", "policy_gen", errno);
    }
    Fd fd(bpf_map_get_fd_by_id(inner_id));
    if (!fd)
        return Error::sys("open policy trie", "id " + std::to_string(inner_id), errno);
    return fd;
}
} // namespace

bool PinnedMaps::has_active_policies() const
{
    auto fd = active_trie(map_fd(MapId::PolicyGen));
    return fd && fd->valid();
}

Result<std::vector<CompiledEntry>> PinnedMaps::read_active_policies() const
{
    auto fd = active_trie(map_fd(MapId::PolicyGen));
    if (!fd)
        return fd.error();
    std::vector<CompiledEntry> out;
    if (!fd->valid())
        return out;
    aw_rule_key key{}, next{};
    aw_rule_key* prev = nullptr;
    while (bpf_map_get_next_key(fd->get(), prev, &next) == 0) {
        CompiledEntry e;
        e.key = next;
        if (bpf_map_lookup_elem(fd->get(), &next, &e.value) == 0)
            out.push_back(e);
        key = next;
        prev = &key;
    }
    if (errno != ENOENT)
        return Error::sys("read policy trie", "aw_policy", errno);
    return out;
}

Result<aw_settings> PinnedMaps::settings() const
{
    uint32_t zero = 0;
    aw_settings s{};
    if (bpf_map_lookup_elem(map_fd(MapId::Settings), &zero, &s) != 0)
        return Error::sys("read settings", "settings", errno);
    return s;
}

Status PinnedMaps::write_settings(const aw_settings& s)
{
    uint32_t zero = 0;
    if (bpf_map_update_elem(map_fd(MapId::Settings), &zero, &s, BPF_ANY) != 0)
        return Error::sys("write settings", "settings", errno);
    return advance_generation();
}

Status PinnedMaps::advance_generation()
{
    // Random, not a counter: two writers that read the same value and both
    // added one would leave the generation where one of them found it.
    uint64_t value = 0;
    if (getrandom(&value, sizeof(value), 0) != static_cast<ssize_t>(sizeof(value)))
        return Error::sys("advance the data plane generation", "getrandom", errno);
    value |= AW_GENERATION_VALID;
    uint32_t zero = 0;
    if (bpf_map_update_elem(map_fd(MapId::Generation), &zero, &value, BPF_ANY) != 0)
        return Error::sys("advance the data plane generation", "generation", errno);
    return {};
}

Result<uint64_t> PinnedMaps::events_suppressed() const
{
    uint32_t zero = 0;
    int ncpus = libbpf_num_possible_cpus();
    std::vector<aw_event_budget> per_cpu(static_cast<size_t>(ncpus > 0 ? ncpus : 1));
    if (bpf_map_lookup_elem(map_fd(MapId::EventBudget), &zero, per_cpu.data()) != 0)
        return Error::sys("read event budget", "event_budget", errno);
    uint64_t n = 0;
    for (const auto& b : per_cpu)
        n += b.suppressed;
    return n;
}

Result<RefusalCounts> PinnedMaps::refusals() const
{
    RefusalCounts total;
    int fd = map_fd(MapId::Refusals);
    if (fd < 0)
        return total; // pins of an older loader: nothing counted yet
    uint32_t zero = 0;
    int ncpus = libbpf_num_possible_cpus();
    std::vector<aw_refusals> per_cpu(static_cast<size_t>(ncpus > 0 ? ncpus : 1));
    if (bpf_map_lookup_elem(fd, &zero, per_cpu.data()) != 0)
        return Error::sys("read refusals", "refusals", errno);
    for (const auto& c : per_cpu)
        for (size_t h = 0; h < AW_HOOK_COUNT; ++h)
            for (size_t r = 0; r < AW_REASON_COUNT; ++r) {
                total.denied[h][r] += c.denied[h][r];
                total.audited[h][r] += c.audited[h][r];
            }
    return total;
}

} // namespace authwall
