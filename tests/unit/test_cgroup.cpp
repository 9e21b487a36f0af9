// SPDX-License-Identifier: Apache-2.0
#include <boost/test/unit_test.hpp>

#include "core/host/cgroup.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

using namespace authwall;

BOOST_AUTO_TEST_SUITE(cgroup)

BOOST_AUTO_TEST_CASE(finds_cgroup2_in_a_hybrid_layout)
{
    const char* mountinfo = "25 30 0:23 / /sys rw,nosuid - sysfs sysfs rw\n"
                            "35 25 0:30 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755\n"
                            "36 35 0:31 / /sys/fs/cgroup/unified rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate\n"
                            "37 35 0:32 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n";
    auto m = parse_cgroup2_mount(mountinfo);
    BOOST_REQUIRE(m.ok());
    BOOST_TEST(m->mount_point == "/sys/fs/cgroup/unified");
    BOOST_TEST(m->root == "/");
}

BOOST_AUTO_TEST_CASE(unescapes_and_keeps_the_mount_root)
{
    auto m = parse_cgroup2_mount("40 1 0:31 /ns\\040root /mnt/cg\\040two rw - cgroup2 none rw\n");
    BOOST_REQUIRE(m.ok());
    BOOST_TEST(m->mount_point == "/mnt/cg two");
    BOOST_TEST(m->root == "/ns root");
    // Levels count from the true root: the mount's root is one level down.
    auto level = cgroup_level(*m, "/mnt/cg two/a/b");
    BOOST_REQUIRE(level.ok());
    BOOST_TEST(*level == 3);
}

BOOST_AUTO_TEST_CASE(no_cgroup2_is_a_clear_error)
{
    auto m = parse_cgroup2_mount("25 30 0:23 / /sys rw - sysfs sysfs rw\n");
    BOOST_REQUIRE(!m.ok());
    BOOST_TEST(m.error().message() ==
               "find cgroup2 mount: no cgroup2 filesystem is mounted (mount -t cgroup2 none /sys/fs/cgroup)");
}

// The walk works on any directory tree (a cgroup id is the kernfs inode
// number; here, the inode numbers of a temporary tree).
BOOST_AUTO_TEST_CASE(walk_lists_every_directory_once_parents_first_with_its_inode)
{
    namespace fs = std::filesystem;
    char tmpl[] = "/tmp/authwall-walk-XXXXXX";
    fs::path root = mkdtemp(tmpl);
    for (const char* d : {"a", "a/b", "a/b/c", "a/d", "e"})
        fs::create_directory(root / d);
    std::ofstream(root / "a" / "file") << "x";
    fs::create_directory_symlink(root / "a", root / "link");

    auto dirs = walk_cgroup_tree(root.string() + "/"); // the trailing slash is normalised away
    std::map<std::string, CgroupDir> by_path;
    for (const auto& d : dirs)
        BOOST_TEST(by_path.emplace(d.path, d).second, d.path); // once each
    BOOST_TEST(by_path.size() == 6u);
    for (const auto& [rel, depth] :
         std::map<std::string, int>{{"", 0}, {"/a", 1}, {"/a/b", 2}, {"/a/b/c", 3}, {"/a/d", 2}, {"/e", 1}}) {
        auto it = by_path.find(root.string() + rel);
        BOOST_REQUIRE_MESSAGE(it != by_path.end(), rel);
        struct stat st {};
        BOOST_REQUIRE_EQUAL(::stat(it->first.c_str(), &st), 0);
        BOOST_TEST(it->second.id == static_cast<uint64_t>(st.st_ino), rel);
        BOOST_TEST(it->second.depth == depth, rel);
    }
    auto index_of = [&](const std::string& rel) {
        for (size_t i = 0; i < dirs.size(); ++i)
            if (dirs[i].path == root.string() + rel)
                return i;
        return dirs.size();
    };
    BOOST_TEST(index_of("") < index_of("/a"));
    BOOST_TEST(index_of("/a") < index_of("/a/b"));
    BOOST_TEST(index_of("/a/b") < index_of("/a/b/c"));

    // A directory is read after its visit: what the visitor makes there
    // (as a cgroup made right after a watch was added) is listed, in a
    // leaf as in a directory that had children.
    std::vector<std::string> visited;
    auto late = walk_cgroup_tree(root, [&](const CgroupDir& d) {
        visited.push_back(d.path);
        if (d.path == root.string() + "/e" || d.path == root.string() + "/a")
            fs::create_directory(fs::path(d.path) / "late");
    });
    BOOST_TEST(late.size() == 8u);
    BOOST_TEST(visited.size() == late.size());
    BOOST_TEST(std::count(visited.begin(), visited.end(), root.string() + "/e/late") == 1);
    BOOST_TEST(std::count(visited.begin(), visited.end(), root.string() + "/a/late") == 1);

    BOOST_TEST(walk_cgroup_tree(root / "missing").empty());
    fs::remove_all(root);
}

