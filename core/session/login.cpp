#include "core/session/login.h"

#include "core/host/cgroup.h"
#include "core/dataplane/maps.h"
#include "core/policy/index.h"
#include "core/host/systemd_scope.h"
#include "core/base/time.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <fstream>
#include <thread>

namespace authwall {

namespace fs = std::filesystem;

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

namespace {

// logind's scope of this login, when pam_systemd (earlier in the stack) put
// the leader there: /user.slice/user-UID.slice/session-ID.scope, ID the
// session pam_systemd reported. Keying the login on it keeps logind whole
// (terminate-session, kill-session, ReleaseSession, session-status).
bool is_logind_scope(const std::string& cgroup, uid_t uid, const std::string& session)
{
    if (session.empty() || session.size() > 32 || !std::all_of(session.begin(), session.end(), [](char c) {
            return std::isalnum(static_cast<unsigned char>(c));
        }))
        return false;
    std::string want = "/user-" + std::to_string(uid) + ".slice/session-" + session + ".scope";
    return cgroup.size() > want.size() && cgroup.ends_with(want) && cgroup.find("/user.slice/") != std::string::npos;
}

// A login service whose mount namespace lacks cgroup2 or the pins (sshd
// under `ip netns exec`) is told so, not only that a pin or a mount is
// missing. Read only when something is missing: mountinfo is not read a
// third time on every login.
Error explained(Error e, const std::string& user, const Config& config)
{
    if (auto why = mount_namespace_problem(0, config.pin_dir))
        return Error::msg("enforce login of", user, *why);
    return e;
}

// Where the login's cgroup comes from.
enum class LoginCgroup {
    Logind,   // logind's session-N.scope, where the leader already is
    OwnScope, // a transient scope of ours in authwall.slice (systemd, no logind)
    Directory // a directory below the enforcement root (no systemd)
};

// The login's cgroup, its entry, record, mirror elements and open event,
// in the order the header states; everything rolled back on failure.
OpenOutcome open_login_cgroup(const OpenRequest& req, const Config& config, SessionRecord rec,
                              const std::optional<IpAddress>& rhost, PinnedMaps& maps, EventSink& events,
                              LoginExtras& extras, OpenResult result)
{
    auto mount = find_cgroup2_mount(config.enforcement_roots);
    if (!mount)
        return failed(OpenFailure::Enforcement, explained(mount.error(), rec.user, config));
    auto origin = process_cgroup(req.leader);
    if (!origin)
        return failed(OpenFailure::Enforcement, origin.error());
    rec.origin_cgroup = on_disk(*mount, *origin).string();
    // A login from inside a session (su, sudo -i, a nested sshd) stays where
    // it is: moving it to a cgroup of its own would let a session's user
    // leave their policy by logging in again.
    auto enclosing = enclosing_session(maps, *mount, rec.origin_cgroup);
    if (!enclosing)
        return failed(OpenFailure::Enforcement, enclosing.error());
    if (*enclosing) {
        result.enclosing_session = *enclosing;
        result.notes.push_back("login of " + rec.user + " inside session " + std::to_string(**enclosing) +
                               ": no session of its own, the enclosing session's policy stays in force");
        return OpenOutcome{result, std::nullopt};
    }

    LoginCgroup how = LoginCgroup::Directory;
    if (systemd_is_init())
        how = is_logind_scope(*origin, rec.uid, req.logind_session) ? LoginCgroup::Logind : LoginCgroup::OwnScope;
    fs::path cgroup;
    std::string name = rec.user + "-" + random_hex(6);
    if (how == LoginCgroup::Logind) {
        cgroup = rec.origin_cgroup;
        rec.unit = cgroup.filename().string();
    } else if (how == LoginCgroup::Directory) {
        fs::path parent = session_parent(config, *mount);
        if (auto st = cgroup_create(parent); !st)
            return failed(OpenFailure::Enforcement, st.error());
        cgroup = parent / name;
        if (auto st = cgroup_create(cgroup); !st)
            return failed(OpenFailure::Enforcement, st.error());
    }

    // From here on, undo everything on failure (logind's scope is logind's:
    // never stopped here, the leader stays in it).
    bool recorded = false;
    auto rollback = [&](Error e) {
        if (recorded)
            remove_record(config.run_dir, rec.id).ok();
        if (how != LoginCgroup::Logind && !rec.origin_cgroup.empty())
            cgroup_move_pid(rec.origin_cgroup, req.leader).ok();
        if (rec.id)
            maps.remove_session(rec.id).ok();
        if (how == LoginCgroup::OwnScope && !rec.unit.empty())
            extras.stop_unit(rec.unit).ok(); // the leader is back where it came from, or the login ends anyway
        else if (how == LoginCgroup::Directory && !cgroup.empty())
            ::rmdir(cgroup.c_str());
        return failed(OpenFailure::Enforcement, std::move(e));
    };
    if (how == LoginCgroup::OwnScope) {
        // systemd moves the leader when it starts the scope: the entry goes
        // in right after, before open_session returns — no code of the user
        // runs before that (the login service forks the user's shell later).
        rec.unit = "authwall-" + name + ".scope";
        if (auto st = extras.start_transient_scope(rec.unit, kSessionSlice, req.leader,
                                                   "authwall session of " + rec.user + " (" + req.service + ")");
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
    entry.rhost = rhost;
    entry.opened_ns = rec.opened_ns;
    if (auto st = maps.insert_session(*id, *level, entry); !st)
        return rollback(st.error());
    rec.id = *id;
    if (how == LoginCgroup::Directory)
        if (auto st = cgroup_move_pid(cgroup, req.leader); !st)
            return rollback(st.error());
    if (auto st = write_record(config.run_dir, rec); !st)
        return rollback(st.error());
    recorded = true;
    // With the mirror on, nft rules may rely on the sets (a gateway forwards
    // only addresses in session_addrs): a session missing there is refused.
    if (config.nft_mirror)
        if (auto st = extras.nft_mirror_add(config.run_dir, rec); !st)
            return rollback(st.error());
    events.session_event("open", rec, how == LoginCgroup::Logind ? "logind " + rec.unit : "");
    result.record = rec;
    result.cgroup_mount = *mount;
    return OpenOutcome{result, std::nullopt};
}

} // namespace

namespace {

// The login's policy, or nullopt when no policy claims it and unmatched is
// "deny" (the login is refused).
struct LoginPolicy {
    std::string name;
    uint32_t id = AW_POLICY_FALLBACK;
    uint64_t max_duration_s = 0;
};

std::optional<LoginPolicy> login_policy(const PolicyIndex& index, const LoginFacts& login)
{
    if (const IndexedPolicy* p = resolve_policy(index, login))
        return LoginPolicy{p->name, p->id, p->max_duration_s};
    switch (index.unmatched.kind) {
    case Fallback::Kind::Deny:
        return std::nullopt;
    case Fallback::Kind::Policy:
        return LoginPolicy{index.unmatched.policy, AW_POLICY_FALLBACK, 0};
    default:
        return LoginPolicy{"(unmatched)", AW_POLICY_FALLBACK, 0};
    }
}

Status check_in_force(const PinnedMaps& maps, const std::string& name, uint32_t id)
{
    if (id == AW_POLICY_FALLBACK)
        return {};
    auto in_force = maps.policy_in_force(name, id);
    if (!in_force)
        return in_force.error();
    if (!*in_force)
        return Error::msg("resolve policy", name,
                          "is not in force in the kernel (authctl policy show; authctl policy check)");
    return {};
}

// Writes (or clears) the user layer of the account: its own policy, by
// uid, whatever cgroup its processes are in. `existing` is the entry as
// read at this open; an entry that already holds the policy is not written
// again (a login costs one map lookup then). Returns the policy name, or
// nullopt when the user is not held by the user layer.
Result<std::optional<std::string>> arm_user_layer(PinnedMaps& maps, const PolicyIndex& index, const LoginFacts& facts,
                                                  uid_t uid, const std::optional<UserEntry>& existing,
                                                  const Config& config)
{
    if (!config.user_layer || uid < config.users_min_uid || uid > config.users_max_uid)
        return std::optional<std::string>();
    std::string name;
    uint32_t id = AW_POLICY_FALLBACK;
    if (const IndexedPolicy* p = resolve_user_policy(index, facts)) {
        name = p->name;
        id = p->id;
    } else if (index.unmatched.kind == Fallback::Kind::Pass) {
        if (existing)
            if (auto st = maps.remove_user(uid); !st)
                return st.error();
        return std::optional<std::string>();
    } else {
        name = index.unmatched.kind == Fallback::Kind::Policy ? index.unmatched.policy : "(unmatched: deny)";
    }
    if (auto st = check_in_force(maps, name, id); !st)
        return st.error();
    if (!existing || existing->policy_id != id || existing->flags != 0)
        if (auto st = maps.set_user(uid, id); !st)
            return st.error();
    return std::optional<std::string>(name);
}

bool listed_service(const std::vector<std::string>& services, const std::string& service)
{
    return std::find(services.begin(), services.end(), service) != services.end();
}

} // namespace

OpenOutcome open_login_session(const OpenRequest& req, const Config& config, RhostMode rhost_mode, EventSink& events,
                               LoginExtras& extras)
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
    // The user's groups, read from NSS only when an exemption or a policy
    // names a group: getgrouplist asks every source (on Debian it loads
    // libnss_systemd and libsystemd into the login service), which costs
    // more than the rest of the open together.
    bool have_groups = false;
    auto read_groups = [&]() -> Status {
        if (have_groups)
            return {};
        auto groups = user_groups(user, account->gid);
        if (!groups)
            return groups.error();
        login.groups = std::move(groups).value();
        have_groups = true;
        return {};
    };
    // Exempt users (root by default) are decided from the configuration
    // alone, before anything that needs the loader: a stopped loader must
    // never lock the administrator out.
    PolicyIndex exemptions;
    exemptions.exempt_users = config.exempt_users;
    exemptions.exempt_groups = config.exempt_groups;
    if (!is_exempt(exemptions, login) && names_groups(exemptions))
        if (auto st = read_groups(); !st)
            return failed(OpenFailure::Enforcement, st.error());
    if (is_exempt(exemptions, login)) {
        result.exempt = true;
        return OpenOutcome{result, std::nullopt};
    }
    auto index = read_policy_index(config.run_dir);
    if (!index)
        return failed(OpenFailure::Enforcement, index.error());
    if (!is_exempt(*index, login) && names_groups(*index))
        if (auto st = read_groups(); !st)
            return failed(OpenFailure::Enforcement, st.error());
    if (is_exempt(*index, login)) { // as published with the policies in force
        result.exempt = true;
        return OpenOutcome{result, std::nullopt};
    }
    // A user-only session (cron, at, sudo, the user manager) makes no login
    // session: which policy its *login* would get, and unmatched = "deny",
    // do not apply to it; the user layer below does.
    const bool user_only = req.user_only || listed_service(config.user_only_services, req.service);
    std::optional<LoginPolicy> policy;
    if (!user_only) {
        policy = login_policy(*index, login);
        if (!policy)
            return failed(OpenFailure::Refused,
                          Error::msg("refuse login of", user, "no policy claims it and unmatched = \"deny\""));
    }

    // The maps this open touches, and no others: the user layer's, and the
    // session's unless this is a user-only session; every write also moves
    // the generation on.
    auto maps = user_only ? PinnedMaps::open(config.pin_dir, {"policy_names", "users", "generation"})
                          : PinnedMaps::open(config.pin_dir, {"policy_names", "users", "sessions", "session_stats",
                                                              "session_levels", "generation"});
    if (!maps)
        return failed(OpenFailure::Enforcement, explained(maps.error(), user, config));
    // A revoked user (authctl revoke --user) stays cut off: no new login,
    // and no cron job or user manager either, until the revocation is lifted.
    // An entry that cannot be read refuses like any enforcement failure.
    auto existing = maps->lookup_user(account->uid);
    if (!existing)
        return failed(OpenFailure::Enforcement, existing.error());
    if (*existing && ((*existing)->flags & AW_USER_REVOKED))
        return failed(OpenFailure::Refused,
                      Error::msg("refuse login of", user,
                                 "the user is revoked (authctl revoke --user " + user + " --undo lifts it)"));
    auto armed = arm_user_layer(*maps, *index, login, account->uid, *existing, config);
    if (!armed)
        return failed(OpenFailure::Enforcement, armed.error());
    result.user_policy = *armed;
    if (user_only) {
        result.user_only = true;
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
    rec.policy = policy->name;
    rec.policy_id = policy->id;
    rec.max_duration_s = policy->max_duration_s;
    if (auto st = check_in_force(*maps, rec.policy, rec.policy_id); !st)
        return failed(OpenFailure::Enforcement, st.error());
    return open_login_cgroup(req, config, std::move(rec), rhost->address, *maps, events, extras, std::move(result));
}

Result<CloseResult> close_login_session(const CloseHint& hint, pid_t caller, const std::string& typed_user,
                                        const Config& config, EventSink& events, LoginExtras& extras)
{
    CloseResult result;
    if (hint.session && *hint.session == 0)
        return result; // open made no session here (exempt, or inside another)
    Result<CgroupMount> mount =
        hint.mount ? Result<CgroupMount>(*hint.mount) : find_cgroup2_mount(config.enforcement_roots);
    if (!mount)
        return mount.error();

    std::optional<SessionRecord> rec;
    if (hint.session) {
        if (auto r = read_record(config.run_dir, *hint.session))
            rec = *r;
    }
    // Found otherwise, the session must be the user's: the account's own
    // spelling, as open recorded it (the database is read only then).
    std::string user = typed_user;
    if (!rec)
        if (auto account = lookup_account(typed_user))
            user = account->name;
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
                if (r.leader_pid == caller && r.kind == SessionKind::Login && r.user == user)
                    rec = r;
    }
    if (!rec)
        return result; // nothing to close: already closed, or never opened

    auto maps = PinnedMaps::open(config.pin_dir, {"sessions", "session_stats", "generation"});
    if (maps) // revoke first: the network is cut before anything else happens
        maps->set_session_flags(rec->id, AW_SESSION_REVOKED, 0).ok();
    if (config.nft_mirror) {
        if (auto st = extras.nft_mirror_remove(config.run_dir, *rec); !st)
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
            if (auto st = extras.stop_unit(rec->unit); !st)
                result.notes.push_back(st.error().message());
            else
                result.cgroup_removed = true;
        }
    } else {
        fs::path back = !rec->origin_cgroup.empty() && is_cgroup2_dir(rec->origin_cgroup) ? fs::path(rec->origin_cgroup)
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
