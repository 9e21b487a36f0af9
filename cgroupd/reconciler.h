// SPDX-License-Identifier: Apache-2.0
// The reconciler behind authwall-cgroupd: keeps the sessions map, the
// session records and the cgroup tree in agreement, driven by inotify.
//   - reap: a session whose cgroup emptied (its sshd killed, close never
//     ran) or disappeared is removed everywhere, with a `reaped` event;
//   - expire: a session past its policy's max_duration is revoked and its
//     cgroup killed, with an `expired` event; reaping then finishes it;
//   - enroll: a cgroup created below an enforcement root whose path matches
//     a policy's match.cgroups glob becomes a container session as soon as
//     inotify reports the mkdir (a runtime that starts a process in it
//     within that moment is reported in the open event); it is reaped when
//     it goes.
// Everything it knows is re-derived from the kernel and the records at
// start, so a kill -9 at any moment is repaired by the next start.
#pragma once

#include "core/host/cgroup.h"
#include "core/policy/config.h"
#include "core/base/fd.h"
#include "core/dataplane/maps.h"
#include "core/policy/index.h"
#include "core/base/result.h"
#include "core/session/events.h"
#include "core/session/service.h"

#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace authwall {

struct ReconcileStats {
    size_t reaped = 0, expired = 0, enrolled = 0, repaired = 0, mirror_repairs = 0;
};

class Reconciler {
  public:
    using Clock = std::chrono::steady_clock;

    Reconciler(Config config, EventSink& events);

    // Opens the pins, reads the policy index, sets up the watches and runs a
    // full sweep.
    Status start();
    // The inotify descriptor to poll for readability.
    int fd() const { return inotify_.get(); }
    // Reads and handles every pending inotify event.
    Status handle_events();
    // When the next timed action is due (reap check, expiry), if any.
    std::optional<Clock::time_point> next_deadline() const;
    // Runs the timed actions that are due.
    Status run_due();
    // Full reconciliation of map, records and cgroups (start, and backstop).
    Status sweep();

    const ReconcileStats& stats() const { return stats_; }
    // What went wrong without stopping the work (for the daemon's log).
    std::vector<std::string> take_warnings() { return std::exchange(warnings_, {}); }

    // Delay between seeing a *revoked* session cgroup empty (a close in
    // progress) and reaping it: close_session finishes well within it and
    // removes the record itself. Unrevoked sessions are reaped at once.
    static constexpr std::chrono::milliseconds kReapGrace{300};
    // A login entry this young without a record may be a PAM open between
    // its insert and its record write: the sweep neither repairs nor reaps
    // it (the periodic sweep takes it up later if the writer died).
    static constexpr uint64_t kOpenGraceNs = 10'000'000'000ULL;

  private:
    enum class WatchKind { Tree, Events, RunDir, Sessions };
    struct Watch {
        WatchKind kind;
        std::filesystem::path path;
        uint64_t session = 0;
    };

    struct SweepState;
    Status reconcile(bool add_watches);
    void walk_roots(bool add_watches, SweepState& state);
    void sweep_entry(uint64_t id, const SessionEntry& entry, uint64_t now_ns, SweepState& state);
    SessionRecord repaired_record(uint64_t id, const SessionEntry& entry, const std::string& path) const;
    void drop_stale_records(SweepState& state);
    std::vector<std::filesystem::path> enforcement_roots() const;
    bool watch_dir(const std::filesystem::path& dir);
    void watch_tree(const std::filesystem::path& dir);
    void watch_session(const SessionRecord& rec);
    void load_index();
    void on_new_cgroup(const std::filesystem::path& dir);
    void on_removed_cgroup(const std::filesystem::path& dir);
    void on_record_written(uint64_t id);
    void check_session(uint64_t id);
    void check_record(const SessionRecord& rec, bool cgroup_exists);
    void reap(const SessionRecord& rec, const std::string& why);
    void expire(const SessionRecord& rec);
    void forget_session(uint64_t id);
    void reconcile_mirror();
    std::optional<std::string> matching_policy_glob(const std::filesystem::path& dir,
                                                    const IndexedPolicy** policy) const;
    bool may_match_policy_glob(const std::string& dir) const;
    Status enroll(const std::filesystem::path& dir, const IndexedPolicy& policy);
    void schedule(uint64_t id, Clock::time_point when);
    Clock::duration grace_for(uint64_t id) const;

    Config config_;
    EventSink& events_;
    std::optional<PinnedMaps> maps_;
    std::optional<PinnedSessionStore> store_;
    std::optional<SessionService> sessions_; // every session this daemon opens or ends
    std::optional<PolicyIndex> index_;
    CgroupMount mount_;
    Fd inotify_;
    std::map<int, Watch> watches_;
    std::map<uint64_t, int> session_watch_;
    std::map<uint64_t, Clock::time_point> due_; // reap checks and expiries
    std::set<uint64_t> expired_;
    ReconcileStats stats_;
    std::vector<std::string> warnings_;
};

} // namespace authwall
