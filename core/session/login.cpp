// SPDX-License-Identifier: Apache-2.0
#include "core/session/login.h"

#include "core/host/cgroup.h"
#include "core/dataplane/maps.h"
#include "core/policy/index.h"
#include "core/host/systemd_scope.h"
#include "core/host/tcp_peer.h"
#include "core/session/service.h"
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

namespace {

// Where the login's cgroup comes from.
enum class LoginCgroup {
    Logind,   // logind's session-N.scope, where the leader already is
    OwnScope, // a transient scope of ours in authwall.slice (systemd, no logind)
    Directory // a directory below the enforcement root (no systemd)
};

// One open_login_session, step by step in the order the header states.
// Each step returns an outcome when the open ends there, nullopt to go on.
class LoginOpening {
  public:
    LoginOpening(const OpenRequest& req, const Config& config, RhostMode rhost_mode, EventSink& events,
                 LoginExtras& extras)
        : req_(req), config_(config), rhost_mode_(rhost_mode), events_(events), extras_(extras),
          auth_correlation_(sanitize_auth_tag(kAuthCorrelationVar, req.auth_correlation, kAuthCorrelationMax)),
          auth_claims_(sanitize_auth_tag(kAuthClaimsVar, req.auth_claims, kAuthClaimsMax))
    {
    }

    OpenOutcome run()
    {
        for (auto step : {&LoginOpening::identify, &LoginOpening::exempt_or_policy, &LoginOpening::arm_user,
                          &LoginOpening::find_origin})
            if (auto ended = (this->*step)())
                return std::move(*ended);
        return open_cgroup();
    }

  private:
    OpenOutcome done() { return OpenOutcome{std::move(result_), std::nullopt}; }

    std::optional<OpenOutcome> identify();
    std::optional<OpenOutcome> exempt_or_policy();
    std::optional<OpenOutcome> arm_user();
    std::optional<OpenOutcome> find_origin();
    OpenOutcome open_cgroup();
    Result<bool> exempt_by(const PolicyIndex& index);
    SessionRecord login_record() const;
    Result<RhostResult> login_rhost() const;
    Status make_own_scope(SessionRecord& rec);

    const OpenRequest& req_;
    const Config& config_;
    RhostMode rhost_mode_;
    EventSink& events_;
    LoginExtras& extras_;
    OpenResult result_;
    AuthTag auth_correlation_;
    AuthTag auth_claims_;
    std::optional<Error> rhost_failure_; // rhost=kernel found no address

