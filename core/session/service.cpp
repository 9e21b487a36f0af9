// SPDX-License-Identifier: Apache-2.0
#include "core/session/service.h"

#include "core/base/time.h"
#include "core/base/abi.h"

namespace authwall {

Status PinnedSessionStore::insert_entry(uint64_t id, int level, const SessionEntry& entry)
{
    if (!maps_)
        return Error::msg("insert session", std::to_string(id), "the data plane is not installed");
    return maps_->insert_session(id, level, entry);
}

Result<std::optional<SessionEntry>> PinnedSessionStore::lookup_entry(uint64_t id)
{
    if (!maps_)
        return std::optional<SessionEntry>();
    return maps_->lookup_session(id);
}

Status PinnedSessionStore::set_revoked(uint64_t id, bool revoked)
{
    if (!maps_)
        return {};
    return revoked ? maps_->set_session_flags(id, AW_SESSION_REVOKED, 0)
                   : maps_->set_session_flags(id, 0, AW_SESSION_REVOKED);
}

Status PinnedSessionStore::remove_entry(uint64_t id)
{
    if (!maps_)
        return {};
    // Its counters go to its policy's totals as it goes (authctl metrics).
    return maps_->retire_session(id);
}

Result<SessionStats> PinnedSessionStore::counters(uint64_t id)
{
    if (!maps_)
        return Error::msg("read counters of session", std::to_string(id), "the data plane is not installed");
    return maps_->session_stats(id);
}

Status PinnedSessionStore::write_record(const SessionRecord& record)
{
    return authwall::write_record(run_dir_, record);
}

Result<SessionRecord> PinnedSessionStore::read_record(uint64_t id)
{
    return authwall::read_record(run_dir_, id);
}

Status PinnedSessionStore::remove_record(uint64_t id)
{
    return authwall::remove_record(run_dir_, id);
}

Status PinnedSessionStore::mirror_add(const SessionRecord& record)
{
    return extras_.nft_mirror_add(run_dir_, record);
}

Status PinnedSessionStore::mirror_remove(const SessionRecord& record)
{
    return extras_.nft_mirror_remove(run_dir_, record);
}

Result<MirrorRepair> PinnedSessionStore::mirror_repair()
{
    if (!maps_)
        return Error::msg("repair", "the nft mirror", "the data plane is not installed");
    return extras_.nft_mirror_repair(run_dir_, *maps_);
}

Result<std::optional<UserEntry>> PinnedSessionStore::lookup_user(uint32_t uid)
{
    if (!maps_)
        return std::optional<UserEntry>();
    return maps_->lookup_user(uid);
}

Status PinnedSessionStore::set_user(uint32_t uid, uint32_t policy_id, uint32_t flags)
{
    if (!maps_)
        return Error::msg("write the user layer of uid", std::to_string(uid), "the data plane is not installed");
    return maps_->set_user(uid, policy_id, flags);
}

namespace {

void warn(std::vector<std::string>* warnings, const std::string& text)
{
    if (warnings)
        warnings->push_back(text);
}

std::string mirror_warning(const SessionRecord& record, const Error& e)
{
    return "nft mirror not updated for session " + std::to_string(record.id) + " (cgroupd repairs it): " + e.message();
}

} // namespace

Result<SessionRecord> SessionService::open(OpenSpec spec, std::vector<std::string>* warnings)
{
    SessionRecord& rec = spec.record;
    if (rec.correlation.empty())
        rec.correlation = random_hex(16);
    rec.opened_ns = realtime_ns();
    rec.opened_at = rfc3339_utc(rec.opened_ns);
    SessionEntry entry;
    entry.policy_id = rec.policy_id;
    entry.uid = rec.uid;
    entry.rhost = spec.rhost;
    entry.opened_ns = rec.opened_ns;
    entry.flags = rec.kind == SessionKind::Container ? AW_SESSION_CONTAINER : 0;
    if (auto st = store_.insert_entry(rec.id, spec.level, entry); !st)
        return st.error();

    bool placed = false, recorded = false;
    auto undo = [&](Error e) -> Result<SessionRecord> {
        if (recorded)
            store_.remove_record(rec.id).ok();
        if (placed && spec.unplace)
            spec.unplace();
        store_.remove_entry(rec.id).ok();
        return e;
    };
    if (spec.place) {
        if (auto st = spec.place(spec.detail); !st)
            return undo(st.error());
        placed = true;
    }
    if (auto st = store_.write_record(rec); !st)
        return undo(st.error());
    recorded = true;
    if (store_.mirrored()) {
        if (auto st = store_.mirror_add(rec); !st) {
            if (spec.mirror_required)
                return undo(st.error());
            warn(warnings, mirror_warning(rec, st.error()));
        }
    }
    events_.session_event("open", rec, spec.detail);
    return rec;
}

Status SessionService::revoke(const SessionRecord& record, const std::string& event, const std::string& detail,
                              std::vector<std::string>* warnings)
{
    if (auto st = store_.set_revoked(record.id, true); !st)
        return st;
    if (store_.mirrored())
        if (auto st = store_.mirror_remove(record); !st)
            warn(warnings, mirror_warning(record, st.error()));
    if (!event.empty()) {
        auto tally = tally_of(record);
        events_.session_event(event, record, detail, tally ? &*tally : nullptr);
    }
    return {};
}

std::optional<SessionTally> SessionService::tally_of(const SessionRecord& record)
{
    auto counters = store_.counters(record.id);
    if (!counters)
        return std::nullopt;
    SessionTally t;
    uint64_t now = realtime_ns();
    t.duration_s = now > record.opened_ns ? (now - record.opened_ns) / 1'000'000'000ULL : 0;
    t.counters = *counters;
    return t;
}

Result<EndOutcome> SessionService::end(const SessionRecord& record, const EndSpec& spec)
{
    EndOutcome out;
    auto before = store_.lookup_entry(record.id);
    const bool had_entry = before && before->has_value();
    const bool was_revoked = had_entry && ((*before)->flags & AW_SESSION_REVOKED);
    // Revoked first: nothing left in the cgroup gets through meanwhile.
    if (had_entry)
        if (auto st = store_.set_revoked(record.id, true); !st)
            out.warnings.push_back("revoke session " + std::to_string(record.id) + ": " + st.error().message());
    if (store_.mirrored() && !was_revoked)
        if (auto st = store_.mirror_remove(record); !st)
            out.warnings.push_back(mirror_warning(record, st.error()));

    std::string detail = spec.detail;
    out.emptied = spec.empty ? spec.empty(detail) : Emptied::Gone;
    if (out.emptied == Emptied::Undo) {
        // Not ours to end after all: as it was before.
        if (had_entry && !was_revoked) {
            store_.set_revoked(record.id, false).ok();
            if (store_.mirrored())
                if (auto st = store_.mirror_add(record); !st)
                    out.warnings.push_back(mirror_warning(record, st.error()));
        }
        return out;
    }
    // The entry stays (revoked) while anything is left in the cgroup;
    // cgroupd reaps it once the cgroup is gone. Its tally is read last
    // thing before it goes: its sockets are closed and their counts folded.
    std::optional<SessionTally> tally = had_entry ? tally_of(record) : std::nullopt;
    if (out.emptied == Emptied::Gone) {
        // Still revoked if this fails: the reaper ends it again.
        if (auto st = store_.remove_entry(record.id); !st)
            return st.error();
        // The session has ended; a record left behind is an orphan cgroupd forgets.
        if (auto st = store_.remove_record(record.id); !st)
            out.warnings.push_back("record of session " + std::to_string(record.id) +
                                   " not removed (cgroupd removes it): " + st.error().message());
    }
    if (!spec.event.empty() && out.emptied != Emptied::Retry)
        events_.session_event(spec.event, record, detail, tally ? &*tally : nullptr);
    return out;
}

Result<bool> SessionService::adopt(const SessionRecord& record)
{
    if (store_.read_record(record.id))
        return false;
    if (auto st = store_.write_record(record); !st)
        return st.error();
    return true;
}

Status SessionService::forget(uint64_t id)
{
    return store_.remove_record(id);
}

Result<MirrorRepair> SessionService::repair_mirror()
{
    if (!store_.mirrored())
        return MirrorRepair{};
    return store_.mirror_repair();
}

Status SessionService::revoke_user(uint32_t uid, const std::string& name, bool lift)
{
    auto existing = store_.lookup_user(uid);
    if (!existing)
        return existing.error();
    const bool revoked = *existing && ((*existing)->flags & AW_USER_REVOKED);
    if (lift && !revoked)
        return Error::msg("lift revocation of", name, "the user is not revoked");
    uint32_t policy = *existing ? (*existing)->policy_id : AW_POLICY_FALLBACK;
    uint32_t flags = *existing ? (*existing)->flags : 0;
    flags = lift ? flags & ~AW_USER_REVOKED : flags | AW_USER_REVOKED;
    if (auto st = store_.set_user(uid, policy, flags); !st)
        return st;
    SessionRecord who;
    who.user = name;
    who.uid = uid;
    who.kind = SessionKind::User;
    events_.session_event("revoke", who,
                          lift ? "revocation of the user lifted"
                               : "every process of the user; logins refused until lifted");
    return {};
}

} // namespace authwall
