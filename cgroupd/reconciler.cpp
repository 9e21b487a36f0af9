#include "cgroupd/reconciler.h"

#include "core/host/cgroup.h"
#include "core/nft/mirror.h"
#include "core/session/mirror.h"
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

void Reconciler::mirror_add(const SessionRecord& rec)
{
    if (config_.nft_mirror)
        if (auto st = nft_mirror_add(config_.run_dir, mirror_session_of(rec)); !st)
            warnings_.push_back("nft mirror: session " + std::to_string(rec.id) + ": " + st.error().message());
}

void Reconciler::mirror_remove(const SessionRecord& rec)
{
    if (!config_.nft_mirror)
        return;
    auto m = mirror_session_of(rec);
    if (auto st = nft_mirror_remove(config_.run_dir, m.id, m.rhost); !st)
        warnings_.push_back("nft mirror: session " + std::to_string(rec.id) + ": " + st.error().message());
}

// The mirror holds every session in the map that is not revoked.
void Reconciler::reconcile_mirror()
{
    if (!config_.nft_mirror)
        return;
    auto expected = mirror_expected(*maps_, config_.run_dir);
    if (!expected) {
        warnings_.push_back("nft mirror: " + expected.error().message());
        return;
    }
    auto drift = nft_reconcile(config_.run_dir, *expected);
    if (!drift) {
        warnings_.push_back("nft mirror: " + drift.error().message());
        return;
    }
    if (!drift->empty()) {
        ++stats_.mirror_repairs;
        warnings_.push_back("nft mirror repaired: " +
                            std::string(drift->table_missing ? "table inet authwall recreated, " : "") +
                            std::to_string(drift->missing.size()) + " missing element(s) added, " +
                            std::to_string(drift->stray.size()) + " stray element(s) removed");
    }
}

void Reconciler::expire(const SessionRecord& rec)
{
    expired_.insert(rec.id);
    maps_->set_session_flags(rec.id, AW_SESSION_REVOKED, 0).ok();
    mirror_remove(rec);
    cgroup_kill(rec.cgroup).ok();
    ++stats_.expired;
    events_.session_event("expired", rec, "max_duration " + std::to_string(rec.max_duration_s) + "s reached");
    schedule(rec.id, Clock::now() + kReapGrace);
}

