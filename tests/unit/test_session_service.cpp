// SPDX-License-Identifier: Apache-2.0
// The session service against a fake store: the order of its steps, the
// rollback at each point an open can fail, and the events it writes. The
// privileged tests prove the same paths on the kernel.
#include "core/base/abi.h"
#include "core/base/time.h"
#include "core/session/service.h"

#include <boost/test/unit_test.hpp>

#include <map>
#include <string>
#include <vector>

using namespace authwall;

namespace {

// Records every call; fails the one named `fail_at`.
class FakeStore final : public SessionStore {
  public:
    std::vector<std::string> calls;
    std::string fail_at;
    bool mirror = true;
    std::map<uint64_t, SessionEntry> entries;
    std::map<uint64_t, SessionRecord> records;

    Status insert_entry(uint64_t id, int, const SessionEntry& entry) override
    {
        if (auto st = step("insert_entry"); !st)
            return st;
        if (entries.count(id))
            return Error::sys("insert session", std::to_string(id), EEXIST);
        entries[id] = entry;
        return {};
    }
    Result<std::optional<SessionEntry>> lookup_entry(uint64_t id) override
    {
        calls.push_back("lookup_entry");
        auto it = entries.find(id);
        return it == entries.end() ? std::optional<SessionEntry>() : std::optional<SessionEntry>(it->second);
    }
    Status set_revoked(uint64_t id, bool revoked) override
    {
        if (auto st = step(revoked ? "revoke" : "unrevoke"); !st)
            return st;
        auto it = entries.find(id);
        if (it == entries.end())
            return Error::sys("revoke", std::to_string(id), ENOENT);
        it->second.flags = revoked ? (it->second.flags | AW_SESSION_REVOKED) : (it->second.flags & ~AW_SESSION_REVOKED);
        return {};
    }
    Status remove_entry(uint64_t id) override
    {
        if (auto st = step("remove_entry"); !st)
            return st;
        entries.erase(id);
        return {};
    }
    // Not a step: reading counters changes nothing, whatever the order.
    Result<SessionStats> counters(uint64_t id) override
    {
        if (!entries.count(id))
            return Error::sys("read counters of session", std::to_string(id), ENOENT);
        return stats[id];
    }
    std::map<uint64_t, SessionStats> stats;
    Status write_record(const SessionRecord& record) override
    {
        if (auto st = step("write_record"); !st)
            return st;
        records[record.id] = record;
        return {};
    }
    Result<SessionRecord> read_record(uint64_t id) override
    {
        calls.push_back("read_record");
        auto it = records.find(id);
        if (it == records.end())
            return Error::sys("read", "record", ENOENT);
        return it->second;
    }
    Status remove_record(uint64_t id) override
    {
        if (auto st = step("remove_record"); !st)
            return st;
        records.erase(id);
        return {};
    }
    bool mirrored() const override { return mirror; }
    Status mirror_add(const SessionRecord&) override { return step("mirror_add"); }
    Status mirror_remove(const SessionRecord&) override { return step("mirror_remove"); }
    Result<MirrorRepair> mirror_repair() override
    {
        if (auto st = step("mirror_repair"); !st)
            return st.error();
        return MirrorRepair{false, 2, 1};
    }
    std::map<uint32_t, UserEntry> users;
    Result<std::optional<UserEntry>> lookup_user(uint32_t uid) override
    {
        calls.push_back("lookup_user");
        auto it = users.find(uid);
        return it == users.end() ? std::optional<UserEntry>() : std::optional<UserEntry>(it->second);
    }
    Status set_user(uint32_t uid, uint32_t policy_id, uint32_t flags) override
    {
        if (auto st = step("set_user"); !st)
            return st;
        users[uid].policy_id = policy_id;
        users[uid].flags = flags;
        return {};
    }

