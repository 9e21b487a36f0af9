// SPDX-License-Identifier: Apache-2.0
// The session service: the one place a session begins and ends. The PAM
// module (session/login.h), cgroupd's reconciler, authctl and the tests'
// helpers all go through it; no other code writes a session's entry,
// record, mirror elements or lifecycle events.
//
// A session lives in four places, always changed in this order:
//   open:  entry in the sessions map (the kernel enforces from here on) →
//          the caller's placement step (a login in its own cgroup moves
//          its leader in; in a scope it is there already) →
//          record → nft mirror elements → `open` event.
//          A failure undoes every step before it, newest first.
//   end:   revoke (the entry is flagged: traffic is cut at once) and leave
//          the mirror → the caller empties the cgroup (kill, move, remove)
//          → if the cgroup is gone: remove entry and record → event.
//   revoke / expire: the first step of `end` and an event; the session
//          stays until its cgroup empties and it is reaped.
//   repair: the mirror made to hold every session not revoked (cgroupd).
// A confined user's revocation (the user layer, every process of the uid)
// goes through it too, with its `revoke` event; arming the user layer at a
// login (session/login.h) is not a session and writes no event.
// Its kernel and file-system effects go through SessionStore, so unit
// tests check the order, each rollback and the events without root.
#pragma once

#include "core/base/result.h"
#include "core/dataplane/maps.h"
#include "core/session/events.h"
#include "core/session/extras.h"
#include "core/session/record.h"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace authwall {

// Where a session is kept: the kernel's entry, its record file and the
// nftables mirror. The real one is PinnedSessionStore; tests use fakes.
class SessionStore {
  public:
    virtual ~SessionStore() = default;
    // Refuses an id that is already a session: one session never replaces
    // another.
    virtual Status insert_entry(uint64_t id, int level, const SessionEntry& entry) = 0;
    virtual Result<std::optional<SessionEntry>> lookup_entry(uint64_t id) = 0;
    virtual Status set_revoked(uint64_t id, bool revoked) = 0;
    virtual Status remove_entry(uint64_t id) = 0; // missing is fine
    // Its counters so far (the tally of the events that end or revoke it).
    virtual Result<SessionStats> counters(uint64_t id) = 0;
    virtual Status write_record(const SessionRecord& record) = 0;
    virtual Result<SessionRecord> read_record(uint64_t id) = 0;
    virtual Status remove_record(uint64_t id) = 0; // missing is fine
    // Whether the nft mirror is on (authwall.toml nft_mirror).
    virtual bool mirrored() const = 0;
    virtual Status mirror_add(const SessionRecord& record) = 0;
    virtual Status mirror_remove(const SessionRecord& record) = 0;
    // Makes the mirror hold every session not revoked, and nothing else.
    virtual Result<MirrorRepair> mirror_repair() = 0;
    // The user layer of `uid` (none: nullopt), and writing it.
    virtual Result<std::optional<UserEntry>> lookup_user(uint32_t uid) = 0;
    virtual Status set_user(uint32_t uid, uint32_t policy_id, uint32_t flags) = 0;
};

// The real store: the pinned maps, the records under `run_dir`, and the
// mirror through `extras` when `mirror` is on. Without maps (the data plane
// is not installed) there is no entry to find, revoke or remove, and none
// can be inserted.
class PinnedSessionStore final : public SessionStore {
  public:
    PinnedSessionStore(PinnedMaps* maps, std::filesystem::path run_dir, bool mirror, LoginExtras& extras)
        : maps_(maps), run_dir_(std::move(run_dir)), mirror_(mirror), extras_(extras)
    {
    }
    Status insert_entry(uint64_t id, int level, const SessionEntry& entry) override;
    Result<std::optional<SessionEntry>> lookup_entry(uint64_t id) override;
    Status set_revoked(uint64_t id, bool revoked) override;
    Status remove_entry(uint64_t id) override;
    Result<SessionStats> counters(uint64_t id) override;
    Status write_record(const SessionRecord& record) override;
    Result<SessionRecord> read_record(uint64_t id) override;
    Status remove_record(uint64_t id) override;
    bool mirrored() const override { return mirror_; }
    Status mirror_add(const SessionRecord& record) override;
    Status mirror_remove(const SessionRecord& record) override;
    Result<MirrorRepair> mirror_repair() override;
    Result<std::optional<UserEntry>> lookup_user(uint32_t uid) override;
    Status set_user(uint32_t uid, uint32_t policy_id, uint32_t flags) override;

