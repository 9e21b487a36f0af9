// SPDX-License-Identifier: Apache-2.0
// A complete, private authwall installation for login tests: a throwaway
// enforcement root, pin and run directories, a configuration and policies in
// a temporary directory, the data plane installed by the real loader, a PAM
// service file pointing at the build-tree module, and a throwaway user.
// Everything is removed in the destructor, even when a test fails.
#pragma once

#include "core/host/cgroup.h"
#include "core/base/fd.h"
#include "core/dataplane/maps.h"
#include "core/session/record.h"

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace authwall::test {

class LoginWorld {
  public:
    // `policies` is policy TOML; `pam_args` are appended to the module line.
    LoginWorld(const std::string& policies, const std::string& pam_args = "", const std::string& extra_config = "");
    ~LoginWorld();
    LoginWorld(const LoginWorld&) = delete;
    LoginWorld& operator=(const LoginWorld&) = delete;

    const std::filesystem::path& dir() const { return dir_; }
    const std::filesystem::path& root() const { return root_; }
    const std::filesystem::path& pin_dir() const { return pin_dir_; }
    const std::filesystem::path& run_dir() const { return run_dir_; }
    const std::filesystem::path& config() const { return config_; }
    const std::string& user() const { return user_; }
    const std::string& service() const { return service_; }
    PinnedMaps maps() const;

    // Runs the harness; returns its stdout.
    std::string pam(const std::string& args) const;
    // Rewrites the PAM service file with another module line tail.
    void set_pam_args(const std::string& pam_args);
    std::vector<SessionRecord> records() const;
    std::vector<std::string> events() const; // lines of the event log
    // Session cgroups below <root>/authwall.
    std::vector<std::filesystem::path> session_cgroups() const;
    void set_password(const std::string& password);

  private:
    void setup(const std::string& policies, const std::string& pam_args, const std::string& extra_config);
    void cleanup();

    std::filesystem::path dir_, root_, pin_dir_, run_dir_, config_;
    std::string user_, service_;
};

// A process tree of one command (sh -c), started in the background in a
// process group of its own; killed with its group at scope exit.
class Background {
  public:
    explicit Background(const std::string& command);
    ~Background();
    Background(const Background&) = delete;
    Background& operator=(const Background&) = delete;
    pid_t pid() const { return pid_; }
    // Whether the command has exited; reaps it (status in `status`) and
    // kills what is left of its group at once, so the destructor never
    // signals a pid or group the kernel may have handed to someone else.
    bool exited(int* status = nullptr);

  private:
    pid_t pid_ = -1;
    bool reaped_ = false;
};

// authwall-cgroupd on the world's configuration (and `args`), until scope
// exit.
class Cgroupd {
  public:
    explicit Cgroupd(const LoginWorld& w, const std::string& args = "");
    std::string log() const;
    pid_t pid() const { return proc_.pid(); }

  private:
    Background proc_;
    std::filesystem::path log_;
};

// A session opened with the PAM harness (for `service`, by default the
// world's; its file must exist in the world's pam.d) and held open until
// close() or scope exit (or until its process is killed); the constructor
// returns once it is open.
class HeldSession {
  public:
    HeldSession(const LoginWorld& w, const std::string& extra = "", const std::string& service = "");
    std::string output() const;
    pid_t pid() const { return proc_.pid(); }
    bool exited(int* status = nullptr) { return proc_.exited(status); }
    // Logout: the harness runs pam_close_session and exits. Returns its
    // whole output.
    std::string close();

  private:
    static inline int counter_ = 0;
    std::filesystem::path out_, in_;
    Fd hold_; // the write end of the harness's stdin (a FIFO)
    Background proc_;
};

} // namespace authwall::test
