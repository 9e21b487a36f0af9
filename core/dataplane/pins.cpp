// SPDX-License-Identifier: Apache-2.0
#include "core/dataplane/pins.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include <charconv>
#include <cstdlib>

namespace authwall {

std::optional<LinkPin> parse_link_pin_name(const std::filesystem::path& path)
{
    std::string name = path.filename().string();
    auto at = name.find('@');
    if (at == std::string::npos)
        return std::nullopt;
    LinkPin pin{path, name.substr(0, at), 0};
    std::string_view id = std::string_view(name).substr(at + 1);
    auto [ptr, ec] = std::from_chars(id.data(), id.data() + id.size(), pin.cgroup_id);
    if (ec != std::errc() || ptr != id.data() + id.size())
        return std::nullopt;
    return pin;
}

bool is_bpffs(const std::filesystem::path& path)
{
    struct statfs fs {};
    return ::statfs(path.c_str(), &fs) == 0 && fs.f_type == BPF_FS_MAGIC;
}

Status prepare_pin_dir(const std::filesystem::path& pin_dir)
{
    std::error_code ec;
    // The nearest existing ancestor decides which filesystem the pins land on.
    std::filesystem::path probe = pin_dir;
    while (!std::filesystem::exists(probe, ec) && probe.has_parent_path() && probe != probe.parent_path())
        probe = probe.parent_path();
    if (!is_bpffs(probe)) {
        if (probe == "/sys/fs/bpf") {
            if (::mount("bpf", "/sys/fs/bpf", "bpf", 0, "mode=0700") != 0)
                return Error::sys("mount bpffs on", "/sys/fs/bpf", errno,
                                  "run as root, or mount it yourself: mount -t bpf bpf /sys/fs/bpf");
        } else {
            return Error::msg("use pin directory", pin_dir.string(),
                              "it is not on a bpf filesystem; put it under /sys/fs/bpf or mount one: "
                              "mount -t bpf bpf " +
                                  probe.string());
        }
    }
    for (auto sub : {pin_dir, pin_dir / "maps", pin_dir / "links"}) {
        if (::mkdir(sub.c_str(), 0700) != 0 && errno != EEXIST)
            return Error::sys("create pin directory", sub.string(), errno);
        struct stat st {};
        if (::lstat(sub.c_str(), &st) != 0)
            return Error::sys("stat", sub.string(), errno);
        if (!S_ISDIR(st.st_mode))
            return Error::msg("use pin directory", sub.string(), "exists and is not a directory");
        if (st.st_uid != 0)
            return Error::msg("use pin directory", sub.string(),
                              "is owned by uid " + std::to_string(st.st_uid) + ", not root; remove it");
        if (st.st_mode & (S_IWGRP | S_IWOTH))
            return Error::msg("use pin directory", sub.string(), "is writable by group or others (chmod 0700 it)");
    }
    return {};
}

} // namespace authwall
