// SPDX-License-Identifier: Apache-2.0
// Shared by the test binaries: the skip policy, throwaway kernel objects and
// running probes in child processes placed in a cgroup and a network
// namespace. Nothing here touches the host's own configuration.
#pragma once

#include "core/host/cgroup.h"
#include "core/dataplane/datapath.h"
#include "core/dataplane/maps.h"
#include "core/policy/policy_file.h"

#include <sys/types.h>

#include <filesystem>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

namespace authwall::test {

// AUTHWALL_REQUIRE_PRIVILEGED=1 (CI): an environment skip is a failure.
bool privileged_required();

// Why privileged tests cannot run here (empty when they can).
std::string privileged_unavailable_reason();

// For a test binary's main(): exits 77 (skip, reason printed) or 1 (when
// skips are failures) if privileged tests cannot run.
void require_privileged_or_exit(const char* binary);

// Runs `probe` in a forked child placed in `cgroup` (if not empty) and, when
// `netns` is set, in that named netns (/run/netns/NAME) or, with "new", a
// fresh one with lo up. Returns what the probe returned (an errno value or 0),
// or -1000 - signal if the child died.
int run_probe(const std::filesystem::path& cgroup, const std::string& netns, const std::function<int()>& probe);

// Who a probe runs as: real uid, effective uid, group. A setuid-root helper
// started by a user runs with real uid = the user's, effective uid = 0.
struct ProbeIdentity {
    uid_t ruid = 0;
    uid_t euid = 0;
    gid_t gid = 0;
};

// run_probe, with the probe's credentials switched to `who` after it was
// placed in `cgroup` (as root can, and as systemd does for a user's units).
int run_probe_as(const std::filesystem::path& cgroup, const ProbeIdentity& who, const std::function<int()>& probe,
                 const std::string& netns = "");

// Socket probes: 0 on success, else errno.
int tcp_connect(const std::string& address, uint16_t port, int timeout_ms = 2000);
// The same from a chosen local address (bound first; an error binding it is
// returned as is).
int tcp_connect_from(const std::string& source, const std::string& address, uint16_t port, int timeout_ms = 1500);
int udp_send(const std::string& address, uint16_t port);
int tcp_bind(const std::string& address, uint16_t port);
int open_socket(int family, int type, int protocol);

// Connects to `target`:port with a listener of its own on `listen_on`:port
// (for use inside a probe): 0, or the connect's errno; 10000 + errno when
// the listener itself could not be made.
int connect_with_listener(const std::string& listen_on, const std::string& target, uint16_t port);

// A TCP listener in the calling process (for use inside a probe).
int tcp_listen(const std::string& address, uint16_t port); // returns fd or -errno

// A forked process placed in `cgroup` (if not empty) and the named netns,
// listening on TCP `address`:port for each port until scope exit (killed).
// The constructor returns once every socket listens.
class Listeners {
  public:
    Listeners(const std::filesystem::path& cgroup, const std::string& netns, const std::string& address,
              std::initializer_list<uint16_t> ports);
    ~Listeners();
    Listeners(const Listeners&) = delete;
    Listeners& operator=(const Listeners&) = delete;

  private:
    pid_t pid_ = -1;
};

// Polls `done` every 10 ms until it holds or timeout_ms passed; returns
// whether it held.
bool wait_until(const std::function<bool()>& done, int timeout_ms);

// Runs a shell command; returns its exit status. Output goes to the test log.
int sh(const std::string& command);
std::string sh_output(const std::string& command);

// A private enforcement root (a throwaway cgroup under the cgroup2 mount),
// a private pin directory, the data plane installed there, and a policy set.
class Sandbox {
  public:
    explicit Sandbox(const std::string& policy_toml, Fallback fallback = {});
    ~Sandbox();
    Sandbox(const Sandbox&) = delete;
    Sandbox& operator=(const Sandbox&) = delete;

    const std::filesystem::path& root() const { return root_; }
    const std::filesystem::path& pin_dir() const { return pin_dir_; }
    const CgroupMount& mount() const { return mount_; }
    PinnedMaps& maps() { return *maps_; }
    const InstallReport& report() const { return report_; }

    // Creates root/name (and parents); returns the path.
    std::filesystem::path make_cgroup(const std::string& name);
    // Creates a cgroup and opens it as a session of `policy` (uid 4242)
    // through the session service.
    uint64_t open_session(const std::string& name, const std::string& policy,
                          std::optional<std::string> rhost = std::nullopt);
    uint64_t id_of(const std::filesystem::path& cgroup);
    void install_policies(const std::string& policy_toml, Fallback fallback = {});

  private:
    CgroupMount mount_;
    std::filesystem::path root_;
    std::filesystem::path pin_dir_;
    std::filesystem::path run_dir_; // the session records of open_session
    std::optional<PinnedMaps> maps_;
    InstallReport report_;
};

// Opens the existing cgroup `cgroup` as a session of `policy` (in force in
// `maps`; uid 4242, its record under `run_dir`) through the session service,
// as every test helper that needs a session does; returns its id.
uint64_t open_test_session(PinnedMaps& maps, const CgroupMount& mount, const std::filesystem::path& run_dir,
                           const std::filesystem::path& cgroup, const std::string& policy,
                           std::optional<std::string> rhost = std::nullopt);

// Compiles policy TOML text (fails the test on any diagnostic).
std::vector<Policy> parse_policies_or_fail(const std::string& toml);

// A named network namespace removed at scope exit.
class NetNs {
  public:
    explicit NetNs(const std::string& name);
    ~NetNs();
    NetNs(const NetNs&) = delete;
    NetNs& operator=(const NetNs&) = delete;
    const std::string& name() const { return name_; }
    int exec(const std::string& command) const; // ip netns exec NAME sh -c ...

  private:
    std::string name_;
};

// The calling process (and what it starts) in `ns` for the scope, then back
// in its own namespace: an nft table made meanwhile never touches the host.
class InNetns {
  public:
    explicit InNetns(const NetNs& ns);
    ~InNetns();
    InNetns(const InNetns&) = delete;
    InNetns& operator=(const InNetns&) = delete;

  private:
    int saved_ = -1;
};

// A veth pair joining two namespaces: `a_if` in `a` and `b_if` in `b`,
// each given its IPv4 address (CIDR) and brought up.
void link_netns(const NetNs& a, const std::string& a_if, const std::string& a_cidr, const NetNs& b,
                const std::string& b_if, const std::string& b_cidr);

std::string unique_suffix();

// A field of /proc/PID/status ("Seccomp", "CapEff", "NoNewPrivs"...), "" if
// the process or the field is not there.
std::string proc_status_field(pid_t pid, const std::string& field);

// Whether a daemon confined itself as authwall's daemons do after setup:
// seccomp filter mode, no_new_privs, and none of `dropped` (CAP_* numbers)
// left in its effective or bounding set.
bool is_confined(pid_t pid, std::initializer_list<int> dropped);

} // namespace authwall::test
