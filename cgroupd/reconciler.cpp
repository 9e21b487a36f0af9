// SPDX-License-Identifier: Apache-2.0
#include "cgroupd/reconciler.h"

#include "core/host/cgroup.h"
#include "core/session/record.h"
#include "core/base/time.h"

#include <cerrno>
#include <fnmatch.h>
#include <pwd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <fstream>
#include <future>
#include <unordered_map>
#include <unordered_set>

namespace authwall {

namespace fs = std::filesystem;

namespace {

constexpr uint32_t kTreeMask = IN_CREATE | IN_DELETE | IN_ONLYDIR;

std::optional<uint64_t> record_id(const std::string& name)
{
    if (!name.ends_with(".json"))
        return std::nullopt;
    try {
        size_t used = 0;
        uint64_t id = std::stoull(name, &used);
        if (used + 5 == name.size())
            return id;
    } catch (const std::exception&) {
    }
    return std::nullopt;
}

} // namespace

Reconciler::Reconciler(Config config, EventSink& events) : config_(std::move(config)), events_(events) {}

Status Reconciler::start()
{
    auto mount = find_cgroup2_mount();
    if (!mount)
        return mount.error();
    mount_ = *mount;
    auto maps = PinnedMaps::open(config_.pin_dir);
    if (!maps)
        return maps.error();
    maps_.emplace(std::move(maps).value());
    store_.emplace(&*maps_, config_.run_dir, config_.nft_mirror, linked_login_extras());
    sessions_.emplace(*store_, events_);
    inotify_.reset(inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!inotify_)
        return Error::sys("create inotify instance", "cgroupd", errno);

    std::error_code ec;
    fs::create_directories(sessions_dir(config_.run_dir), ec);
    int wd = inotify_add_watch(inotify_.get(), config_.run_dir.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE);
    if (wd < 0)
        return Error::sys("watch", config_.run_dir.string(), errno);
    watches_[wd] = {WatchKind::RunDir, config_.run_dir};
    wd = inotify_add_watch(inotify_.get(), sessions_dir(config_.run_dir).c_str(), IN_MOVED_TO | IN_CLOSE_WRITE);
    if (wd < 0)
        return Error::sys("watch", sessions_dir(config_.run_dir).string(), errno);
    watches_[wd] = {WatchKind::Sessions, sessions_dir(config_.run_dir)};

    load_index();
    // Reaps and repairs before anything is enrolled; its walk of the
    // enforcement roots also puts the tree watches in place.
    return reconcile(true);
}

std::vector<fs::path> Reconciler::enforcement_roots() const
{
    auto roots = config_.enforcement_roots;
    if (roots.empty())
        roots.push_back(mount_.mount_point);
    return roots;
}

void Reconciler::load_index()
{
    auto index = read_policy_index(config_.run_dir);
    if (index)
        index_ = std::move(index).value();
}

bool Reconciler::watch_dir(const fs::path& dir)
{
    int wd = inotify_add_watch(inotify_.get(), dir.c_str(), kTreeMask);
    if (wd < 0)
        return false; // gone already, or the watch limit: the sweep is the backstop
    watches_[wd] = {WatchKind::Tree, dir};
    return true;
}

void Reconciler::watch_tree(const fs::path& dir)
{
    if (!watch_dir(dir))
        return;
    // Children made before the watch existed got no event: look at them now.
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec)) {
        if (e.is_directory(ec) && !e.is_symlink(ec)) {
            on_new_cgroup(e.path());
            watch_tree(e.path());
        }
    }
}

void Reconciler::watch_session(const SessionRecord& rec)
{
    if (session_watch_.count(rec.id))
        return;
    int wd = inotify_add_watch(inotify_.get(), (rec.cgroup + "/cgroup.events").c_str(), IN_MODIFY);
    if (wd < 0)
        return;
    watches_[wd] = {WatchKind::Events, rec.cgroup, rec.id};
    session_watch_[rec.id] = wd;
}

void Reconciler::schedule(uint64_t id, Clock::time_point when)
{
    auto it = due_.find(id);
    if (it == due_.end() || when < it->second)
        due_[id] = when;
}

std::optional<Reconciler::Clock::time_point> Reconciler::next_deadline() const
{
    std::optional<Clock::time_point> next;
    for (const auto& [id, when] : due_)
        if (!next || when < *next)
            next = when;
    return next;
}

