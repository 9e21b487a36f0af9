// SPDX-License-Identifier: Apache-2.0
#include "core/host/cgroup.h"

#include "core/base/files.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace authwall {

namespace {

std::vector<std::string_view> split(std::string_view s, char sep)
{
    std::vector<std::string_view> out;
    size_t start = 0;
    while (start <= s.size()) {
        size_t end = s.find(sep, start);
        if (end == std::string_view::npos)
            end = s.size();
        out.push_back(s.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

// mountinfo escapes space, tab, newline and backslash as \ooo (octal).
std::string unescape(std::string_view s)
{
    auto octal = [](char c) { return c >= '0' && c <= '7'; };
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && i + 3 < s.size() && octal(s[i + 1]) && octal(s[i + 2]) && octal(s[i + 3])) {
            out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
            i += 3;
        } else {
            out += s[i];
        }
    }
    return out;
}

int path_depth(std::string_view p)
{
    int depth = 0;
    for (auto part : split(p, '/'))
        if (!part.empty() && part != ".")
            ++depth;
    return depth;
}

Status write_file(const std::filesystem::path& file, std::string_view text)
{
    Fd fd(::open(file.c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd)
        return Error::sys("open", file.string(), errno);
    ssize_t n = ::write(fd.get(), text.data(), text.size());
    if (n < 0)
        return Error::sys("write", file.string(), errno);
    if (static_cast<size_t>(n) != text.size())
        return Error::msg("write", file.string(), "short write");
    return {};
}

} // namespace

Result<CgroupMount> parse_cgroup2_mount(std::string_view mountinfo)
{
    for (auto line : split(mountinfo, '\n')) {
        // id parent major:minor root mount-point options [optional...] - fstype source super-options
        auto sep = line.find(" - ");
        if (sep == std::string_view::npos)
            continue;
        auto tail = split(line.substr(sep + 3), ' ');
        if (tail.empty() || tail[0] != "cgroup2")
            continue;
        auto head = split(line.substr(0, sep), ' ');
        if (head.size() < 5)
            continue;
        return CgroupMount{unescape(head[4]), unescape(head[3])};
    }
    return Error::msg("find", "cgroup2 mount",
                      "no cgroup2 filesystem is mounted (mount -t cgroup2 none /sys/fs/cgroup)");
}

Result<CgroupMount> find_cgroup2_mount()
{
    // Never from the environment: the PAM module runs in sshd or su, whose
    // environment the user may shape.
    auto text = read_text_file("/proc/self/mountinfo");
    if (!text)
        return text.error();
    return parse_cgroup2_mount(*text);
}

namespace {

// The inode of `dir` when it is the root of a mount.
std::optional<uint64_t> mount_root_inode(const std::filesystem::path& dir)
{
    struct statx stx {};
    if (::statx(AT_FDCWD, dir.c_str(), 0, STATX_INO, &stx) != 0)
        return std::nullopt;
    bool root = (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) && (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT);
    return root ? std::optional<uint64_t>(stx.stx_ino) : std::nullopt;
}

// `dir`, the root of a mount with inode `ino`, when that mount is plain
// cgroup2: the whole hierarchy, from its root cgroup (id 1).
std::optional<CgroupMount> plain_cgroup2_mount(const std::filesystem::path& dir, uint64_t ino)
{
    struct statfs fs {};
    if (ino != 1 || ::statfs(dir.c_str(), &fs) != 0 || fs.f_type != CGROUP2_SUPER_MAGIC)
        return std::nullopt;
    return CgroupMount{dir, "/"};
}

} // namespace

Result<CgroupMount> find_cgroup2_mount(const std::vector<std::filesystem::path>& enforcement_roots)
{
    if (enforcement_roots.empty()) {
        for (const char* dir : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"})
            if (auto ino = mount_root_inode(dir))
                if (auto m = plain_cgroup2_mount(dir, *ino))
                    return *m;
    } else if (enforcement_roots.front().is_absolute()) {
        // The nearest mount root at or above the enforcement root.
        auto dir = enforcement_roots.front().lexically_normal();
        if (!dir.has_filename() && dir.has_relative_path())
            dir = dir.parent_path();
        for (int depth = 0; depth < 64 && dir.has_relative_path(); ++depth, dir = dir.parent_path()) {
            if (auto ino = mount_root_inode(dir)) {
                if (auto m = plain_cgroup2_mount(dir, *ino))
                    return *m;
                break;
            }
        }
    }
    return find_cgroup2_mount();
}

std::optional<std::string> mount_namespace_problem(pid_t pid, const std::filesystem::path& pin_dir,
                                                   std::optional<std::string_view> mountinfo)
{
    std::string proc = pid ? "/proc/" + std::to_string(pid) : "/proc/self";
    std::string text;
    if (mountinfo) {
        text = *mountinfo;
    } else {
        auto read = read_text_file(proc + "/mountinfo");
        if (!read)
            return std::nullopt; // the process is gone, or not ours to read: nothing to say
        text = std::move(read).value();
    }
    bool cgroup2 = false, pins = false;
    std::string pin = pin_dir.lexically_normal().string();
    for (auto line : split(text, '\n')) {
        auto sep = line.find(" - ");
        if (sep == std::string_view::npos)
            continue;
        auto tail = split(line.substr(sep + 3), ' ');
        auto head = split(line.substr(0, sep), ' ');
        if (tail.empty() || head.size() < 5)
            continue;
        std::string point = unescape(head[4]);
        if (tail[0] == "cgroup2")
            cgroup2 = true;
        else if (tail[0] == "bpf" && (pin == point || pin.starts_with(point == "/" ? point : point + "/")))
            pins = true;
    }
    if (cgroup2 && pins)
        return std::nullopt;
    std::string missing = !cgroup2 && !pins ? "neither cgroup2 nor the bpffs holding " + pin
                          : !cgroup2        ? "no cgroup2"
                                            : "no bpffs holding " + pin;
    std::string who = pid ? "process " + std::to_string(pid) : "this process";
    std::string own;
    // readlink, not stat: from another mount namespace, stat of
    // /proc/1/ns/mnt is refused even to root; the link's text is not.
    std::error_code ec1, ec2;
    auto mine = std::filesystem::read_symlink(proc + "/ns/mnt", ec1);
    auto init = std::filesystem::read_symlink("/proc/1/ns/mnt", ec2);
    if (!ec1 && !ec2 && mine != init)
        own = " in a mount namespace of its own";
    return who + " runs" + own + " with " + missing +
           " mounted: a login service started with `ip netns exec` or `ip vrf exec` sees a fresh /sys "
           "without them; start it with `nsenter --net=/run/netns/NAME` (which keeps the mounts) or "
           "mount cgroup2 and bpffs inside its namespace";
}

Result<uint64_t> cgroup_id(const std::filesystem::path& cgroup_dir)
{
    // The cgroup id is the kernfs node id, which is the directory's inode
    // number on 64-bit kernels (what name_to_handle_at also encodes).
    struct stat st {};
    if (::stat(cgroup_dir.c_str(), &st) != 0)
        return Error::sys("stat", cgroup_dir.string(), errno);
    return static_cast<uint64_t>(st.st_ino);
}

Result<int> cgroup_level(const CgroupMount& mount, const std::filesystem::path& cgroup_dir)
{
    auto rel = cgroup_dir.lexically_normal().lexically_relative(mount.mount_point.lexically_normal());
    if (rel.empty() || rel.native().starts_with(".."))
        return Error::msg("locate", cgroup_dir.string(),
                          "is not under the cgroup2 mount " + mount.mount_point.string());
    return path_depth(mount.root) + path_depth(rel.native());
}

bool is_cgroup2_dir(const std::filesystem::path& path)
{
    struct statfs fs {};
    return ::statfs(path.c_str(), &fs) == 0 && fs.f_type == CGROUP2_SUPER_MAGIC;
}

Status cgroup_create(const std::filesystem::path& cgroup_dir)
{
    if (::mkdir(cgroup_dir.c_str(), 0755) != 0 && errno != EEXIST)
        return Error::sys("create cgroup", cgroup_dir.string(), errno);
    return {};
}

Status cgroup_remove_tree(const std::filesystem::path& cgroup_dir)
{
    // Most cgroups have no children: one rmdir, and the tree is walked only
    // when the kernel says it is not empty.
    if (::rmdir(cgroup_dir.c_str()) == 0 || errno == ENOENT)
        return {};
    if (errno != EBUSY && errno != ENOTEMPTY)
        return Error::sys("remove cgroup", cgroup_dir.string(), errno);
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(cgroup_dir, ec))
        if (entry.is_directory())
            if (auto st = cgroup_remove_tree(entry.path()); !st)
                return st;
    if (::rmdir(cgroup_dir.c_str()) != 0 && errno != ENOENT)
        return Error::sys("remove cgroup", cgroup_dir.string(), errno);
    return {};
}

Status cgroup_move_pid(const std::filesystem::path& cgroup_dir, pid_t pid)
{
    return write_file(cgroup_dir / "cgroup.procs", std::to_string(pid));
}

bool cgroup_populated(const std::filesystem::path& cgroup_dir)
{
    // "populated 0|1" is one line of cgroup.events.
    auto text = read_text_file(cgroup_dir / "cgroup.events");
    if (!text)
        return false;
    for (auto line : split(*text, '\n'))
        if (line.starts_with("populated "))
            return line.substr(10) != "0";
    return false;
}

Status cgroup_kill(const std::filesystem::path& cgroup_dir)
{
    return write_file(cgroup_dir / "cgroup.kill", "1");
}

bool cgroup_kill_except(const std::filesystem::path& cgroup_dir, pid_t keep)
{
    for (int round = 0; round < 200; ++round) {
        bool others = false;
        std::error_code ec;
        std::vector<std::filesystem::path> dirs{cgroup_dir};
        for (auto it = std::filesystem::recursive_directory_iterator(cgroup_dir, ec);
             !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec))
            if (it->is_directory(ec))
                dirs.push_back(it->path());
        for (const auto& d : dirs) {
            auto procs = read_text_file(d / "cgroup.procs");
            if (!procs)
                continue;
            for (auto line : split(*procs, '\n')) {
                pid_t pid = 0;
                auto [end, parsed] = std::from_chars(line.data(), line.data() + line.size(), pid);
                if (parsed != std::errc() || end != line.data() + line.size() || pid <= 0 || pid == keep)
                    continue;
                others = true;
                ::kill(pid, SIGKILL);
            }
        }
        if (!others)
            return true;
        ::usleep(10000);
    }
    return false;
}

Result<std::string> process_cgroup(pid_t pid)
{
    std::string path = "/proc/" + std::to_string(pid) + "/cgroup";
    auto text = read_text_file(path);
    if (!text)
        return text.error();
    for (auto line : split(*text, '\n'))
        if (line.starts_with("0::"))
            return std::string(line.substr(3));
    return Error::msg("read", path, "the process has no cgroup2 membership");
}

Result<std::filesystem::path> cgroup_path_by_id(const CgroupMount& mount, uint64_t id)
{
    auto root = open_directory(mount.mount_point);
    if (!root)
        return root.error();
    alignas(file_handle) unsigned char buf[sizeof(file_handle) + sizeof(uint64_t)] = {};
    auto* handle = reinterpret_cast<file_handle*>(buf);
    handle->handle_bytes = sizeof(uint64_t);
    handle->handle_type = 0xfe; // FILEID_KERNFS: the 64-bit kernfs node id
    std::memcpy(buf + sizeof(file_handle), &id, sizeof(id));
    Fd fd(::open_by_handle_at(root->get(), handle, O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd)
        return Error::sys("open cgroup", "id " + std::to_string(id), errno);
    std::error_code ec;
    auto path = std::filesystem::read_symlink("/proc/self/fd/" + std::to_string(fd.get()), ec);
    if (ec)
        return Error::sys("resolve cgroup", "id " + std::to_string(id), ec.value());
    return path;
}

Result<std::vector<uint64_t>> cgroup_ancestor_ids(const CgroupMount& mount, const std::filesystem::path& cgroup_dir)
{
    std::vector<uint64_t> out;
    auto top = mount.mount_point.lexically_normal();
    auto start = cgroup_dir.lexically_normal();
    if (!start.has_filename() && start.has_relative_path()) // "a/b/": the same directory as "a/b"
        start = start.parent_path();
    if (!top.has_filename() && top.has_relative_path())
        top = top.parent_path();
    for (auto p = start;; p = p.parent_path()) {
        auto id = cgroup_id(p);
        if (!id)
            return id.error();
        out.push_back(*id);
        if (p == top || !p.has_parent_path() || p == p.parent_path())
            break;
    }
    return out;
}

Result<Fd> open_directory(const std::filesystem::path& dir)
{
    Fd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd)
        return Error::sys("open", dir.string(), errno);
    return fd;
}

namespace {

struct Subdir {
    std::string name;
    uint64_t ino = 0;
};

// The subdirectories of the open directory `fd`, straight from getdents64:
// a cgroup directory holds a dozen or more control files, and a
// std::filesystem iterator or fdopendir would add work for each of them.
std::vector<Subdir> read_subdirs(int fd, std::vector<char>& buf)
{
    std::vector<Subdir> out;
    for (;;) {
        ssize_t n = ::getdents64(fd, buf.data(), buf.size());
        if (n <= 0)
            return out;
        for (ssize_t off = 0; off < n;) {
            const auto* d = reinterpret_cast<const dirent64*>(buf.data() + off);
            off += d->d_reclen;
            std::string_view name = d->d_name;
            if (name == "." || name == "..")
                continue;
            unsigned char type = d->d_type;
            if (type == DT_UNKNOWN) {
                struct stat st {};
                if (::fstatat(fd, d->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
                    continue;
                type = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
            }
            if (type == DT_DIR)
                out.push_back({std::string(name), d->d_ino});
        }
    }
}

void walk_below(int fd, const std::string& dir, int depth, std::vector<CgroupDir>& out, const CgroupDirVisitor& on_dir,
                std::vector<char>& buf)
{
    const char* sep = dir.ends_with('/') ? "" : "/";
    for (auto& child : read_subdirs(fd, buf)) {
        out.push_back({dir + sep + child.name, child.ino, depth + 1});
        if (on_dir)
            on_dir(out.back());
        // A directory's link count is 2 + its subdirectories (kernfs and
        // most filesystems): a leaf, most session cgroups, is not opened
        // and listed. Checked after on_dir, so a child made from here on
        // is the watch's to report.
        struct stat st {};
        if (::fstatat(fd, child.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode) && st.st_nlink == 2)
            continue;
        std::string path = out.back().path; // a copy: `out` grows below
        Fd sub(::openat(fd, child.name.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
        if (sub)
            walk_below(sub.get(), path, depth + 1, out, on_dir, buf);
    }
}

} // namespace

std::vector<CgroupDir> walk_cgroup_tree(const std::filesystem::path& root, const CgroupDirVisitor& on_dir)
{
    std::vector<CgroupDir> out;
    std::string base = root.lexically_normal().string();
    while (base.size() > 1 && base.ends_with('/'))
        base.pop_back();
    Fd fd(::open(base.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0)
        return out;
    out.push_back({base, static_cast<uint64_t>(st.st_ino), 0});
    if (on_dir)
        on_dir(out.back());
    std::vector<char> buf(32768);
    walk_below(fd.get(), base, 0, out, on_dir, buf);
    return out;
}

} // namespace authwall