    Account account_;
    LoginFacts login_;
    bool have_groups_ = false;
    PolicyIndex index_;
    bool user_only_ = false;
    LoginPolicy policy_;
    std::optional<PinnedMaps> maps_;
    CgroupMount mount_;
    std::string origin_; // the leader's cgroup as /proc names it
    fs::path origin_on_disk_;
};

// The account (its own spelling of the name from here on: NSS may accept
// another, and policies, groups, the record and the cgroup name must all
// agree on one) and the remote host.
std::optional<OpenOutcome> LoginOpening::identify()
{
    auto account = lookup_account(req_.user);
    if (!account)
        return failed(OpenFailure::BadUser, account.error());
    account_ = std::move(account).value();
    auto rhost = login_rhost();
    if (!rhost && rhost_mode_ != RhostMode::Kernel)
        return failed(OpenFailure::BadRhost, rhost.error());
    if (!rhost)
        rhost_failure_ = rhost.error(); // refuses a login session, not an exempt or user-only open
    else if (!rhost->note.empty() && !req_.rhost.empty())
        result_.notes.push_back(rhost->note);
    login_ = LoginFacts{account_.name, {}, req_.service, rhost ? rhost->address : std::nullopt};
    for (auto* tag : {&auth_correlation_, &auth_claims_})
        if (!tag->note.empty())
            result_.notes.push_back(tag->note);
    return std::nullopt;
}

// The remote address: PAM_RHOST as rhost= says, or with rhost=kernel the
// peer of the leader's connection. With rhost=kernel and no connection the
// login cannot be placed by address: an enforcement failure, as fail= says.
Result<RhostResult> LoginOpening::login_rhost() const
{
    if (rhost_mode_ != RhostMode::Kernel)
        return normalize_rhost(req_.rhost, rhost_mode_);
    auto peer = login_peer_address(req_.leader);
    if (!peer)
        return Error::msg("rhost=kernel", "user " + account_.name, peer.error().message());
    return rhost_from_peer(*peer, req_.rhost);
}

// Whether `index` exempts the login. The user's groups are read from NSS
// only when an exemption or a policy names a group: getgrouplist asks every
// source (on Debian it loads libnss_systemd and libsystemd into the login
// service), which costs more than the rest of the open together.
Result<bool> LoginOpening::exempt_by(const PolicyIndex& index)
{
    if (!have_groups_ && !is_exempt(index, login_) && names_groups(index)) {
        auto groups = user_groups(login_.user, account_.gid);
        if (!groups)
            return groups.error();
        login_.groups = std::move(groups).value();
        have_groups_ = true;
    }
    return is_exempt(index, login_);
}

// Exempt users (root by default) are decided from the configuration alone,
// before anything that needs the loader: a stopped loader must never lock
// the administrator out; then as published with the policies in force. A
// user-only session (cron, at, sudo, the user manager) makes no login
// session: which policy its *login* would get, and unmatched = "deny", do
// not apply to it; the user layer does.
std::optional<OpenOutcome> LoginOpening::exempt_or_policy()
{
    PolicyIndex exemptions;
    exemptions.exempt_users = config_.exempt_users;
    exemptions.exempt_groups = config_.exempt_groups;
    auto exempt = exempt_by(exemptions);
    if (exempt && !*exempt) {
        auto index = read_policy_index(config_.run_dir);
        if (!index)
            return failed(OpenFailure::Enforcement, index.error());
        index_ = std::move(index).value();
        exempt = exempt_by(index_);
    }
    if (!exempt)
        return failed(OpenFailure::Enforcement, exempt.error());
    if (*exempt) {
        result_.exempt = true;
        return done();
    }
    user_only_ = req_.user_only || listed_service(config_.user_only_services, req_.service);
    if (user_only_)
        return std::nullopt;
    // rhost=kernel found no address: a login session would be placed by an
    // address nobody vouches for. It fails as fail= says; the exempt (an
    // administrator at the console) and the user layer (by uid, no address)
    // are not held to it.
    if (rhost_failure_)
        return failed(OpenFailure::Enforcement, *rhost_failure_);
    auto policy = login_policy(index_, login_);
    if (!policy)
        return failed(OpenFailure::Refused,
                      Error::msg("refuse login of", login_.user, "no policy claims it and unmatched = \"deny\""));
    policy_ = *policy;
    return std::nullopt;
}

// Opens the maps this open touches, and no others (the user layer's, and
// the session's unless this is a user-only session; every write also moves
// the generation on), and arms the user layer. A revoked user (authctl
// revoke --user) stays cut off: no new login, and no cron job or user
// manager either, until the revocation is lifted. An entry that cannot be
// read refuses like any enforcement failure.
std::optional<OpenOutcome> LoginOpening::arm_user()
{
    auto maps = user_only_
                    ? PinnedMaps::open(config_.pin_dir, {MapId::PolicyNames, MapId::Users, MapId::Generation})
                    : PinnedMaps::open(config_.pin_dir, {MapId::PolicyNames, MapId::Users, MapId::Sessions,
                                                         MapId::SessionStats, MapId::SessionLevels, MapId::Generation});
    if (!maps)
        return failed(OpenFailure::Enforcement, explained(maps.error(), login_.user, config_));
    maps_.emplace(std::move(maps).value());
    auto existing = maps_->lookup_user(account_.uid);
    if (!existing)
        return failed(OpenFailure::Enforcement, existing.error());
    if (*existing && ((*existing)->flags & AW_USER_REVOKED))
        return failed(OpenFailure::Refused,
                      Error::msg("refuse login of", login_.user,
                                 "the user is revoked (authctl revoke --user " + login_.user + " --undo lifts it)"));
    auto armed = arm_user_layer(*maps_, index_, login_, account_.uid, *existing, config_);
    if (!armed)
        return failed(OpenFailure::Enforcement, armed.error());
    result_.user_policy = *armed;
    if (user_only_) {
        result_.user_only = true;
        return done();
    }
    if (auto st = check_in_force(*maps_, policy_.name, policy_.id); !st)
        return failed(OpenFailure::Enforcement, st.error());
    return std::nullopt;
}

// Where the leader is now. A login from inside a session (su, sudo -i, a
// nested sshd) stays where it is: moving it to a cgroup of its own would let
// a session's user leave their policy by logging in again.
std::optional<OpenOutcome> LoginOpening::find_origin()
{
    auto mount = find_cgroup2_mount(config_.enforcement_roots);
    if (!mount)
        return failed(OpenFailure::Enforcement, explained(mount.error(), login_.user, config_));
    mount_ = std::move(mount).value();
    auto origin = process_cgroup(req_.leader);
    if (!origin)
        return failed(OpenFailure::Enforcement, origin.error());
    origin_ = *origin;
    origin_on_disk_ = on_disk(mount_, origin_);
    auto enclosing = enclosing_session(*maps_, mount_, origin_on_disk_);
    if (!enclosing)
        return failed(OpenFailure::Enforcement, enclosing.error());
    if (!*enclosing)
        return std::nullopt;
    result_.enclosing_session = *enclosing;
    result_.notes.push_back("login of " + login_.user + " inside session " + std::to_string(**enclosing) +
                            ": no session of its own, the enclosing session's policy stays in force");
    return done();
}

SessionRecord LoginOpening::login_record() const
{
    SessionRecord rec;
    rec.user = account_.name;
    rec.uid = account_.uid;
    rec.service = req_.service;
    if (login_.rhost)
        rec.rhost = login_.rhost->str();
    rec.tty = req_.tty;
    rec.leader_pid = req_.leader;
    rec.policy = policy_.name;
    rec.policy_id = policy_.id;
    rec.max_duration_s = policy_.max_duration_s;
    rec.origin_cgroup = origin_on_disk_.string();
    rec.auth_correlation = auth_correlation_.value.value_or("");
    rec.auth_claims = auth_claims_.value.value_or("");
    return rec;
}

// systemd moves the leader when it starts the scope: the entry goes in
// right after, before open_session returns — no code of the user runs
// before that (the login service forks the user's shell later).
Status LoginOpening::make_own_scope(SessionRecord& rec)
{
    rec.unit = "authwall-" + rec.user + "-" + random_hex(6) + ".scope";
    if (auto st = extras_.start_transient_scope(rec.unit, kSessionSlice, req_.leader,
                                                "authwall session of " + rec.user + " (" + req_.service + ")");
        !st) {
        rec.unit.clear(); // not made: nothing to stop
        return st;
    }
    auto now_in = process_cgroup(req_.leader);
    if (!now_in)
        return now_in.error();
    rec.cgroup = on_disk(mount_, *now_in).string();
    if (fs::path(rec.cgroup).filename() != rec.unit)
        return Error::msg("start", rec.unit, "the leader is in " + rec.cgroup + " instead");
    return {};
}

// The login's cgroup, then the session through the service (entry, the
// leader moved in for a directory of ours, record, mirror, event); the
// cgroup is undone if that fails. logind's scope is logind's: never stopped
// here, the leader stays in it.
OpenOutcome LoginOpening::open_cgroup()
{
    SessionRecord rec = login_record();
    LoginCgroup how = LoginCgroup::Directory;
    if (systemd_is_init())
        how = is_logind_scope(origin_, rec.uid, req_.logind_session) ? LoginCgroup::Logind : LoginCgroup::OwnScope;
    auto undo = [&](Error e) {
        if (how == LoginCgroup::OwnScope && !rec.unit.empty()) {
            cgroup_move_pid(rec.origin_cgroup, req_.leader).ok();
            extras_.stop_unit(rec.unit).ok(); // the leader is back where it came from, or the login ends anyway
        } else if (how == LoginCgroup::Directory && !rec.cgroup.empty()) {
            ::rmdir(rec.cgroup.c_str());
        }
        return failed(OpenFailure::Enforcement, std::move(e));
    };
    if (how == LoginCgroup::Logind) {
        rec.cgroup = rec.origin_cgroup;
        rec.unit = fs::path(rec.cgroup).filename().string();
    } else if (how == LoginCgroup::Directory) {
        fs::path parent = session_parent(config_, mount_);
        if (auto st = cgroup_create(parent); !st)
            return undo(st.error());
        fs::path dir = parent / (rec.user + "-" + random_hex(6));
        if (auto st = cgroup_create(dir); !st)
            return undo(st.error());
        rec.cgroup = dir.string();
    } else if (auto st = make_own_scope(rec); !st) {
        return undo(st.error());
    }
    auto id = cgroup_id(rec.cgroup);
    if (!id)
        return undo(id.error());
    auto level = cgroup_level(mount_, rec.cgroup);
    if (!level)
        return undo(level.error());
    rec.id = *id;
    rec.correlation = random_hex(16);

    OpenSpec spec;
    spec.record = rec;
    spec.level = *level;
    spec.rhost = login_.rhost;
    if (how == LoginCgroup::Directory) {
        // The entry goes in before the leader moves, so its first packet in
        // the new cgroup is already enforced.
        spec.place = [&](std::string&) { return cgroup_move_pid(rec.cgroup, req_.leader); };
        spec.unplace = [&] { cgroup_move_pid(rec.origin_cgroup, req_.leader).ok(); };
    }
    // With the mirror on, nft rules may rely on the sets (a gateway forwards
    // only addresses in session_addrs): a session missing there is refused.
    spec.mirror_required = true;
    spec.detail = how == LoginCgroup::Logind ? "logind " + rec.unit : "";
    PinnedSessionStore store(&*maps_, config_.run_dir, config_.nft_mirror, extras_);
    auto opened = SessionService(store, events_).open(std::move(spec));
    if (!opened)
        return undo(opened.error());
    result_.record = std::move(opened).value();
    result_.cgroup_mount = mount_;
    return done();
}

} // namespace