void Reconciler::check_session(uint64_t id)
{
    auto rec = read_record(config_.run_dir, id);
    if (!rec)
        return; // closed normally, or not ours
    check_record(*rec, is_cgroup2_dir(rec->cgroup));
}

// Decides what a session needs now; schedules what it will need later.
// `rec` may have been read a moment ago (the sweep reads all records
// first): whatever acts at once reads it again.
void Reconciler::check_record(const SessionRecord& rec, bool cgroup_exists)
{
    uint64_t id = rec.id;
    if (!cgroup_exists) {
        schedule(id, Clock::now() + grace_for(id)); // run_due reaps it if still recorded
        return;
    }
    watch_session(rec);
    if (rec.kind == SessionKind::Login && !cgroup_populated(rec.cgroup)) {
        schedule(id, Clock::now() + grace_for(id));
        return;
    }
    if (rec.max_duration_s && !expired_.count(id)) {
        uint64_t deadline_ns = rec.opened_ns + rec.max_duration_s * 1'000'000'000ULL;
        uint64_t now_ns = realtime_ns();
        if (now_ns < deadline_ns)
            schedule(id, Clock::now() + std::chrono::nanoseconds(deadline_ns - now_ns));
        else if (auto current = read_record(config_.run_dir, id))
            expire(*current); // still recorded: not closed meanwhile
    }
}

Status Reconciler::run_due()
{
    auto now = Clock::now();
    std::vector<uint64_t> ready;
    for (const auto& [id, when] : due_)
        if (when <= now)
            ready.push_back(id);
    for (uint64_t id : ready) {
        due_.erase(id);
        auto rec = read_record(config_.run_dir, id);
        if (!rec)
            continue;
        fs::path cgroup = rec->cgroup;
        if (!is_cgroup2_dir(cgroup) || (rec->kind == SessionKind::Login && !cgroup_populated(cgroup)))
            reap(*rec, expired_.count(id) ? "expired" : "its processes ended without a close");
        else
            check_session(id);
    }
    return {};
}

// The mirror holds every session in the map that is not revoked.
void Reconciler::reconcile_mirror()
{
    if (!config_.nft_mirror)
        return;
    auto repair = sessions_->repair_mirror();
    if (!repair) {
        warnings_.push_back("nft mirror: " + repair.error().message());
        return;
    }
    if (!repair->empty()) {
        ++stats_.mirror_repairs;
        warnings_.push_back(
            "nft mirror repaired: " + std::string(repair->table_missing ? "table inet authwall recreated, " : "") +
            std::to_string(repair->missing) + " missing element(s) added, " + std::to_string(repair->stray) +
            " stray element(s) removed");
    }
}

void Reconciler::expire(const SessionRecord& rec)
{
    expired_.insert(rec.id);
    sessions_->revoke(rec, "expired", "max_duration " + std::to_string(rec.max_duration_s) + "s reached", &warnings_)
        .ok();
    cgroup_kill(rec.cgroup).ok();
    ++stats_.expired;
    schedule(rec.id, Clock::now() + kReapGrace);
}

// Ends a session whose processes are gone. A login cgroup that has
// processes again (a leader moved in just now) is alive: it is left as it
// was, unrevoked; one whose removal fails is left revoked for a later look.
void Reconciler::reap(const SessionRecord& rec, const std::string& why)
{
    const bool login = rec.kind == SessionKind::Login;
    if (login && is_cgroup2_dir(rec.cgroup) && cgroup_populated(rec.cgroup))
        return;
    const bool was_expired = expired_.count(rec.id) > 0;
    EndSpec spec{was_expired ? "" : "reaped", why, [&](std::string&) {
                     if (!login || !is_cgroup2_dir(rec.cgroup) || cgroup_remove_tree(rec.cgroup).ok())
                         return Emptied::Gone;
                     // Someone came back between the look and the rmdir: not ours to end.
                     return cgroup_populated(rec.cgroup) ? Emptied::Undo : Emptied::Retry;
                 }};
    auto ended = sessions_->end(rec, spec);
    if (ended)
        for (auto& w : ended->warnings)
            warnings_.push_back(std::move(w));
    if (!ended || ended->emptied != Emptied::Gone)
        return;
    forget_session(rec.id);
    if (!was_expired)
        ++stats_.reaped;
}

