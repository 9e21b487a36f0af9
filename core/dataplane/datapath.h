// SPDX-License-Identifier: Apache-2.0
// Installing the data plane: load the BPF object, adopt or create the pinned
// maps, attach every program at each enforcement root as a pinned bpf_link,
// or swap the program of a link that is already there. Removing it again.
#pragma once

#include "core/base/result.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace authwall {

struct DatapathOptions {
    std::filesystem::path pin_dir;
    std::vector<std::filesystem::path> enforcement_roots; // cgroup directories
    uint32_t max_sessions = 65536;
    uint32_t events_per_sec = 200; // per CPU
    bool deny_unknown_cgroups = false;
    // Receives libbpf's own messages (verifier log included) at debug level.
    std::function<void(const std::string&)> debug_log;
};

struct LinkState {
    std::string program;
    uint64_t cgroup_id = 0;
    std::filesystem::path pin;
    enum class Action { Attached, Updated, Detached } action = Action::Attached;
};

struct InstallReport {
    std::vector<LinkState> links;
    bool maps_adopted = false; // pinned maps already existed and were reused
    // Non-inet socket families (packet, netlink, ...) are refused through BPF
    // LSM; when the kernel lacks it, only inet families and raw are enforced.
    bool lsm_socket_create = false;
    std::string lsm_unavailable; // why, when lsm_socket_create is false
};

// Whether cgroup-scoped BPF LSM programs can run here: kernel BTF present and
// "bpf" in the active LSM list. On false, `why` says what is missing.
bool bpf_lsm_available(std::string* why = nullptr);

// Preconditions the kernel must meet, checked before touching anything:
// root (or CAP_BPF + CAP_NET_ADMIN + CAP_SYS_ADMIN), a cgroup2 mount, bpf()
// usable. Returns the first missing one as an operator-readable sentence.
Status check_environment();

// The checks of install_datapath, before it loads anything: the environment,
// the enforcement roots, and the pin directory (on bpffs, made if missing,
// owned by root).
Status prepare_install(const DatapathOptions& options);

// Loads and attaches. Links pinned for a root that is no longer configured are
// detached (reported as Detached). Idempotent: run twice, attached once.
Result<InstallReport> install_datapath(const DatapathOptions& options);

struct UninstallReport {
    size_t links_detached = 0;
    size_t pins_removed = 0;
};

// Detaches every pinned link and removes every pin under pin_dir.
Result<UninstallReport> uninstall_datapath(const std::filesystem::path& pin_dir);

// Lists the pinned links (program, cgroup id) without touching them.
Result<std::vector<LinkState>> list_links(const std::filesystem::path& pin_dir);

} // namespace authwall
