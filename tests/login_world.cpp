// SPDX-License-Identifier: Apache-2.0
#include "tests/login_world.h"

#include "core/dataplane/datapath.h"
#include "tests/support.h"

#include <boost/test/unit_test.hpp>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

namespace authwall::test {

namespace fs = std::filesystem;

namespace {
void write(const fs::path& path, const std::string& text, unsigned mode = 0644)
{
    std::ofstream(path) << text;
    chmod(path.c_str(), mode);
}
} // namespace

LoginWorld::LoginWorld(const std::string& policies, const std::string& pam_args, const std::string& extra_config)
{
    // A failed check throws out of the constructor, and no destructor runs
    // for a half-made object: clean up here, then let the failure through.
    try {
        setup(policies, pam_args, extra_config);
    } catch (...) {
        cleanup();
        throw;
    }
}

void LoginWorld::setup(const std::string& policies, const std::string& pam_args, const std::string& extra_config)
{
    auto mount = find_cgroup2_mount();
    BOOST_REQUIRE(mount.ok());
    std::string suffix = unique_suffix();
    root_ = mount->mount_point / ("authwall-login-" + suffix);
    pin_dir_ = "/sys/fs/bpf/authwall-login-" + suffix;
    user_ = "awt" + suffix;
    service_ = "authwall-test";
    char tmpl[] = "/tmp/authwall-login-XXXXXX";
    BOOST_REQUIRE(mkdtemp(tmpl));
    dir_ = tmpl;
    chmod(dir_.c_str(), 0755); // sshd and the test user traverse it
    run_dir_ = dir_ / "run";
    config_ = dir_ / "authwall.toml";
    fs::create_directories(dir_ / "policies.d");
    fs::create_directories(dir_ / "pam.d");
    write(dir_ / "policies.d" / "test.toml", policies);
    write(config_, "pin_dir = \"" + pin_dir_.string() + "\"\nrun_dir = \"" + run_dir_.string() + "\"\npolicy_dir = \"" +
                       (dir_ / "policies.d").string() + "\"\nenforcement_roots = [\"" + root_.string() +
                       "\"]\nevent_log = \"" + (dir_ / "events.jsonl").string() + "\"\n" + extra_config);
    set_pam_args(pam_args);
    write(dir_ / "pam.d" / "other", "session required pam_deny.so\n");

    sh("userdel -r " + user_ + " >/dev/null 2>&1");
    BOOST_REQUIRE_EQUAL(sh("useradd -M -d " + dir_.string() + " -s /bin/bash " + user_), 0);
    BOOST_REQUIRE(cgroup_create(root_).ok());
    std::string out =
        sh_output(std::string(AUTHWALL_LOADER_BIN) + " --config " + config_.string() + " --once 2>&1; echo rc=$?");
    BOOST_TEST_MESSAGE(out);
    BOOST_REQUIRE_MESSAGE(out.find("rc=0") != std::string::npos, "loader --once failed: " + out);
}

LoginWorld::~LoginWorld()
{
    cleanup();
}

void LoginWorld::cleanup()
{
    // Whatever still runs below the root (a failed test) is killed with it.
    std::error_code ec;
    if (!root_.empty() && is_cgroup2_dir(root_))
        cgroup_kill(root_).ok();
    if (!pin_dir_.empty())
        uninstall_datapath(pin_dir_).ok();
    for (int i = 0; !root_.empty() && i < 100; ++i) {
        if (cgroup_remove_tree(root_).ok())
            break;
        usleep(20000);
    }
    if (!user_.empty())
        sh("userdel " + user_ + " >/dev/null 2>&1");
    if (!dir_.empty())
        fs::remove_all(dir_, ec);
}

PinnedMaps LoginWorld::maps() const
{
    auto m = PinnedMaps::open(pin_dir_);
    BOOST_REQUIRE(m.ok());
    return std::move(m).value();
}

void LoginWorld::set_pam_args(const std::string& pam_args)
{
    write(dir_ / "pam.d" / service_, "session required " + std::string(AUTHWALL_PAM_MODULE) +
                                         " config=" + config_.string() + " " + pam_args + "\n");
}

std::string LoginWorld::pam(const std::string& args) const
{
    std::string cmd = std::string(AUTHWALL_PAM_HARNESS) + " " + (dir_ / "pam.d").string() + " " + service_ + " " + args;
    std::string out = sh_output(cmd + " 2>&1");
    BOOST_TEST_MESSAGE("pam_harness " << args << ":\n" << out);
    return out;
}

std::vector<SessionRecord> LoginWorld::records() const
{
    auto r = list_records(run_dir_);
    BOOST_REQUIRE(r.ok());
    return *r;
}

std::vector<std::string> LoginWorld::events() const
{
    std::vector<std::string> out;
    std::ifstream in(dir_ / "events.jsonl");
    for (std::string line; std::getline(in, line);)
        out.push_back(line);
    return out;
}

std::vector<fs::path> LoginWorld::session_cgroups() const
{
    std::vector<fs::path> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(root_ / "authwall", ec))
        if (e.is_directory())
            out.push_back(e.path());
    return out;
}