// Drops what this daemon kept about an ended session.
void Reconciler::forget_session(uint64_t id)
{
    if (auto it = session_watch_.find(id); it != session_watch_.end()) {
        inotify_rm_watch(inotify_.get(), it->second);
        watches_.erase(it->second);
        session_watch_.erase(it);
    }
    due_.erase(id);
    expired_.erase(id);
}

std::optional<std::string> Reconciler::matching_policy_glob(const fs::path& dir, const IndexedPolicy** policy) const
{
    if (!index_)
        return std::nullopt;
    auto rel = dir.lexically_relative(mount_.mount_point).string();
    for (const auto& p : index_->policies) {
        for (const auto& glob : p.match.cgroups) {
            if (fnmatch(glob.c_str(), rel.c_str(), FNM_PATHNAME) == 0) {
                *policy = &p;
                return glob;
            }
        }
    }
    return std::nullopt;
}

// A cheap first look for the sweep's walk, where nearly every cgroup
// matches no glob: false only when matching_policy_glob(dir) finds none.
// A walked path is normal, so the path below the mount is its tail.
bool Reconciler::may_match_policy_glob(const std::string& dir) const
{
    if (!index_)
        return false;
    const std::string& mount = mount_.mount_point.native();
    size_t skip = mount.ends_with('/') ? mount.size() : mount.size() + 1;
    if (dir.size() <= skip || !dir.starts_with(mount) || dir[skip - 1] != '/')
        return true; // not below the mount as written: matching_policy_glob decides
    const char* rel = dir.c_str() + skip;
    for (const auto& p : index_->policies)
        for (const auto& glob : p.match.cgroups)
            if (fnmatch(glob.c_str(), rel, FNM_PATHNAME) == 0)
                return true;
    return false;
}

// The entry polices every socket made in this cgroup from now on, and
// those made in it before; traffic before this moment, and sockets a
// process brought from another cgroup, were not: the open event says so.
// A mirror that cannot be written does not stop the enrollment (that would
// leave the container unconfined); the sweep repairs the mirror.
Status Reconciler::enroll(const fs::path& dir, const IndexedPolicy& policy)
{
    auto id = cgroup_id(dir);
    if (!id)
        return id.error();
    auto level = cgroup_level(mount_, dir);
    if (!level)
        return level.error();
    OpenSpec spec;
    spec.record.id = *id;
    spec.record.kind = SessionKind::Container;
    spec.record.service = "authwall-cgroupd";
    spec.record.policy = policy.name;
    spec.record.policy_id = policy.id;
    spec.record.cgroup = dir.string();
    spec.record.max_duration_s = policy.max_duration_s;
    spec.level = *level;
    spec.mirror_required = false;
    spec.place = [&dir](std::string& detail) {
        detail = cgroup_populated(dir) ? "enrolled by path after processes had started in it "
                                         "(their traffic before enrollment was not policed)"
                                       : "enrolled by path";
        return Status{};
    };
    auto rec = sessions_->open(std::move(spec), &warnings_);
    if (!rec)
        return rec.error();
    ++stats_.enrolled;
    watch_session(*rec);
    return {};
}

void Reconciler::on_new_cgroup(const fs::path& dir)
{
    // Login sessions live in <root>/authwall/; they are PAM's.
    if (dir.parent_path().filename() == "authwall")
        return;
    const IndexedPolicy* policy = nullptr;
    if (!matching_policy_glob(dir, &policy))
        return;
    auto ancestors = cgroup_ancestor_ids(mount_, dir);
    if (ancestors)
        for (auto a : *ancestors)
            if (auto s = maps_->lookup_session(a); s && s->has_value())
                return; // already covered (itself, or inside an enrolled cgroup)
    enroll(dir, *policy).ok();
}

void Reconciler::on_removed_cgroup(const fs::path& dir)
{
    // A normal close removes the cgroup a moment before its record: look
    // again after the grace, and reap only what is still recorded then.
    for (const auto& [wd, w] : watches_) {
        if (w.kind == WatchKind::Events && w.path == dir) {
            schedule(w.session, Clock::now() + grace_for(w.session));
            return;
        }
    }
}

// close_session revokes a session before it empties, then removes its
// cgroup, entry and record: a session that is revoked, or whose entry is
// already gone, is (most likely) being closed and gets the grace to finish;
// one that empties while its entry is there and unrevoked lost its
// processes — reap now.
Reconciler::Clock::duration Reconciler::grace_for(uint64_t id) const
{
    auto entry = maps_->lookup_session(id);
    if (entry && entry->has_value() && !((*entry)->flags & AW_SESSION_REVOKED))
        return Clock::duration::zero();
    return kReapGrace;
}