// sshd started with `ip netns exec` sees a fresh /sys: no cgroup2, no bpffs.
BOOST_AUTO_TEST_CASE(a_mount_namespace_without_cgroup2_or_pins_is_named)
{
    const char* host = "25 30 0:23 / /sys rw - sysfs sysfs rw\n"
                       "36 35 0:31 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n"
                       "40 25 0:40 / /sys/fs/bpf rw - bpf bpf rw\n";
    BOOST_TEST(!mount_namespace_problem(0, "/sys/fs/bpf/authwall", std::string_view(host)));
    BOOST_TEST(!mount_namespace_problem(0, "/sys/fs/bpf", std::string_view(host)));
    // A bpffs elsewhere does not hold the pins.
    auto other = mount_namespace_problem(0, "/sys/fs/bpfx/authwall", std::string_view(host));
    BOOST_REQUIRE(other);
    BOOST_TEST(other->find("no bpffs holding /sys/fs/bpfx/authwall") != std::string::npos);
    auto netns =
        mount_namespace_problem(0, "/sys/fs/bpf/authwall", std::string_view("99 30 0:50 / /sys rw - sysfs none rw\n"));
    BOOST_REQUIRE(netns);
    BOOST_TEST(netns->find("neither cgroup2 nor the bpffs holding /sys/fs/bpf/authwall") != std::string::npos);
    BOOST_TEST(netns->find("ip netns exec") != std::string::npos);
    BOOST_TEST(netns->find("nsenter --net=") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(levels)
{
    CgroupMount m{"/sys/fs/cgroup", "/"};
    BOOST_TEST(*cgroup_level(m, "/sys/fs/cgroup/a") == 1);
    BOOST_TEST(*cgroup_level(m, "/sys/fs/cgroup/a/b/c") == 3);
    BOOST_TEST(!cgroup_level(m, "/tmp/x").ok());
}

// Where cgroup2 is mounted plainly (this machine: /sys/fs/cgroup/unified,
// or /sys/fs/cgroup), the mount found with a few stat calls is the one
// mountinfo names.
BOOST_AUTO_TEST_CASE(the_plain_mount_is_found_as_mountinfo_names_it)
{
    auto from_mountinfo = find_cgroup2_mount();
    BOOST_REQUIRE(from_mountinfo.ok());
    if (from_mountinfo->root != "/")
        return; // not a plain mount: the fast path is not taken here
    auto usual = find_cgroup2_mount(std::vector<std::filesystem::path>{});
    BOOST_REQUIRE(usual.ok());
    BOOST_TEST(usual->mount_point == from_mountinfo->mount_point);
    BOOST_TEST(usual->root == "/");
    auto below = find_cgroup2_mount({from_mountinfo->mount_point / "some" / "enforcement-root"});
    BOOST_REQUIRE(below.ok());
    BOOST_TEST(below->mount_point == from_mountinfo->mount_point);
    BOOST_TEST(below->root == "/");
    // Not on cgroup2 at all: mountinfo decides, as before.
    auto elsewhere = find_cgroup2_mount({"/tmp/not-a-cgroup"});
    BOOST_REQUIRE(elsewhere.ok());
    BOOST_TEST(elsewhere->mount_point == from_mountinfo->mount_point);
}

BOOST_AUTO_TEST_SUITE_END()
