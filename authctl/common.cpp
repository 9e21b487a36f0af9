// SPDX-License-Identifier: Apache-2.0
#include "authctl/context.h"

#include <fmt/format.h>
#include <pwd.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>

namespace authctl {

int fail(const authwall::Error& e)
{
    std::cerr << "authctl: " << e.message() << "\n";
    return 1;
}

std::vector<pid_t> processes_with_comm(const std::function<bool(const std::string&)>& match)
{
    std::vector<pid_t> out;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
        const std::string pid = entry.path().filename().string();
        if (pid.empty() || !std::all_of(pid.begin(), pid.end(), [](char c) { return c >= '0' && c <= '9'; }))
            continue;
        std::ifstream in(entry.path() / "comm");
        std::string comm;
        if (std::getline(in, comm) && match(comm))
            out.push_back(static_cast<pid_t>(std::stol(pid)));
    }
    return out;
}

std::string user_name(uint32_t uid)
{
    passwd pw{};
    passwd* found = nullptr;
    char buf[1024];
    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &found) == 0 && found)
        return pw.pw_name;
    return std::to_string(uid);
}

std::string age_text(uint64_t opened_ns)
{
    timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t now_ns = static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(now.tv_nsec);
    uint64_t s = opened_ns && now_ns > opened_ns ? (now_ns - opened_ns) / 1'000'000'000ULL : 0;
    if (s < 120)
        return fmt::format("{}s", s);
    if (s < 7200)
        return fmt::format("{}m", s / 60);
    if (s < 172800)
        return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
    return fmt::format("{}d", s / 86400);
}

std::string bytes_text(uint64_t b)
{
    if (b < 10 * 1024)
        return fmt::format("{}B", b);
    if (b < 10 * 1024 * 1024)
        return fmt::format("{}K", b / 1024);
    if (b < 10ULL * 1024 * 1024 * 1024)
        return fmt::format("{}M", b / (1024 * 1024));
    return fmt::format("{}G", b / (1024ULL * 1024 * 1024));
}

// Columns sized to their content; the last column is cut to the terminal.
void print_table(const std::vector<std::vector<std::string>>& rows)
{
    if (rows.empty())
        return;
    std::vector<size_t> width(rows[0].size(), 0);
    for (const auto& r : rows)
        for (size_t i = 0; i < r.size() && i < width.size(); ++i)
            width[i] = std::max(width[i], r[i].size());
    size_t columns = 0;
    winsize ws{};
    if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0)
        columns = ws.ws_col;
    for (const auto& r : rows) {
        std::string line;
        for (size_t i = 0; i < r.size(); ++i)
            line += fmt::format("{:<{}}", r[i], i + 1 < r.size() ? width[i] + 2 : 0);
        if (columns && line.size() > columns)
            line = line.substr(0, columns);
        std::cout << line << "\n";
    }
}

} // namespace authctl
