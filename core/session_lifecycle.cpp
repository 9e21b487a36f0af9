#include "core/session_lifecycle.h"

#include "core/cgroup.h"
#include "core/maps.h"
#include "core/nft_mirror.h"
#include "core/policy_index.h"
#include "core/systemd_scope.h"

#include <pwd.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

namespace authwall {

namespace fs = std::filesystem;

Result<PamOptions> parse_pam_options(const std::vector<std::string>& args)
{
    PamOptions o;
    for (const auto& a : args) {
        if (a == "fail=closed")
            o.fail_closed = true;
        else if (a == "fail=open")
            o.fail_closed = false;
        else if (a == "rhost=lax")
            o.rhost = RhostMode::Lax;
        else if (a == "rhost=strict")
            o.rhost = RhostMode::Strict;
        else if (a.starts_with("config=") && a.size() > 7 && a[7] == '/') {
            o.config = a.substr(7);
            o.config_explicit = true;
        } else if (a == "debug")
            o.debug = true;
        else
            return Error::msg("parse module arguments", "'" + printable(a) + "'",
                              "unknown argument (expected fail=closed|open, rhost=lax|strict, config=/PATH, debug)");
    }
    return o;
}

namespace {

OpenOutcome failed(OpenFailure kind, Error e)
{
    return OpenOutcome{std::nullopt, OpenError{kind, std::move(e)}};
}


fs::path session_parent(const Config& config, const CgroupMount& mount)
{
    fs::path root = config.enforcement_roots.empty() ? mount.mount_point : config.enforcement_roots.front();
    return root / "authwall";
}

// Where a process's cgroup (as /proc/PID/cgroup names it) lives on disk.
fs::path on_disk(const CgroupMount& mount, const std::string& relative)
{
    std::string rel = relative;
    if (mount.root != "/" && rel.starts_with(mount.root))
        rel = rel.substr(mount.root.size());
    return mount.mount_point / fs::path(rel).relative_path();
}

struct Account {
    std::string name; // as the password database spells it
    uid_t uid = 0;
    gid_t gid = 0;
};

Result<Account> lookup_account(const std::string& typed)
{
    if (auto problem = username_problem(typed))
        return Error::msg("refuse user", "'" + printable(typed) + "'", *problem);
    passwd pw{};
    passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (getpwnam_r(typed.c_str(), &pw, buf.data(), buf.size(), &found) != 0 || !found)
        return Error::msg("refuse user", "'" + typed + "'", "unknown to NSS");
    Account a{pw.pw_name, pw.pw_uid, pw.pw_gid};
    if (auto problem = username_problem(a.name))
        return Error::msg("refuse user", "'" + typed + "'",
                          "the password database names it '" + printable(a.name) + "': " + *problem);
    return a;
}

// The session `cgroup` or one of its ancestors belongs to, if any.
Result<std::optional<uint64_t>> enclosing_session(const PinnedMaps& maps, const CgroupMount& mount,
                                                  const fs::path& cgroup)
{
    auto ids = cgroup_ancestor_ids(mount, cgroup);
    if (!ids)
        return ids.error();
    for (uint64_t id : *ids) {
        auto entry = maps.lookup_session(id);
        if (!entry)
            return entry.error();
        if (*entry)
            return std::optional<uint64_t>(id);
    }
    return std::optional<uint64_t>();
}

} // namespace

OpenOutcome open_login_session(const OpenRequest& req, const Config& config, RhostMode rhost_mode, EventSink& events)
{
    OpenResult result;

    auto account = lookup_account(req.user);
    if (!account)
        return failed(OpenFailure::BadUser, account.error());
    // From here on the account's own spelling of the name: NSS may accept
    // another (case-folding directories), and policies, groups, the record
    // and the cgroup name must all agree on one.
    const std::string& user = account->name;

    auto rhost = normalize_rhost(req.rhost, rhost_mode);
    if (!rhost)
        return failed(OpenFailure::BadRhost, rhost.error());
    if (!rhost->note.empty() && !req.rhost.empty())
        result.notes.push_back(rhost->note);

    LoginFacts login{user, {}, req.service, rhost->address};
    auto groups = user_groups(user, account->gid);
    if (!groups)
        return failed(OpenFailure::Enforcement, groups.error());
    login.groups = *groups;
    // Exempt users (root by default) are decided from the configuration
    // alone, before anything that needs the loader: a stopped loader must
    // never lock the administrator out.
    PolicyIndex exemptions;
    exemptions.exempt_users = config.exempt_users;
    exemptions.exempt_groups = config.exempt_groups;
    if (is_exempt(exemptions, login)) {
        result.exempt = true;
        return OpenOutcome{result, std::nullopt};
    }
    auto index = read_policy_index(config.run_dir);
    if (!index)
        return failed(OpenFailure::Enforcement, index.error());
    if (is_exempt(*index, login)) { // as published with the policies in force
        result.exempt = true;
        return OpenOutcome{result, std::nullopt};
    }

    SessionRecord rec;
    rec.correlation = random_hex(16);
    rec.user = user;
    rec.uid = account->uid;
    rec.service = req.service;
    if (rhost->address)
        rec.rhost = rhost->address->str();
    rec.tty = req.tty;
    rec.leader_pid = req.leader;
    if (const IndexedPolicy* p = resolve_policy(*index, login)) {
        rec.policy = p->name;
        rec.policy_id = p->id;
        rec.max_duration_s = p->max_duration_s;
    } else {
        rec.policy = index->unmatched.kind == Fallback::Kind::Policy ? index->unmatched.policy : "(unmatched)";
        rec.policy_id = AW_POLICY_FALLBACK;
    }

    auto maps = PinnedMaps::open(config.pin_dir);
    if (!maps)
        return failed(OpenFailure::Enforcement, maps.error());
    auto mount = find_cgroup2_mount();
    if (!mount)
        return failed(OpenFailure::Enforcement, mount.error());
    auto origin = process_cgroup(req.leader);
    if (!origin)
        return failed(OpenFailure::Enforcement, origin.error());
    rec.origin_cgroup = on_disk(*mount, *origin).string();
    // A login from inside a session (su, sudo -i, a nested sshd) stays where
    // it is: moving it to a cgroup of its own would let a session's user
    // leave their policy by logging in again.
    auto enclosing = enclosing_session(*maps, *mount, rec.origin_cgroup);
    if (!enclosing)
        return failed(OpenFailure::Enforcement, enclosing.error());
    if (*enclosing) {
        result.enclosing_session = *enclosing;
        result.notes.push_back("login of " + user + " inside session " + std::to_string(**enclosing) +
                               ": no session of its own, the enclosing session's policy stays in force");
        return OpenOutcome{result, std::nullopt};
    }
    if (rec.policy_id != AW_POLICY_FALLBACK) {
        auto active = maps->active_policy_ids();
        if (!active)
            return failed(OpenFailure::Enforcement, active.error());
        auto it = active->find(rec.policy);
        if (it == active->end() || it->second != rec.policy_id)
            return failed(OpenFailure::Enforcement,
                          Error::msg("resolve policy", rec.policy,
                                     "is not in force in the kernel (authctl policy show; authctl policy check)"));
    }

    // The session's cgroup: a transient scope in authwall.slice when systemd
    // is the init (systemd makes it and moves the leader in), else a
    // directory below the enforcement root.
    const bool scope = systemd_is_init();
    fs::path cgroup;
    std::string name = user + "-" + random_hex(6);
    if (!scope) {
        fs::path parent = session_parent(config, *mount);
        if (auto st = cgroup_create(parent); !st)
            return failed(OpenFailure::Enforcement, st.error());
        cgroup = parent / name;
        if (auto st = cgroup_create(cgroup); !st)
            return failed(OpenFailure::Enforcement, st.error());
    }

    // From here on, undo everything on failure.
    bool recorded = false;
    auto rollback = [&](Error e) {
        if (recorded)
            remove_record(config.run_dir, rec.id).ok();
        if (!rec.origin_cgroup.empty())
            cgroup_move_pid(rec.origin_cgroup, req.leader).ok();
        if (rec.id)
            maps->remove_session(rec.id).ok();
        if (scope && !rec.unit.empty())
            stop_unit(rec.unit).ok(); // the leader is back where it came from, or the login ends anyway
        else if (!cgroup.empty())
            ::rmdir(cgroup.c_str());
        return failed(OpenFailure::Enforcement, std::move(e));
    };
    if (scope) {
        // systemd moves the leader when it starts the scope: the entry goes
        // in right after, before open_session returns — no code of the user
        // runs before that (the login service forks the user's shell later).
        rec.unit = "authwall-" + name + ".scope";
        if (auto st = start_transient_scope(rec.unit, kSessionSlice, req.leader,
                                            "authwall session of " + user + " (" + req.service + ")");
            !st) {
            rec.unit.clear(); // not made: nothing to stop
            return rollback(st.error());
        }
        auto now_in = process_cgroup(req.leader);
        if (!now_in)
            return rollback(now_in.error());
        cgroup = on_disk(*mount, *now_in);
        if (cgroup.filename() != rec.unit)
            return rollback(Error::msg("start", rec.unit, "the leader is in " + cgroup.string() + " instead"));
    }
    rec.cgroup = cgroup.string();
    auto id = cgroup_id(cgroup);
    if (!id)
        return rollback(id.error());
    auto level = cgroup_level(*mount, cgroup);
    if (!level)
        return rollback(level.error());
    // cgroupfs: the entry goes in before the leader moves, so its first
    // packet in the new cgroup is already enforced.
    rec.opened_ns = realtime_ns();
    rec.opened_at = rfc3339_utc(rec.opened_ns);
    SessionEntry entry;
    entry.policy_id = rec.policy_id;
    entry.uid = rec.uid;
    entry.rhost = rhost->address;
    entry.opened_ns = rec.opened_ns;
    if (auto st = maps->insert_session(*id, *level, entry); !st)
        return rollback(st.error());
    rec.id = *id;
    if (!scope)
        if (auto st = cgroup_move_pid(cgroup, req.leader); !st)
            return rollback(st.error());
    if (auto st = write_record(config.run_dir, rec); !st)
        return rollback(st.error());
    recorded = true;
    // With the mirror on, nft rules may rely on the sets (a gateway forwards
    // only addresses in session_addrs): a session missing there is refused.
    if (config.nft_mirror)
        if (auto st = nft_mirror_add(config.run_dir, mirror_session_of(rec)); !st)
            return rollback(st.error());
    events.session_event("open", rec, "");
    result.record = rec;
    return OpenOutcome{result, std::nullopt};
}

Result<CloseResult> close_login_session(std::optional<uint64_t> id_hint, pid_t caller, const std::string& typed_user,
                                        const Config& config, EventSink& events)
{
    CloseResult result;
    if (id_hint && *id_hint == 0)
        return result; // open made no session here (exempt, or inside another)
    auto mount = find_cgroup2_mount();
    if (!mount)
        return mount.error();
    // The account's own spelling, as open recorded it.
    std::string user = typed_user;
    if (auto account = lookup_account(typed_user))
        user = account->name;

    std::optional<SessionRecord> rec;
    if (id_hint) {
        if (auto r = read_record(config.run_dir, *id_hint))
            rec = *r;
    }
    if (!rec) {
        // Another process than open's: its own cgroup is the session's.
        if (auto own = process_cgroup(caller)) {
            if (auto id = cgroup_id(on_disk(*mount, *own)))
                if (auto r = read_record(config.run_dir, *id); r && r->user == user)
                    rec = *r;
        }
    }
    if (!rec) {
        if (auto all = list_records(config.run_dir))
            for (const auto& r : *all)
                if (r.leader_pid == caller && r.kind == "login" && r.user == user)
                    rec = r;
    }
    if (!rec)
        return result; // nothing to close: already closed, or never opened

    auto maps = PinnedMaps::open(config.pin_dir);
    if (maps) // revoke first: the network is cut before anything else happens
        maps->set_session_flags(rec->id, AW_SESSION_REVOKED, 0).ok();
    if (config.nft_mirror) {
        auto m = mirror_session_of(*rec);
        if (auto st = nft_mirror_remove(config.run_dir, m.id, m.rhost); !st)
            result.notes.push_back("nft mirror not updated (cgroupd repairs it): " + st.error().message());
    }

    fs::path cgroup = rec->cgroup;
    if (!rec->unit.empty()) {
        // systemd owns the scope. The caller may be in it (the login
        // service's process that opened the session): everything else is
        // killed, and systemd collects the scope when the caller exits.
        // From any other process the unit is stopped.
        auto own = process_cgroup(caller);
        if (own && on_disk(*mount, *own) == cgroup) {
            result.processes_killed = cgroup_populated(cgroup);
            result.cgroup_removed = cgroup_kill_except(cgroup, caller);
        } else {
            result.processes_killed = is_cgroup2_dir(cgroup) && cgroup_populated(cgroup);
            if (auto st = stop_unit(rec->unit); !st)
                result.notes.push_back(st.error().message());
            else
                result.cgroup_removed = true;
        }
    } else {
        fs::path back = !rec->origin_cgroup.empty() && is_cgroup2_dir(rec->origin_cgroup)
                            ? fs::path(rec->origin_cgroup)
                            : mount->mount_point;
        if (auto own = process_cgroup(caller); own && on_disk(*mount, *own) == cgroup)
            if (auto st = cgroup_move_pid(back, caller); !st)
                return st.error();
        if (is_cgroup2_dir(cgroup)) {
            if (cgroup_populated(cgroup)) {
                cgroup_kill(cgroup).ok();
                result.processes_killed = true;
                for (int i = 0; i < 200 && cgroup_populated(cgroup); ++i)
                    std::this_thread::sleep_for(std::chrono::milliseconds(10));
            }
            result.cgroup_removed = cgroup_remove_tree(cgroup).ok();
        } else {
            result.cgroup_removed = true;
        }
    }
    // The entry stays (revoked) while anything is left in the cgroup;
    // cgroupd reaps it once the cgroup is gone.
    if (result.cgroup_removed && maps)
        if (auto st = maps->remove_session(rec->id); !st)
            return st.error();
    if (result.cgroup_removed)
        if (auto st = remove_record(config.run_dir, rec->id); !st)
            return st.error();
    events.session_event("close", *rec, result.processes_killed ? "left-over processes killed" : "");
    result.closed = rec;
    return result;
}

} // namespace authwall