void Reconciler::reap(const SessionRecord& rec, const std::string& why)
{
    // A login cgroup that has processes again (a leader moved in just now)
    // is alive: leave it untouched, unrevoked.
    if (rec.kind == SessionKind::Login && is_cgroup2_dir(rec.cgroup) && cgroup_populated(rec.cgroup))
        return;
    // Revoked first, as at close: nothing left in it gets through meanwhile.
    auto entry = maps_->lookup_session(rec.id);
    bool was_revoked = entry && entry->has_value() && ((*entry)->flags & AW_SESSION_REVOKED);
    maps_->set_session_flags(rec.id, AW_SESSION_REVOKED, 0).ok();
    if (rec.kind == SessionKind::Login && is_cgroup2_dir(rec.cgroup) && !cgroup_remove_tree(rec.cgroup).ok()) {
        // Someone came back between the look and the rmdir: not ours to end.
        if (!was_revoked && cgroup_populated(rec.cgroup))
            maps_->set_session_flags(rec.id, 0, AW_SESSION_REVOKED).ok();
        return;
    }
    maps_->remove_session(rec.id).ok();
    remove_record(config_.run_dir, rec.id).ok();
    mirror_remove(rec);
    if (auto it = session_watch_.find(rec.id); it != session_watch_.end()) {
        inotify_rm_watch(inotify_.get(), it->second);
        watches_.erase(it->second);
        session_watch_.erase(it);
    }
    due_.erase(rec.id);
    bool was_expired = expired_.erase(rec.id) > 0;
    if (!was_expired) {
        ++stats_.reaped;
        events_.session_event("reaped", rec, why);
    }
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

Status Reconciler::enroll(const fs::path& dir, const IndexedPolicy& policy)
{
    auto id = cgroup_id(dir);
    if (!id)
        return id.error();
    auto level = cgroup_level(mount_, dir);
    if (!level)
        return level.error();
    SessionRecord rec;
    rec.id = *id;
    rec.correlation = random_hex(16);
    rec.kind = SessionKind::Container;
    rec.service = "authwall-cgroupd";
    rec.policy = policy.name;
    rec.policy_id = policy.id;
    rec.cgroup = dir.string();
    rec.opened_ns = realtime_ns();
    rec.opened_at = rfc3339_utc(rec.opened_ns);
    rec.max_duration_s = policy.max_duration_s;
    SessionEntry entry;
    entry.policy_id = policy.id;
    entry.flags = AW_SESSION_CONTAINER;
    entry.opened_ns = rec.opened_ns;
    if (auto st = maps_->insert_session(rec.id, *level, entry); !st)
        return st;
    if (auto st = write_record(config_.run_dir, rec); !st)
        return st;
    ++stats_.enrolled;
    mirror_add(rec);
    // The entry polices every socket made in this cgroup from now on, and
    // those made in it before; traffic before this moment, and sockets a
    // process brought from another cgroup, were not. Say so.
    events_.session_event("open", rec,
                          cgroup_populated(dir) ? "enrolled by path after processes had started in it "
                                                  "(their traffic before enrollment was not policed)"
                                                : "enrolled by path");
    watch_session(rec);
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

// The full reconciliation. With `add_watches` (at start), its walk of the
// enforcement roots also adds the tree watches, each directory's before its
// children are read: a cgroup made during or after the walk is reported by
// inotify, one made before is in the walk.
Status Reconciler::reconcile(bool add_watches)
{
    // At start, before the daemon confines itself (its allowlist has no
    // clone), the records are read on a second thread while this one walks
    // the tree: the two share nothing, and at 100 000 sessions each is a
    // good part of the start.
    std::future<Result<std::vector<SessionRecord>>> reading;
    if (add_watches)
        reading = std::async(std::launch::async, [this] { return list_records(config_.run_dir); });

    // One walk of the enforcement roots tells where every cgroup in them is
    // (ids from the directory entries, no syscall per cgroup) and lists the
    // candidates for enrollment; an entry it did not see is asked of the
    // kernel by id. At start it also adds the tree watches.
    std::vector<CgroupDir> dirs;
    CgroupDirVisitor on_dir;
    if (add_watches)
        on_dir = [this](const CgroupDir& d) { watch_dir(d.path); };
    for (const auto& root : enforcement_roots()) {
        auto found = walk_cgroup_tree(root, on_dir);
        dirs.insert(dirs.end(), std::make_move_iterator(found.begin()), std::make_move_iterator(found.end()));
    }
    std::unordered_map<uint64_t, const std::string*> walked;
    walked.reserve(dirs.size());
    for (const auto& d : dirs)
        walked.emplace(d.id, &d.path);

    // Records first, entries second: PAM inserts an entry before it writes
    // the record, so every record listed here has its entry in the listing
    // below unless it was closed meanwhile.
    auto records = reading.valid() ? reading.get() : list_records(config_.run_dir);
    if (!records)
        return records.error();
    auto sessions = maps_->list_sessions_batch();
    if (!sessions)
        return sessions.error();
    const uint64_t now_ns = realtime_ns();

    std::unordered_map<uint64_t, SessionRecord> by_id;
    by_id.reserve(records->size());
    for (auto& r : *records) {
        uint64_t id = r.id;
        by_id.insert_or_assign(id, std::move(r));
    }
    std::unordered_set<uint64_t> in_map, repaired;
    in_map.reserve(sessions->size());
    for (const auto& s : *sessions)
        in_map.insert(s.first);

    // Entries: a dead cgroup is reaped; a live one without a record gets one
    // (a writer died between the entry and the record).
    for (const auto& [id, entry] : *sessions) {
        auto rec = by_id.find(id);
        bool login = !(entry.flags & AW_SESSION_CONTAINER);
        // A login entry without its record may be a PAM open between its
        // insert and its record: leave it to a later sweep.
        if (rec == by_id.end() && login && now_ns < entry.opened_ns + kOpenGraceNs)
            continue;
        std::string path;
        if (auto w = walked.find(id); w != walked.end()) {
            path = *w->second;
        } else {
            // Only a cgroup the kernel says is gone is reaped.
            auto found = cgroup_path_by_id(mount_, id);
            if (!found && found.error().err != ESTALE && found.error().err != ENOENT) {
                warnings_.push_back("sweep: cannot tell whether session " + std::to_string(id) +
                                    " is alive: " + found.error().message());
                by_id.erase(id);
                continue;
            }
            if (!found) {
                SessionRecord minimal;
                if (rec != by_id.end())
                    minimal = rec->second;
                minimal.id = id;
                maps_->remove_session(id).ok();
                remove_record(config_.run_dir, id).ok();
                ++stats_.reaped;
                events_.session_event("reaped", minimal, "cgroup gone");
                by_id.erase(id);
                continue;
            }
            path = found->string();
        }
        if (rec == by_id.end()) {
            SessionRecord r;
            r.id = id;
            r.correlation = random_hex(16);
            r.kind = login ? SessionKind::Login : SessionKind::Container;
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
            // Written only if no record appeared meanwhile (PAM's wins).
            if (!read_record(config_.run_dir, id) && write_record(config_.run_dir, r).ok())
                ++stats_.repaired;
            by_id[id] = r;
            repaired.insert(id);
        }
    }
    // Records without an entry are stale, if the entry is still missing now.
    for (auto it = by_id.begin(); it != by_id.end();) {
        auto now = in_map.count(it->first) ? Result<std::optional<SessionEntry>>(std::optional<SessionEntry>())
                                           : maps_->lookup_session(it->first);
        if (!in_map.count(it->first) && now && !now->has_value()) {
            remove_record(config_.run_dir, it->first).ok();
            it = by_id.erase(it);
        } else {
            ++it;
        }
    }
    for (const auto& [id, rec] : by_id) {
        if (repaired.count(id)) {
            check_session(id); // the record on disk: PAM's, if it won the race
            continue;
        }
        auto w = walked.find(id);
        check_record(rec, (w != walked.end() && *w->second == rec.cgroup) || is_cgroup2_dir(rec.cgroup));
    }

    // Cgroups that match a container glob but are not enrolled yet.
    for (const auto& d : dirs)
        if (d.depth > 0 && d.depth <= AW_MAX_CGROUP_LEVEL && may_match_policy_glob(d.path))
            on_new_cgroup(d.path);
    reconcile_mirror();
    return {};
}

} // namespace authwall