OpenOutcome open_login_session(const OpenRequest& req, const Config& config, RhostMode rhost_mode, EventSink& events,
                               LoginExtras& extras)
{
    return LoginOpening(req, config, rhost_mode, events, extras).run();
}

namespace {

// The session a close is about: the one open made in this process (the
// hint), else the caller's own cgroup's, else the user's session led by the
// caller. Found otherwise than by the hint, the session must be the user's:
// the account's own spelling, as open recorded it (the database is read
// only then), so a recycled pid never closes someone else's session.
std::optional<SessionRecord> session_to_close(const CloseHint& hint, pid_t caller, const std::string& typed_user,
                                              const Config& config, const CgroupMount& mount)
{
    if (hint.session)
        if (auto r = read_record(config.run_dir, *hint.session))
            return *r;
    std::string user = typed_user;
    if (auto account = lookup_account(typed_user))
        user = account->name;
    if (auto own = process_cgroup(caller))
        if (auto id = cgroup_id(on_disk(mount, *own)))
            if (auto r = read_record(config.run_dir, *id); r && r->user == user)
                return *r;
    std::optional<SessionRecord> found;
    if (auto all = list_records(config.run_dir))
        for (const auto& r : *all)
            if (r.leader_pid == caller && r.kind == SessionKind::Login && r.user == user)
                found = r;
    return found;
}

// Empties a login's cgroup for close. systemd owns a scope: the caller may
// be in it (the login service's process that opened the session), then
// everything else is killed and systemd collects the scope when the caller
// exits; from any other process the unit is stopped. A directory of ours:
// the caller moves back out, what is left is killed, the tree removed; a
// caller that cannot move out leaves it revoked for cgroupd to reap.
Emptied empty_login_cgroup(const SessionRecord& rec, pid_t caller, const CgroupMount& mount, LoginExtras& extras,
                           CloseResult& result)
{
    const fs::path cgroup = rec.cgroup;
    auto own = process_cgroup(caller);
    const bool caller_inside = own && on_disk(mount, *own) == cgroup;
    if (!rec.unit.empty()) {
        if (caller_inside) {
            result.processes_killed = cgroup_populated(cgroup);
            result.cgroup_removed = cgroup_kill_except(cgroup, caller);
        } else {
            result.processes_killed = is_cgroup2_dir(cgroup) && cgroup_populated(cgroup);
            if (auto st = extras.stop_unit(rec.unit); !st)
                result.notes.push_back(st.error().message());
            else
                result.cgroup_removed = true;
        }
        return result.cgroup_removed ? Emptied::Gone : Emptied::Remains;
    }
    if (caller_inside) {
        fs::path back = !rec.origin_cgroup.empty() && is_cgroup2_dir(rec.origin_cgroup) ? fs::path(rec.origin_cgroup)
                                                                                        : mount.mount_point;
        if (auto st = cgroup_move_pid(back, caller); !st) {
            result.notes.push_back(st.error().message()); // left revoked: cgroupd reaps it with the login
            return Emptied::Remains;
        }
    }
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
    return result.cgroup_removed ? Emptied::Gone : Emptied::Remains;
}

} // namespace

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
    auto rec = session_to_close(hint, caller, typed_user, config, *mount);
    if (!rec)
        return result; // nothing to close: already closed, or never opened

    // Without the maps (the data plane was uninstalled) there is nothing to
    // revoke; the cgroup and the record still go.
    auto maps = PinnedMaps::open(config.pin_dir, {MapId::Sessions, MapId::SessionStats, MapId::Generation});
    PinnedSessionStore store(maps ? &*maps : nullptr, config.run_dir, config.nft_mirror, extras);
    EndSpec end{"close", "", [&](std::string& detail) {
                    Emptied e = empty_login_cgroup(*rec, caller, *mount, extras, result);
                    if (result.processes_killed)
                        detail = "left-over processes killed";
                    return e;
                }};
    auto ended = SessionService(store, events).end(*rec, end);
    if (!ended)
        return ended.error();
    for (auto& w : ended->warnings)
        result.notes.push_back(std::move(w));
    result.closed = rec;
    return result;
}

} // namespace authwall
