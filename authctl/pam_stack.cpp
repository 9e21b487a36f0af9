// SPDX-License-Identifier: Apache-2.0
#include "authctl/pam_stack.h"

#include <fstream>
#include <set>
#include <sstream>

namespace authwall {

namespace fs = std::filesystem;

namespace {

std::vector<std::string> fields(const std::string& text)
{
    // Bracketed controls ("[success=ok default=die]") are one field.
    std::vector<std::string> out;
    size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && isspace(static_cast<unsigned char>(text[i])))
            ++i;
        if (i >= text.size())
            break;
        size_t start = i;
        if (text[i] == '[') {
            size_t close = text.find(']', i);
            i = close == std::string::npos ? text.size() : close + 1;
        } else {
            while (i < text.size() && !isspace(static_cast<unsigned char>(text[i])))
                ++i;
        }
        out.push_back(text.substr(start, i - start));
    }
    return out;
}

Status expand(const fs::path& pam_dir, const fs::path& file, std::vector<PamLine>& out, std::set<std::string>& seen,
              int depth)
{
    if (depth > 16)
        return Error::msg("read PAM stack", file.string(), "includes nest deeper than 16 (a loop?)");
    if (!seen.insert(file.string()).second)
        return {}; // included twice: libpam would read it again, but its lines are already listed
    std::ifstream in(file);
    if (!in)
        return Error::sys("read PAM stack", file.string(), errno);
    std::string raw;
    unsigned number = 0;
    std::string pending;
    while (std::getline(in, raw)) {
        ++number;
        if (!raw.empty() && raw.back() == '\\') { // continuation
            pending += raw.substr(0, raw.size() - 1) + " ";
            continue;
        }
        std::string text = pending + raw;
        pending.clear();
        if (auto hash = text.find('#'); hash != std::string::npos)
            text = text.substr(0, hash);
        auto f = fields(text);
        if (f.empty())
            continue;
        if (f[0] == "@include") {
            if (f.size() > 1)
                if (auto st = expand(pam_dir, pam_dir / f[1], out, seen, depth + 1); !st)
                    return st;
            continue;
        }
        if (f.size() < 3)
            continue;
        PamLine line{file.string(), number, f[0], f[1], f[2], false};
        if (!line.type.empty() && line.type[0] == '-') {
            line.dash = true;
            line.type = line.type.substr(1);
        }
        if (line.type != "session")
            continue;
        if (line.control == "include" || line.control == "substack") {
            if (auto st = expand(pam_dir, pam_dir / line.module, out, seen, depth + 1); !st)
                return st;
            continue;
        }
        out.push_back(line);
    }
    return {};
}

bool is_module(const PamLine& l, const std::string& name)
{
    return fs::path(l.module).filename() == name;
}

} // namespace

Result<std::vector<PamLine>> pam_session_stack(const fs::path& pam_dir, const std::string& service,
                                               const fs::path& vendor_dir)
{
    std::vector<PamLine> out;
    std::set<std::string> seen;
    fs::path file = pam_dir / service;
    std::error_code ec;
    if (!fs::exists(file, ec) && !vendor_dir.empty() && fs::exists(vendor_dir / service, ec))
        file = vendor_dir / service;
    if (auto st = expand(pam_dir, file, out, seen, 0); !st)
        return st.error();
    return out;
}

std::vector<Finding> check_pam_stack(const std::vector<PamLine>& stack)
{
    std::vector<Finding> out;
    auto where = [](const PamLine& l) { return l.file + ":" + std::to_string(l.line); };
    const PamLine* authwall = nullptr;
    const PamLine* systemd = nullptr;
    size_t authwall_at = 0, systemd_at = 0;
    for (size_t i = 0; i < stack.size(); ++i) {
        if (is_module(stack[i], "pam_authwall.so") && !authwall) {
            authwall = &stack[i];
            authwall_at = i;
        }
        if (is_module(stack[i], "pam_systemd.so") && !systemd) {
            systemd = &stack[i];
            systemd_at = i;
        }
    }
    if (!authwall) {
        out.push_back({Finding::Level::Error, "pam_authwall.so is not in the session stack: logins are not enforced"});
        return out;
    }
    out.push_back({Finding::Level::Ok, "pam_authwall.so is a session module (" + where(*authwall) + ")"});
    const std::string& c = authwall->control;
    if (c == "required" || c == "requisite") {
        out.push_back({Finding::Level::Ok, "control '" + c + "' fails the login when enforcement fails"});
    } else if (c == "optional") {
        out.push_back({Finding::Level::Error, "control 'optional' (" + where(*authwall) +
                                                  ") lets a login through when enforcement fails: use 'required'"});
    } else if (c == "sufficient") {
        out.push_back(
            {Finding::Level::Error, "control 'sufficient' (" + where(*authwall) +
                                        ") skips the rest of the stack and ignores failures: use 'required'"});
    } else if (!c.empty() && c[0] == '[') {
        bool dies = c.find("default=die") != std::string::npos || c.find("default=bad") != std::string::npos;
        out.push_back({dies ? Finding::Level::Warning : Finding::Level::Error,
                       "control '" + c + "' (" + where(*authwall) + ")" +
                           (dies ? ": check that every failure maps to bad or die" : ": failures may be ignored")});
    } else {
        out.push_back({Finding::Level::Warning, "unusual control '" + c + "' (" + where(*authwall) + ")"});
    }
    if (authwall->dash)
        out.push_back({Finding::Level::Error,
                       "'-session' (" + where(*authwall) + ") skips pam_authwall silently if the module is missing"});
    if (systemd && systemd_at > authwall_at)
        out.push_back({Finding::Level::Error, "pam_authwall.so (" + where(*authwall) +
                                                  ") runs before pam_systemd.so (" + where(*systemd) +
                                                  "): logind would move the session after authwall"});
    else if (systemd)
        out.push_back({Finding::Level::Ok, "runs after pam_systemd.so (" + where(*systemd) + ")"});
    // A line before it that ends the stack on success would skip it.
    for (size_t i = 0; i < authwall_at; ++i)
        if (stack[i].control == "sufficient" || stack[i].control.find("done") != std::string::npos)
            out.push_back({Finding::Level::Warning, "'" + stack[i].control + "' at " + where(stack[i]) +
                                                        " can end the stack before pam_authwall.so"});
    return out;
}

} // namespace authwall