  private:
    Status step(const std::string& name)
    {
        calls.push_back(name);
        if (name == fail_at)
            return Error::msg(name, "fake store", "injected failure");
        return {};
    }
};

class FakeEvents final : public EventSink {
  public:
    std::vector<std::string> events; // "open 42 detail"
    std::vector<std::optional<SessionTally>> tallies;
    void session_event(const std::string& event, const SessionRecord& r, const std::string& detail,
                       const SessionTally* tally) override
    {
        events.push_back(event + " " + std::to_string(r.id) + (detail.empty() ? "" : " " + detail));
        tallies.push_back(tally ? std::optional<SessionTally>(*tally) : std::nullopt);
    }
};

using Calls = std::vector<std::string>;

OpenSpec login_spec(Calls& placed)
{
    OpenSpec spec;
    spec.record.id = 42;
    spec.record.user = "alice";
    spec.record.uid = 1000;
    spec.record.policy = "ssh";
    spec.record.policy_id = 3;
    spec.level = 2;
    spec.place = [&placed](std::string&) {
        placed.push_back("place");
        return Status{};
    };
    spec.unplace = [&placed] { placed.push_back("unplace"); };
    return spec;
}

// A service with a login session open (id 42), its calls forgotten.
struct OpenLogin {
    FakeStore store;
    FakeEvents events;
    Calls placed;
    SessionService service{store, events};
    SessionRecord rec;

    OpenLogin()
    {
        auto opened = service.open(login_spec(placed));
        BOOST_REQUIRE(opened.ok());
        rec = *opened;
        store.calls.clear();
    }
};

} // namespace

BOOST_AUTO_TEST_SUITE(session_service)

BOOST_AUTO_TEST_CASE(open_inserts_the_entry_first_and_writes_the_event_last)
{
    FakeStore store;
    FakeEvents events;
    Calls placed;
    auto rec = SessionService(store, events).open(login_spec(placed));
    BOOST_REQUIRE(rec.ok());
    BOOST_TEST(store.calls == (Calls{"insert_entry", "write_record", "mirror_add"}), boost::test_tools::per_element());
    BOOST_TEST(placed == Calls{"place"}, boost::test_tools::per_element());
    BOOST_TEST(events.events == Calls{"open 42"}, boost::test_tools::per_element());
    BOOST_TEST(rec->correlation.size() == 32u);
    BOOST_TEST(rec->opened_ns > 0u);
    BOOST_TEST(store.entries.at(42).uid == 1000u);
    BOOST_TEST(store.entries.at(42).policy_id == 3u);
    BOOST_TEST(store.entries.at(42).opened_ns == rec->opened_ns);
    BOOST_TEST(store.records.at(42).opened_ns == rec->opened_ns);
}

BOOST_AUTO_TEST_CASE(a_failed_open_undoes_every_step_before_it_newest_first)
{
    struct Case {
        std::string fail_at;
        Calls store_calls;
        Calls placed;
    };
    const std::vector<Case> cases{
        {"insert_entry", {"insert_entry"}, {}},
        {"write_record", {"insert_entry", "write_record", "remove_entry"}, {"place", "unplace"}},
        {"mirror_add",
         {"insert_entry", "write_record", "mirror_add", "remove_record", "remove_entry"},
         {"place", "unplace"}},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT("failing at " << c.fail_at)
        {
            FakeStore store;
            store.fail_at = c.fail_at;
            FakeEvents events;
            Calls placed;
            auto rec = SessionService(store, events).open(login_spec(placed));
            BOOST_TEST(!rec.ok());
            BOOST_TEST(store.calls == c.store_calls, boost::test_tools::per_element());
            BOOST_TEST(placed == c.placed, boost::test_tools::per_element());
            BOOST_TEST(events.events.empty());
            BOOST_TEST(store.entries.empty());
            BOOST_TEST(store.records.empty());
        }
    }
}

BOOST_AUTO_TEST_CASE(a_failed_placement_removes_the_entry_without_unplacing)
{
    FakeStore store;
    FakeEvents events;
    Calls placed;
    OpenSpec spec = login_spec(placed);
    spec.place = [&placed](std::string&) {
        placed.push_back("place");
        return Status(Error::msg("move", "leader", "injected failure"));
    };
    auto rec = SessionService(store, events).open(std::move(spec));
    BOOST_TEST(!rec.ok());
    BOOST_TEST(store.calls == (Calls{"insert_entry", "remove_entry"}), boost::test_tools::per_element());
    BOOST_TEST(placed == Calls{"place"}, boost::test_tools::per_element());
    BOOST_TEST(events.events.empty());
}