void Reconciler::on_record_written(uint64_t id)
{
    check_session(id);
}

Status Reconciler::handle_events()
{
    alignas(inotify_event) char buf[16384];
    bool overflow = false;
    for (;;) {
        ssize_t n = ::read(inotify_.get(), buf, sizeof(buf));
        if (n <= 0)
            break;
        for (char* p = buf; p < buf + n;) {
            auto* ev = reinterpret_cast<inotify_event*>(p);
            p += sizeof(inotify_event) + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) {
                overflow = true;
                continue;
            }
            auto it = watches_.find(ev->wd);
            if (it == watches_.end())
                continue;
            if (ev->mask & IN_IGNORED) {
                if (it->second.kind == WatchKind::Events)
                    session_watch_.erase(it->second.session);
                watches_.erase(it);
                continue;
            }
            Watch w = it->second;
            std::string name = ev->len ? std::string(ev->name) : std::string();
            switch (w.kind) {
            case WatchKind::Tree:
                if ((ev->mask & IN_CREATE) && (ev->mask & IN_ISDIR)) {
                    watch_tree(w.path / name);
                    on_new_cgroup(w.path / name);
                } else if ((ev->mask & IN_DELETE) && (ev->mask & IN_ISDIR)) {
                    on_removed_cgroup(w.path / name);
                }
                break;
            case WatchKind::Events:
                check_session(w.session);
                break;
            case WatchKind::RunDir:
                if (name == "policies.json")
                    load_index();
                break;
            case WatchKind::Sessions:
                if (auto id = record_id(name))
                    on_record_written(*id);
                break;
            }
        }
    }
    if (overflow)
        return sweep();
    return {};
}

Status Reconciler::sweep()
{
    return reconcile(false);
}

// What one sweep knows: the cgroups its walk found, the records and the
// entries, and what it repaired on the way.
struct Reconciler::SweepState {
    std::vector<CgroupDir> dirs;
    std::unordered_map<uint64_t, const std::string*> walked; // id → path, into dirs
    std::unordered_map<uint64_t, SessionRecord> records;
    std::vector<std::pair<uint64_t, SessionEntry>> entries;
    std::unordered_set<uint64_t> in_map, repaired;
};

// One walk of the enforcement roots tells where every cgroup in them is
// (ids from the directory entries, no syscall per cgroup) and lists the
// candidates for enrollment; an entry it did not see is asked of the kernel
// by id. With `add_watches` (at start) it also adds the tree watches, each
// directory's before its children are read: a cgroup made during or after
// the walk is reported by inotify, one made before is in the walk.
void Reconciler::walk_roots(bool add_watches, SweepState& state)
{
    CgroupDirVisitor on_dir;
    if (add_watches)
        on_dir = [this](const CgroupDir& d) { watch_dir(d.path); };
    for (const auto& root : enforcement_roots()) {
        auto found = walk_cgroup_tree(root, on_dir);
        state.dirs.insert(state.dirs.end(), std::make_move_iterator(found.begin()),
                          std::make_move_iterator(found.end()));
    }
    state.walked.reserve(state.dirs.size());
    for (const auto& d : state.dirs)
        state.walked.emplace(d.id, &d.path);
}

// The record of an entry whose writer died before writing one.
SessionRecord Reconciler::repaired_record(uint64_t id, const SessionEntry& entry, const std::string& path) const
{
    SessionRecord r;
    r.id = id;
    r.correlation = random_hex(16);
    r.kind = (entry.flags & AW_SESSION_CONTAINER) ? SessionKind::Container : SessionKind::Login;
    r.uid = entry.uid;
    passwd pw{};
    passwd* found = nullptr;
    char pwbuf[4096];
    if (getpwuid_r(entry.uid, &pw, pwbuf, sizeof(pwbuf), &found) == 0 && found)
        r.user = pw.pw_name;
    r.service = "(repaired)";
    r.policy_id = entry.policy_id;
    r.policy = "#" + std::to_string(entry.policy_id);
    if (index_)
        for (const auto& p : index_->policies)
            if (p.id == entry.policy_id)
                r.policy = p.name;
    if (entry.rhost)
        r.rhost = entry.rhost->str();
    r.cgroup = path;
    r.opened_ns = entry.opened_ns;
    r.opened_at = rfc3339_utc(entry.opened_ns);
    return r;
}

