// SPDX-License-Identifier: Apache-2.0
// What every authctl command shares: the settings (configuration file, then
// flags), error output, and the table printer.
#pragma once

#include "core/policy/config.h"
#include "core/base/fd.h"
#include "core/base/result.h"
#include "core/dataplane/maps.h"
#include "core/session/service.h"

#include <sys/types.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace authctl {

struct Context {
    authwall::Config config;
    bool json = false;
};

int fail(const authwall::Error& e); // prints "authctl: ...", returns 1
void print_table(const std::vector<std::vector<std::string>>& rows);
std::string bytes_text(uint64_t bytes);
std::string age_text(uint64_t opened_ns);
std::string user_name(uint32_t uid);
// Running processes whose comm (/proc/PID/comm, 15 characters at most)
// satisfies `match`, in /proc order.
std::vector<pid_t> processes_with_comm(const std::function<bool(const std::string&)>& match);

// The session service over the pinned maps, with authctl's events: what
// every command that opens, revokes or ends a session goes through.
class SessionAccess {
  public:
    static authwall::Result<std::unique_ptr<SessionAccess>> open(const Context& ctx);
    authwall::PinnedMaps& maps() { return maps_; }
    authwall::SessionService& service() { return service_; }
    // Prints the warnings the service collected ("authctl: warning: ...").
    void print_warnings();
    std::vector<std::string> warnings;

  private:
    SessionAccess(const Context& ctx, authwall::PinnedMaps maps);
    authwall::PinnedMaps maps_;
    authwall::PinnedSessionStore store_;
    authwall::JournalSink events_;
    authwall::SessionService service_;
};

int cmd_show(const Context& ctx, uint64_t id);
// authctl policy show [NAME] --resolved: from the files, bases folded in.
int cmd_policy_show_resolved(const Context& ctx, const std::string& name, bool json);
int cmd_revoke(const Context& ctx, uint64_t id, bool kill);
// Revokes the user layer of `name` (every process of theirs, wherever it
// runs, and their future logins) and each of their sessions; `undo` lifts it.
int cmd_revoke_user(const Context& ctx, const std::string& name, bool kill, bool undo);
int cmd_status(const Context& ctx);
// What authctl watch shows: every event, or only those of a user (name or
// uid), a policy, and these event names.
struct WatchFilter {
    std::string user, policy;
    std::vector<std::string> events;
};
int cmd_watch(const Context& ctx, bool from_start, long count, const WatchFilter& filter);
int cmd_nft_verify(const Context& ctx);
int cmd_metrics(const Context& ctx, const std::string& format);
int cmd_doctor(const Context& ctx, const std::string& service, const std::string& pam_dir);

} // namespace authctl