void LoginWorld::set_password(const std::string& password)
{
    BOOST_REQUIRE_EQUAL(sh("echo '" + user_ + ":" + password + "' | chpasswd"), 0);
}

Background::Background(const std::string& command)
{
    pid_ = fork();
    if (pid_ == 0) {
        setpgid(0, 0);
        execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
        _exit(127);
    }
}

Background::~Background()
{
    if (pid_ <= 0 || reaped_)
        return;
    kill(-pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
}

bool Background::exited(int* status)
{
    if (reaped_ || pid_ <= 0)
        return true;
    // Look without reaping: while the exited leader is a zombie its pid,
    // and so its group id, cannot be reused; stragglers of the group are
    // killed, then the leader is reaped.
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid != pid_)
        return false;
    kill(-pid_, SIGKILL);
    waitpid(pid_, status, 0);
    reaped_ = true;
    return true;
}

Cgroupd::Cgroupd(const LoginWorld& w, const std::string& args)
    : proc_(std::string("exec ") + AUTHWALL_CGROUPD_BIN + " --config " + w.config().string() + " " + args + " 2>>" +
            (w.dir() / "cgroupd.log").string()),
      log_(w.dir() / "cgroupd.log")
{
    BOOST_REQUIRE(wait_until([&] { return log().find("cgroupd: started") != std::string::npos; }, 5000));
}

std::string Cgroupd::log() const
{
    return sh_output("cat " + log_.string() + " 2>/dev/null");
}

namespace {
// A FIFO opened read-write: the harness's open of it for reading returns at
// once, and it sees a line only when the test writes one.
Fd make_hold_fifo(const fs::path& path)
{
    fs::remove(path);
    BOOST_REQUIRE_EQUAL(mkfifo(path.c_str(), 0600), 0);
    Fd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    BOOST_REQUIRE(fd);
    return fd;
}
} // namespace

HeldSession::HeldSession(const LoginWorld& w, const std::string& extra, const std::string& service)
    : out_(w.dir() / ("held-" + std::to_string(counter_) + ".out")),
      in_(w.dir() / ("held-" + std::to_string(counter_++) + ".in")), hold_(make_hold_fifo(in_)),
      proc_("exec " + std::string(AUTHWALL_PAM_HARNESS) + " " + (w.dir() / "pam.d").string() + " " +
            (service.empty() ? w.service() : service) + " " + w.user() + " --hold " + extra + " > " + out_.string() +
            " 2>&1 < " + in_.string())
{
    BOOST_REQUIRE_MESSAGE(wait_until([&] { return output().find("ready") != std::string::npos; }, 5000),
                          "the held session did not open: " + output());
}

std::string HeldSession::close()
{
    BOOST_REQUIRE_EQUAL(::write(hold_.get(), "\n", 1), 1);
    int status = 0;
    BOOST_REQUIRE_MESSAGE(wait_until([&] { return proc_.exited(&status); }, 5000),
                          "the harness did not exit after close: " + output());
    return output();
}

std::string HeldSession::output() const
{
    return sh_output("cat " + out_.string());
}

} // namespace authwall::test