// One entry: a dead cgroup is reaped; a live one without a record gets one
// (its writer died between the entry and the record). A login entry
// without its record may be a PAM open between its insert and its record:
// left to a later sweep.
void Reconciler::sweep_entry(uint64_t id, const SessionEntry& entry, uint64_t now_ns, SweepState& state)
{
    auto rec = state.records.find(id);
    bool login = !(entry.flags & AW_SESSION_CONTAINER);
    if (rec == state.records.end() && login && now_ns < entry.opened_ns + kOpenGraceNs)
        return;
    std::string path;
    if (auto w = state.walked.find(id); w != state.walked.end()) {
        path = *w->second;
    } else {
        // Only a cgroup the kernel says is gone is reaped.
        auto found = cgroup_path_by_id(mount_, id);
        if (!found && found.error().err != ESTALE && found.error().err != ENOENT) {
            warnings_.push_back("sweep: cannot tell whether session " + std::to_string(id) +
                                " is alive: " + found.error().message());
            state.records.erase(id);
            return;
        }
        if (!found) {
            SessionRecord minimal = rec != state.records.end() ? rec->second : SessionRecord{};
            minimal.id = id;
            state.records.erase(id);
            if (auto ended = sessions_->end(minimal, {"reaped", "cgroup gone", {}}); ended) {
                ++stats_.reaped;
                forget_session(id);
            }
            return;
        }
        path = found->string();
    }
    if (rec == state.records.end()) {
        SessionRecord r = repaired_record(id, entry, path);
        if (auto written = sessions_->adopt(r); written && *written)
            ++stats_.repaired;
        state.records[id] = r;
        state.repaired.insert(id);
    }
}

// Records without an entry are stale, if the entry is still missing now.
void Reconciler::drop_stale_records(SweepState& state)
{
    for (auto it = state.records.begin(); it != state.records.end();) {
        bool stale = false;
        if (!state.in_map.count(it->first))
            if (auto now = maps_->lookup_session(it->first); now && !now->has_value())
                stale = true;
        if (stale) {
            sessions_->forget(it->first).ok();
            it = state.records.erase(it);
        } else {
            ++it;
        }
    }
}

// The full reconciliation (start, and backstop). At start, before the
// daemon confines itself (its allowlist has no clone), the records are read
// on a second thread while this one walks the tree: the two share nothing,
// and at 100 000 sessions each is a good part of the start.
Status Reconciler::reconcile(bool add_watches)
{
    std::future<Result<std::vector<SessionRecord>>> reading;
    if (add_watches)
        reading = std::async(std::launch::async, [this] { return list_records(config_.run_dir); });
    SweepState state;
    walk_roots(add_watches, state);
    // Records first, entries second: PAM inserts an entry before it writes
    // the record, so every record listed here has its entry in the listing
    // below unless it was closed meanwhile.
    auto records = reading.valid() ? reading.get() : list_records(config_.run_dir);
    if (!records)
        return records.error();
    auto sessions = maps_->list_sessions_batch();
    if (!sessions)
        return sessions.error();
    state.records.reserve(records->size());
    for (auto& r : *records) {
        uint64_t id = r.id;
        state.records.insert_or_assign(id, std::move(r));
    }
    state.in_map.reserve(sessions->size());
    for (const auto& s : *sessions)
        state.in_map.insert(s.first);

    const uint64_t now_ns = realtime_ns();
    for (const auto& [id, entry] : *sessions)
        sweep_entry(id, entry, now_ns, state);
    drop_stale_records(state);
    for (const auto& [id, rec] : state.records) {
        if (state.repaired.count(id)) {
            check_session(id); // the record on disk: PAM's, if it won the race
            continue;
        }
        auto w = state.walked.find(id);
        check_record(rec, (w != state.walked.end() && *w->second == rec.cgroup) || is_cgroup2_dir(rec.cgroup));
    }
    // Cgroups that match a container glob but are not enrolled yet.
    for (const auto& d : state.dirs)
        if (d.depth > 0 && d.depth <= AW_MAX_CGROUP_LEVEL && may_match_policy_glob(d.path))
            on_new_cgroup(d.path);
    reconcile_mirror();
    return {};
}

} // namespace authwall