BOOST_AUTO_TEST_CASE(a_container_is_enrolled_even_when_the_mirror_fails)
{
    FakeStore store;
    store.fail_at = "mirror_add";
    FakeEvents events;
    OpenSpec spec;
    spec.record.id = 7;
    spec.record.kind = SessionKind::Container;
    spec.level = 3;
    spec.mirror_required = false;
    spec.detail = "enrolled by path";
    std::vector<std::string> warnings;
    auto rec = SessionService(store, events).open(std::move(spec), &warnings);
    BOOST_REQUIRE(rec.ok());
    BOOST_TEST(store.entries.at(7).flags == unsigned{AW_SESSION_CONTAINER});
    BOOST_TEST(store.records.count(7) == 1u);
    BOOST_TEST(warnings.size() == 1u);
    BOOST_TEST(events.events == Calls{"open 7 enrolled by path"}, boost::test_tools::per_element());
}

BOOST_AUTO_TEST_CASE(a_session_is_never_opened_over_another)
{
    FakeStore store;
    FakeEvents events;
    Calls placed;
    SessionService service(store, events);
    BOOST_REQUIRE(service.open(login_spec(placed)).ok());
    auto first = store.records.at(42);
    OpenSpec again = login_spec(placed);
    again.record.user = "mallory";
    auto second = service.open(std::move(again));
    BOOST_TEST(!second.ok());
    BOOST_TEST(store.records.at(42).user == "alice");
    BOOST_TEST(store.records.at(42).correlation == first.correlation);
    BOOST_TEST(store.entries.count(42) == 1u);
    BOOST_TEST(events.events.size() == 1u);
}

BOOST_FIXTURE_TEST_CASE(end_revokes_before_it_empties_and_removes_after, OpenLogin)
{
    bool revoked_when_emptied = false;
    EndSpec spec{"close", "", [&](std::string& detail) {
                     revoked_when_emptied = store.entries.at(42).flags & AW_SESSION_REVOKED;
                     store.calls.push_back("empty");
                     detail = "left-over processes killed";
                     return Emptied::Gone;
                 }};
    auto ended = service.end(rec, spec);
    BOOST_REQUIRE(ended.ok());
    BOOST_TEST(revoked_when_emptied);
    BOOST_TEST(store.calls ==
                   (Calls{"lookup_entry", "revoke", "mirror_remove", "empty", "remove_entry", "remove_record"}),
               boost::test_tools::per_element());
    BOOST_TEST(store.entries.empty());
    BOOST_TEST(store.records.empty());
    BOOST_TEST(events.events.back() == "close 42 left-over processes killed");
}

// authpf-style accounting: the event that ends a session says how long it
// lasted and what it did, as the counters stood after it was emptied.
BOOST_FIXTURE_TEST_CASE(the_end_event_carries_the_duration_and_the_counters, OpenLogin)
{
    rec.opened_ns = realtime_ns() - 90'000'000'000ULL; // opened 90 s ago
    store.stats[42].bytes_in = 1000;
    EndSpec spec{"close", "", [&](std::string&) {
                     store.stats[42].bytes_out = 2500; // the last sockets folded as they closed
                     store.stats[42].packets_out = 7;
                     store.stats[42].denied[AW_HOOK_CONNECT4] = 3;
                     store.stats[42].audited = 2;
                     return Emptied::Gone;
                 }};
    BOOST_REQUIRE(service.end(rec, spec).ok());
    BOOST_REQUIRE(events.tallies.back().has_value());
    const SessionTally& t = *events.tallies.back();
    BOOST_TEST(t.duration_s >= 90u);
    BOOST_TEST(t.duration_s < 100u);
    BOOST_TEST(t.counters.bytes_in == 1000u);
    BOOST_TEST(t.counters.bytes_out == 2500u);
    BOOST_TEST(t.counters.packets_out == 7u);
    BOOST_TEST(t.counters.denied_total() == 3u);
    BOOST_TEST(t.counters.audited == 2u);
    BOOST_TEST(!events.tallies.front().has_value()); // the open event has none
}

BOOST_FIXTURE_TEST_CASE(a_session_whose_cgroup_remains_stays_revoked_for_the_reaper, OpenLogin)
{
    auto ended = service.end(rec, {"close", "", [](std::string&) { return Emptied::Remains; }});
    BOOST_REQUIRE(ended.ok());
    BOOST_TEST(store.entries.at(42).flags & AW_SESSION_REVOKED);
    BOOST_TEST(store.records.count(42) == 1u);
    BOOST_TEST(events.events.back() == "close 42");
}

