// SPDX-License-Identifier: Apache-2.0
// The libbpf functions the login path calls (core/dataplane/maps.cpp), as bare bpf(2)
// system calls, linked into pam_authwall.so in place of libbpf: they are
// thin wrappers there too, and libbpf would bring libelf and libz into
// every login service (0.15 ms of each fresh process's pam_start here).
// Same prototypes (bpf/bpf.h, checked by the compiler), same results: -1
// or a negative value with errno set on failure, descriptors above 2 with
// close-on-exec. The version script keeps them private to the module.
//
// A libbpf call added to authwall_maps on the login path must be added here too, or the
// module needs libbpf again and scripts/check-pam-module says so.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace {

uint64_t ptr(const void* p)
{
    return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(p));
}

int sys_bpf(int cmd, bpf_attr* attr, size_t size)
{
    long r = ::syscall(__NR_bpf, cmd, attr, static_cast<unsigned int>(size));
    return r < 0 ? -errno : static_cast<int>(r);
}

// As libbpf does: never hand out 0, 1 or 2 (a caller that closed stdin
// would otherwise get a map as its standard input).
int sys_bpf_fd(int cmd, bpf_attr* attr, size_t size)
{
    int fd = sys_bpf(cmd, attr, size);
    if (fd < 0 || fd > 2)
        return fd;
    int moved = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int err = errno;
    ::close(fd);
    if (moved < 0) {
        errno = err;
        return -err;
    }
    return moved;
}

// The attribute size up to and including `field`, as libbpf passes it.
#define AW_ATTR_SIZE(field) (offsetof(bpf_attr, field) + sizeof(bpf_attr::field))

} // namespace

extern "C" {

int bpf_obj_get(const char* pathname)
{
    bpf_attr attr{};
    attr.pathname = ptr(pathname);
    return sys_bpf_fd(BPF_OBJ_GET, &attr, AW_ATTR_SIZE(file_flags));
}

int bpf_map_lookup_elem(int fd, const void* key, void* value)
{
    bpf_attr attr{};
    attr.map_fd = static_cast<uint32_t>(fd);
    attr.key = ptr(key);
    attr.value = ptr(value);
    return sys_bpf(BPF_MAP_LOOKUP_ELEM, &attr, AW_ATTR_SIZE(flags));
}

int bpf_map_update_elem(int fd, const void* key, const void* value, __u64 flags)
{
    bpf_attr attr{};
    attr.map_fd = static_cast<uint32_t>(fd);
    attr.key = ptr(key);
    attr.value = ptr(value);
    attr.flags = flags;
    return sys_bpf(BPF_MAP_UPDATE_ELEM, &attr, AW_ATTR_SIZE(flags));
}

int bpf_map_delete_elem(int fd, const void* key)
{
    bpf_attr attr{};
    attr.map_fd = static_cast<uint32_t>(fd);
    attr.key = ptr(key);
    return sys_bpf(BPF_MAP_DELETE_ELEM, &attr, AW_ATTR_SIZE(flags));
}

int bpf_map_get_next_key(int fd, const void* key, void* next_key)
{
    bpf_attr attr{};
    attr.map_fd = static_cast<uint32_t>(fd);
    attr.key = ptr(key);
    attr.next_key = ptr(next_key);
    return sys_bpf(BPF_MAP_GET_NEXT_KEY, &attr, AW_ATTR_SIZE(next_key));
}

int bpf_map_get_fd_by_id(__u32 id)
{
    bpf_attr attr{};
    attr.map_id = id;
    return sys_bpf_fd(BPF_MAP_GET_FD_BY_ID, &attr, AW_ATTR_SIZE(open_flags));
}

int bpf_obj_get_info_by_fd(int bpf_fd, void* info, __u32* info_len)
{
    bpf_attr attr{};
    attr.info.bpf_fd = static_cast<uint32_t>(bpf_fd);
    attr.info.info_len = *info_len;
    attr.info.info = ptr(info);
    int r = sys_bpf(BPF_OBJ_GET_INFO_BY_FD, &attr, AW_ATTR_SIZE(info));
    if (r == 0)
        *info_len = attr.info.info_len;
    return r;
}

int bpf_map_create(enum bpf_map_type map_type, const char* map_name, __u32 key_size, __u32 value_size,
                   __u32 max_entries, const struct bpf_map_create_opts* opts)
{
    bpf_attr attr{};
    attr.map_type = map_type;
    attr.key_size = key_size;
    attr.value_size = value_size;
    attr.max_entries = max_entries;
    if (opts) {
        // Only what authwall passes (PinnedMaps::install_policies); anything
        // else would be silently dropped here, so it is refused.
        if (opts->btf_fd || opts->btf_key_type_id || opts->btf_value_type_id || opts->btf_vmlinux_value_type_id ||
            opts->inner_map_fd || opts->map_extra || opts->numa_node || opts->map_ifindex) {
            errno = EOPNOTSUPP;
            return -EOPNOTSUPP;
        }
        attr.map_flags = opts->map_flags;
    }
    if (map_name)
        std::strncpy(attr.map_name, map_name, sizeof(attr.map_name) - 1);
    return sys_bpf_fd(BPF_MAP_CREATE, &attr, AW_ATTR_SIZE(map_extra));
}

// PinnedMaps::list_sessions_batch (cgroupd's sweep); a login never calls it,
// but it is in the same library.
int bpf_map_lookup_batch(int fd, void* in_batch, void* out_batch, void* keys, void* values, __u32* count,
                         const struct bpf_map_batch_opts* opts)
{
    bpf_attr attr{};
    attr.batch.map_fd = static_cast<uint32_t>(fd);
    attr.batch.in_batch = ptr(in_batch);
    attr.batch.out_batch = ptr(out_batch);
    attr.batch.keys = ptr(keys);
    attr.batch.values = ptr(values);
    attr.batch.count = *count;
    if (opts) {
        attr.batch.elem_flags = opts->elem_flags;
        attr.batch.flags = opts->flags;
    }
    int r = sys_bpf(BPF_MAP_LOOKUP_BATCH, &attr, AW_ATTR_SIZE(batch));
    *count = attr.batch.count;
    return r;
}

// Like libbpf: the count of /sys/devices/system/cpu/possible ("0-3,8-11").
int libbpf_num_possible_cpus(void)
{
    static int cached = 0;
    if (cached > 0)
        return cached;
    int fd = ::open("/sys/devices/system/cpu/possible", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[256];
    ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
    int err = errno;
    ::close(fd);
    if (n <= 0)
        return n < 0 ? -err : -EINVAL;
    buf[n] = '\0';
    int count = 0;
    for (const char* p = buf; *p && *p != '\n';) {
        unsigned a = 0, b = 0;
        int used = 0;
        if (std::sscanf(p, "%u%n", &a, &used) != 1)
            return -EINVAL;
        p += used;
        b = a;
        if (*p == '-') {
            ++p;
            if (std::sscanf(p, "%u%n", &b, &used) != 1 || b < a)
                return -EINVAL;
            p += used;
        }
        count += static_cast<int>(b - a + 1);
        if (*p == ',')
            ++p;
    }
    if (count <= 0)
        return -EINVAL;
    cached = count;
    return count;
}

} // extern "C"
