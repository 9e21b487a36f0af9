// SPDX-License-Identifier: Apache-2.0
// cgroup v2 utilities: finding the hierarchy, ids, levels, moving processes.
#pragma once

#include "core/base/fd.h"
#include "core/base/result.h"

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace authwall {

struct CgroupMount {
    std::filesystem::path mount_point; // where cgroup2 is mounted, e.g. /sys/fs/cgroup/unified
    std::string root;                  // the mount's root inside the hierarchy ("/" unless bind-mounted)
};

// Finds the cgroup2 mount in mountinfo text (/proc/self/mountinfo format).
Result<CgroupMount> parse_cgroup2_mount(std::string_view mountinfo);
// Same, reading /proc/self/mountinfo.
Result<CgroupMount> find_cgroup2_mount();
// The cgroup2 mount holding the first of `enforcement_roots` (none: the
// usual places, /sys/fs/cgroup and /sys/fs/cgroup/unified), found without
// mountinfo when it is plain: the nearest mount root above the path
// (statx STATX_ATTR_MOUNT_ROOT) is cgroup2 and shows the hierarchy's root
// (cgroup id 1), so its root is "/". Anything else (a mount of a sub-tree
// or of a cgroup namespace, another filesystem) is read from mountinfo as
// find_cgroup2_mount() does. Reading mountinfo costs every login tens of
// microseconds; these are two or three stat calls.
Result<CgroupMount> find_cgroup2_mount(const std::vector<std::filesystem::path>& enforcement_roots);

// Why process `pid` (0: this one) cannot enforce sessions from where it
// runs, or nullopt when it can: its mount namespace (read from
// /proc/PID/mountinfo) has no cgroup2 or no bpffs holding `pin_dir`. The
// usual cause is a login service started with `ip netns exec` or `ip vrf
// exec`, which remount a fresh /sys without either. `mountinfo` overrides
// the file read (tests).
std::optional<std::string> mount_namespace_problem(pid_t pid, const std::filesystem::path& pin_dir,
                                                   std::optional<std::string_view> mountinfo = std::nullopt);

// The cgroup id (the kernfs inode number the BPF helpers return).
Result<uint64_t> cgroup_id(const std::filesystem::path& cgroup_dir);

// The level of a cgroup directory, counted from the hierarchy's true root
// (= 0), as bpf_get_current_ancestor_cgroup_id() counts.
Result<int> cgroup_level(const CgroupMount& mount, const std::filesystem::path& cgroup_dir);

// True when `path` is a directory on a cgroup2 filesystem.
bool is_cgroup2_dir(const std::filesystem::path& path);

Status cgroup_create(const std::filesystem::path& cgroup_dir);
// Removes an empty cgroup and its empty descendants, bottom-up.
Status cgroup_remove_tree(const std::filesystem::path& cgroup_dir);
Status cgroup_move_pid(const std::filesystem::path& cgroup_dir, pid_t pid);
// Whether any process is in the cgroup or below it (cgroup.events).
bool cgroup_populated(const std::filesystem::path& cgroup_dir);
// Kills every process of the cgroup (cgroup.kill, kernel 5.14+).
Status cgroup_kill(const std::filesystem::path& cgroup_dir);
// SIGKILLs every process in the cgroup and below but `keep`, until none is
// left (true) or two seconds passed (false).
bool cgroup_kill_except(const std::filesystem::path& cgroup_dir, pid_t keep);

// The cgroup2 path of a process, from /proc/PID/cgroup ("0::/a/b").
Result<std::string> process_cgroup(pid_t pid);

// The path of the cgroup with this id (open_by_handle_at; needs
// CAP_DAC_READ_SEARCH). An error with ESTALE/ENOENT: the cgroup is gone.
Result<std::filesystem::path> cgroup_path_by_id(const CgroupMount& mount, uint64_t id);

// Ids of the cgroup and each of its ancestors up to the mount point.
Result<std::vector<uint64_t>> cgroup_ancestor_ids(const CgroupMount& mount, const std::filesystem::path& cgroup_dir);

Result<Fd> open_directory(const std::filesystem::path& dir);

// One directory of a cgroup tree, as walk_cgroup_tree lists it.
struct CgroupDir {
    std::string path; // the walk's root joined with the names below it
    uint64_t id = 0;  // the cgroup id
    int depth = 0;    // 0: the root, 1: its children, ...
};

// Lists `root` and every directory below it, each parent before its
// children: one getdents pass per directory that has subdirectories, the
// ids taken from the directory entries (the kernfs inode number, as
// cgroup_id() reads it), no stat of a cgroup beyond its link count.
// `on_dir` runs on each directory before its children are read, so a watch
// it adds there misses no child made later. Best effort, as a snapshot of a
// changing tree is: a directory that goes away during the walk is listed
// without its children; a missing root yields nothing.
using CgroupDirVisitor = std::function<void(const CgroupDir& dir)>;
std::vector<CgroupDir> walk_cgroup_tree(const std::filesystem::path& root, const CgroupDirVisitor& on_dir = {});

} // namespace authwall