BOOST_FIXTURE_TEST_CASE(a_cgroup_not_removed_yet_is_left_revoked_and_untold, OpenLogin)
{
    auto ended = service.end(rec, {"reaped", "its processes ended", [](std::string&) { return Emptied::Retry; }});
    BOOST_REQUIRE(ended.ok());
    BOOST_TEST(store.entries.at(42).flags & AW_SESSION_REVOKED);
    BOOST_TEST(store.records.count(42) == 1u);
    BOOST_TEST(events.events == Calls{"open 42"}, boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(an_undone_end_restores_the_session_as_it_was, OpenLogin)
{
    auto ended = service.end(rec, {"reaped", "", [](std::string&) { return Emptied::Undo; }});
    BOOST_REQUIRE(ended.ok());
    BOOST_TEST((ended->emptied == Emptied::Undo));
    BOOST_TEST(!(store.entries.at(42).flags & AW_SESSION_REVOKED));
    BOOST_TEST(store.calls == (Calls{"lookup_entry", "revoke", "mirror_remove", "unrevoke", "mirror_add"}),
               boost::test_tools::per_element());
    BOOST_TEST(events.events.size() == 1u); // the open only

    // A session revoked before the end stays revoked, and out of the mirror.
    BOOST_REQUIRE(service.revoke(rec, "revoke", "").ok());
    store.calls.clear();
    BOOST_REQUIRE(service.end(rec, {"reaped", "", [](std::string&) { return Emptied::Undo; }}).ok());
    BOOST_TEST(store.entries.at(42).flags & AW_SESSION_REVOKED);
    BOOST_TEST(store.calls == (Calls{"lookup_entry", "revoke"}), boost::test_tools::per_element());
}

BOOST_FIXTURE_TEST_CASE(revoke_cuts_the_session_and_leaves_the_mirror_then_tells, OpenLogin)
{
    store.fail_at = "mirror_remove";
    std::vector<std::string> warnings;
    BOOST_REQUIRE(service.revoke(rec, "expired", "max_duration 60s reached", &warnings).ok());
    BOOST_TEST(store.calls == (Calls{"revoke", "mirror_remove"}), boost::test_tools::per_element());
    BOOST_TEST(store.entries.at(42).flags & AW_SESSION_REVOKED);
    BOOST_TEST(warnings.size() == 1u);
    BOOST_TEST(events.events.back() == "expired 42 max_duration 60s reached");

    // No entry: nothing is told.
    SessionRecord gone;
    gone.id = 99;
    BOOST_TEST(!service.revoke(gone, "revoke", "").ok());
    BOOST_TEST(events.events.back() == "expired 42 max_duration 60s reached");
}

BOOST_AUTO_TEST_CASE(without_the_mirror_no_mirror_step_is_taken)
{
    FakeStore store;
    store.mirror = false;
    FakeEvents events;
    Calls placed;
    SessionService service(store, events);
    auto rec = service.open(login_spec(placed));
    BOOST_REQUIRE(rec.ok());
    BOOST_REQUIRE(service.end(*rec, {"close", "", {}}).ok());
    for (const auto& c : store.calls)
        BOOST_TEST(c.rfind("mirror", 0) != 0u, c);
}

BOOST_AUTO_TEST_CASE(adopt_never_overwrites_a_record_that_appeared)
{
    FakeStore store;
    FakeEvents events;
    SessionService service(store, events);
    SessionRecord repaired;
    repaired.id = 5;
    repaired.service = "(repaired)";
    SessionRecord pams = repaired;
    pams.service = "sshd";
    store.records[5] = pams;
    auto written = service.adopt(repaired);
    BOOST_REQUIRE(written.ok());
    BOOST_TEST(!*written);
    BOOST_TEST(store.records.at(5).service == "sshd");
    store.records.clear();
    written = service.adopt(repaired);
    BOOST_REQUIRE(written.ok());
    BOOST_TEST(*written);
    BOOST_TEST(store.records.at(5).service == "(repaired)");
}

// Nothing an end step fails at is lost: a failed revoke or mirror step is
// a warning and the end goes on; a failed removal of the entry stops it
// with the session still revoked (the reaper ends it again); a record that
// cannot be removed once the entry is gone is an orphan cgroupd forgets,
// and the session's end is still told.
BOOST_AUTO_TEST_CASE(a_failed_end_step_is_told_and_nothing_is_lost)
{
    struct Case {
        std::string fail_at;
        bool ok;
        size_t warnings;
        bool entry_left, record_left, told;
    };
    const std::vector<Case> cases{
        {"revoke", true, 1, false, false, true},
        {"mirror_remove", true, 1, false, false, true},
        {"remove_entry", false, 0, true, true, false},
        {"remove_record", true, 1, false, true, true},
    };
    for (const auto& c : cases) {
        BOOST_TEST_CONTEXT("failing at " << c.fail_at)
        {
            OpenLogin s;
            s.store.fail_at = c.fail_at;
            auto ended = s.service.end(s.rec, {"close", "", {}});
            BOOST_TEST(ended.ok() == c.ok);
            if (ended)
                BOOST_TEST(ended->warnings.size() == c.warnings);
            Calls steps{"lookup_entry", "revoke", "mirror_remove", "remove_entry", "remove_record"};
            if (c.fail_at == "remove_entry")
                steps.pop_back();
            BOOST_TEST(s.store.calls == steps, boost::test_tools::per_element());
            BOOST_TEST(s.store.entries.count(42) == size_t{c.entry_left});
            if (c.entry_left && c.fail_at != "revoke")
                BOOST_TEST(s.store.entries.at(42).flags & AW_SESSION_REVOKED);
            BOOST_TEST(s.store.records.count(42) == size_t{c.record_left});
            BOOST_TEST(s.events.events.back() == (c.told ? "close 42" : "open 42"));
        }
    }
}

BOOST_AUTO_TEST_CASE(revoking_a_user_flags_their_layer_and_tells_lifting_undoes_it)
{
    FakeStore store;
    FakeEvents events;
    SessionService service(store, events);
    store.users[1000] = UserEntry{3, 0};
    BOOST_REQUIRE(service.revoke_user(1000, "alice", false).ok());
    BOOST_TEST(store.users.at(1000).flags == unsigned{AW_USER_REVOKED});
    BOOST_TEST(store.users.at(1000).policy_id == 3u);
    BOOST_TEST(events.events.back() == "revoke 0 every process of the user; logins refused until lifted");
    BOOST_REQUIRE(service.revoke_user(1000, "alice", true).ok());
    BOOST_TEST(store.users.at(1000).flags == 0u);
    BOOST_TEST(events.events.back() == "revoke 0 revocation of the user lifted");

    // Lifting what is not revoked, or a write that fails, changes and tells nothing.
    BOOST_TEST(!service.revoke_user(1000, "alice", true).ok());
    store.fail_at = "set_user";
    BOOST_TEST(!service.revoke_user(1000, "alice", false).ok());
    BOOST_TEST(store.users.at(1000).flags == 0u);
    BOOST_TEST(events.events.size() == 2u);

    // A user no login armed yet is revoked all the same (the fallback policy).
    store.fail_at.clear();
    BOOST_REQUIRE(service.revoke_user(2000, "bob", false).ok());
    BOOST_TEST(store.users.at(2000).flags == unsigned{AW_USER_REVOKED});
    BOOST_TEST(store.users.at(2000).policy_id == unsigned{AW_POLICY_FALLBACK});
}

BOOST_AUTO_TEST_CASE(the_mirror_is_repaired_only_when_it_is_on)
{
    FakeStore store;
    FakeEvents events;
    SessionService service(store, events);
    auto repaired = service.repair_mirror();
    BOOST_REQUIRE(repaired.ok());
    BOOST_TEST(repaired->missing == 2u);
    BOOST_TEST(repaired->stray == 1u);
    BOOST_TEST(store.calls == Calls{"mirror_repair"}, boost::test_tools::per_element());
    store.calls.clear();
    store.mirror = false;
    repaired = service.repair_mirror();
    BOOST_REQUIRE(repaired.ok());
    BOOST_TEST(repaired->empty());
    BOOST_TEST(store.calls.empty());
    BOOST_TEST(events.events.empty());
}

BOOST_AUTO_TEST_SUITE_END()