  private:
    PinnedMaps* maps_;
    std::filesystem::path run_dir_;
    bool mirror_;
    LoginExtras& extras_;
};

// What to open. The record is complete but for the times, which open sets.
struct OpenSpec {
    SessionRecord record;
    int level = 0;                  // the cgroup's level below the cgroup2 root
    std::optional<IpAddress> rhost; // the entry's login address (the record's, parsed)
    // Between the entry and the record: a login moves its leader into the
    // cgroup here, so its first packet there is already enforced; cgroupd
    // tells whether processes had started in it (the event's detail).
    // `unplace` undoes it when a later step fails, before the entry goes.
    std::function<Status(std::string& detail)> place;
    std::function<void()> unplace;
    // A login whose mirror elements cannot be written is refused (nft rules
    // may rely on the sets); a container is enrolled anyway, since refusing
    // it would leave it unconfined, and cgroupd repairs the mirror.
    bool mirror_required = true;
    std::string detail; // for the open event
};

// How a caller emptied a session's cgroup during `end`.
enum class Emptied {
    Gone,    // the cgroup is removed: entry and record go too
    Remains, // processes are left: the entry stays revoked, cgroupd reaps it
    Retry,   // not removed yet: the entry stays revoked, nothing is told, a later sweep tries again
    Undo,    // someone is back in it (a reap that lost a race): restore the session as it was
};

struct EndSpec {
    // The event to write once the session is ended (close, reaped,
    // unenrolled...), or empty for none (an expired session's reap: its
    // event was `expired`).
    std::string event;
    std::string detail;
    // Kills, moves and removes the cgroup; may add to the detail. Without
    // it the cgroup is taken as gone.
    std::function<Emptied(std::string& detail)> empty;
};

struct EndOutcome {
    Emptied emptied = Emptied::Gone;
    std::vector<std::string> warnings; // what failed without stopping the end
};

class SessionService {
  public:
    SessionService(SessionStore& store, EventSink& events) : store_(store), events_(events) {}

    // Opens the session `spec` describes; returns its record as written.
    Result<SessionRecord> open(OpenSpec spec, std::vector<std::string>* warnings = nullptr);
    // Cuts the session's traffic and takes it out of the mirror; writes
    // `event` (revoke, expired) unless empty. The session stays.
    Status revoke(const SessionRecord& record, const std::string& event, const std::string& detail,
                  std::vector<std::string>* warnings = nullptr);
    // Ends the session: revoke, empty, remove, event (the order above).
    Result<EndOutcome> end(const SessionRecord& record, const EndSpec& spec);
    // Writes the record of an entry whose writer died before writing it,
    // unless one appeared meanwhile (the writer's wins). True if written.
    Result<bool> adopt(const SessionRecord& record);
    // Removes the record of a session whose entry is gone.
    Status forget(uint64_t id);
    // Repairs the mirror (nothing to do when it is off); says what was wrong.
    Result<MirrorRepair> repair_mirror();
    // Revokes the user layer of `uid` (`name` for the event and messages):
    // every process of the user, in a login or not, is cut off at once and
    // their logins are refused; `lift` undoes it. Writes the `revoke`
    // event. The user's sessions are revoked one by one by the caller.
    Status revoke_user(uint32_t uid, const std::string& name, bool lift);

  private:
    // How long the session lasted and its counters now; nullopt when they
    // cannot be read (no data plane, no entry).
    std::optional<SessionTally> tally_of(const SessionRecord& record);

    SessionStore& store_;
    EventSink& events_;
};

} // namespace authwall
