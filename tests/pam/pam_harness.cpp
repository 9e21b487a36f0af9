// SPDX-License-Identifier: Apache-2.0
// Drives a PAM stack the way a login service does, against a service file
// in a private directory (pam_start_confdir), and prints what happened:
//   open: <code name> / close: <code name> / log: <what the module logged>
// It interposes vsyslog (the executable exports it), so the exact messages
// of pam_syslog() reach stdout instead of the host's syslog.
//
//   pam_harness CONFDIR SERVICE USER [--rhost R] [--connect ADDRESS PORT]
//               [--exec CMD] [--no-close] [--close-in-child] [--hold]
// --connect holds a TCP connection to ADDRESS:PORT from before open to the
// end, as a network login service holds its client's (rhost=kernel);
// --exec runs CMD with sh inside the session (after open, before close);
// --close-in-child closes from a forked child with a fresh PAM handle (as
// when close runs in another process than open); --hold prints "ready" and
// waits for a line on stdin before closing.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <security/pam_appl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

extern "C" __attribute__((visibility("default"))) void vsyslog(int priority, const char* format, va_list args)
{
    char buf[4096];
    vsnprintf(buf, sizeof(buf), format, args);
    std::printf("log[%d]: %s\n", priority & 7, buf);
    std::fflush(stdout);
}

extern "C" __attribute__((visibility("default"))) void syslog(int priority, const char* format, ...)
{
    va_list args;
    va_start(args, format);
    vsyslog(priority, format, args);
    va_end(args);
}

// A fortified libpam calls the _chk variants.
extern "C" __attribute__((visibility("default"))) void __vsyslog_chk(int priority, int, const char* format,
                                                                     va_list args)
{
    vsyslog(priority, format, args);
}

extern "C" __attribute__((visibility("default"))) void __syslog_chk(int priority, int, const char* format, ...)
{
    va_list args;
    va_start(args, format);
    vsyslog(priority, format, args);
    va_end(args);
}

namespace {

const char* code_name(int code)
{
    switch (code) {
    case PAM_SUCCESS:
        return "PAM_SUCCESS";
    case PAM_SESSION_ERR:
        return "PAM_SESSION_ERR";
    case PAM_SERVICE_ERR:
        return "PAM_SERVICE_ERR";
    case PAM_USER_UNKNOWN:
        return "PAM_USER_UNKNOWN";
    case PAM_PERM_DENIED:
        return "PAM_PERM_DENIED";
    case PAM_SYSTEM_ERR:
        return "PAM_SYSTEM_ERR";
    case PAM_BUF_ERR:
        return "PAM_BUF_ERR";
    default:
        return "PAM_OTHER";
    }
}

int conversation(int n, const pam_message** msg, pam_response** resp, void*)
{
    for (int i = 0; i < n; ++i)
        std::printf("conv: %s\n", msg[i]->msg ? msg[i]->msg : "");
    *resp = nullptr;
    return PAM_SUCCESS;
}

pam_handle_t* start(const char* confdir, const char* service, const char* user, const std::string& rhost)
{
    static pam_conv conv{conversation, nullptr};
    pam_handle_t* pamh = nullptr;
    int rc = pam_start_confdir(service, user, &conv, confdir, &pamh);
    if (rc != PAM_SUCCESS) {
        std::printf("start: %s\n", code_name(rc));
        std::exit(3);
    }
    if (!rhost.empty())
        pam_set_item(pamh, PAM_RHOST, rhost.c_str());
    pam_set_item(pamh, PAM_TTY, "ssh");
    return pamh;
}

// A connected TCP socket to address:port (IPv4 or IPv6), or -1.
int connect_tcp(const std::string& address, const char* port)
{
    sockaddr_in6 v6{};
    sockaddr_in v4{};
    int family = address.find(':') != std::string::npos ? AF_INET6 : AF_INET;
    int s = ::socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        return -1;
    int rc = -1;
    if (family == AF_INET6 && inet_pton(AF_INET6, address.c_str(), &v6.sin6_addr) == 1) {
        v6.sin6_family = AF_INET6;
        v6.sin6_port = htons(static_cast<uint16_t>(std::atoi(port)));
        rc = ::connect(s, reinterpret_cast<sockaddr*>(&v6), sizeof(v6));
    } else if (family == AF_INET && inet_pton(AF_INET, address.c_str(), &v4.sin_addr) == 1) {
        v4.sin_family = AF_INET;
        v4.sin_port = htons(static_cast<uint16_t>(std::atoi(port)));
        rc = ::connect(s, reinterpret_cast<sockaddr*>(&v4), sizeof(v4));
    }
    if (rc != 0) {
        ::close(s);
        return -1;
    }
    return s;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 4) {
        std::fprintf(stderr,
                     "usage: pam_harness CONFDIR SERVICE USER [--rhost R] [--connect ADDRESS PORT] [--exec CMD] "
                     "[--no-close] [--close-in-child] [--hold]\n");
        return 2;
    }
    std::string rhost, exec;
    bool close = true, close_in_child = false, hold = false;
    for (int i = 4; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--rhost" && i + 1 < argc)
            rhost = argv[++i];
        else if (a == "--connect" && i + 2 < argc) {
            if (connect_tcp(argv[i + 1], argv[i + 2]) < 0) { // held until exit
                std::fprintf(stderr, "pam_harness: cannot connect to %s port %s\n", argv[i + 1], argv[i + 2]);
                return 3;
            }
            i += 2;
        } else if (a == "--exec" && i + 1 < argc)
            exec = argv[++i];
        else if (a == "--no-close")
            close = false;
        else if (a == "--close-in-child")
            close_in_child = true;
        else if (a == "--hold")
            hold = true;
        else {
            std::fprintf(stderr, "pam_harness: unknown argument %s\n", a.c_str());
            return 2;
        }
    }
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    pam_handle_t* pamh = start(argv[1], argv[2], argv[3], rhost);
    int rc = pam_open_session(pamh, 0);
    std::printf("open: %s\n", code_name(rc));
    if (rc == PAM_SUCCESS && !exec.empty()) {
        std::fflush(stdout);
        int status = std::system(exec.c_str());
        std::printf("exec: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    if (rc == PAM_SUCCESS && hold) {
        std::printf("ready\n");
        std::string line;
        std::getline(std::cin, line);
    }
    if (rc == PAM_SUCCESS && close) {
        if (close_in_child) {
            pid_t child = fork();
            if (child == 0) {
                pam_handle_t* other = start(argv[1], argv[2], argv[3], rhost);
                int crc = pam_close_session(other, 0);
                std::printf("close(child): %s\n", code_name(crc));
                pam_end(other, crc);
                std::fflush(stdout);
                _exit(0);
            }
            waitpid(child, nullptr, 0);
        } else {
            int crc = pam_close_session(pamh, 0);
            std::printf("close: %s\n", code_name(crc));
        }
    }
    pam_end(pamh, rc);
    return 0;
}
