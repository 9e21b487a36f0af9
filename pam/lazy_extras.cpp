// SPDX-License-Identifier: Apache-2.0
#include "pam/lazy_extras.h"

#include "core/policy/policy_file.h"

#include <dlfcn.h>

#include <cstdlib>
#include <cstring>
#include <memory>

namespace authwall {

namespace fs = std::filesystem;

Result<fs::path> pam_helper_path(const char* file)
{
    Dl_info info{};
    if (::dladdr(reinterpret_cast<void*>(&pam_helper_path), &info) == 0 || !info.dli_fname || info.dli_fname[0] != '/')
        return Error::msg("find the helpers of", "pam_authwall.so", "the module's own file cannot be named (dladdr)");
    std::unique_ptr<char, decltype(&std::free)> real(::realpath(info.dli_fname, nullptr), &std::free);
    if (!real)
        return Error::sys("resolve", info.dli_fname, errno);
    return fs::path(real.get()).parent_path() / pam_helpers::kDirectory / file;
}

namespace {

// Loads a helper and returns its table, checked to be of this build. The
// helper stays loaded for the life of the process (RTLD_NODELETE): the
// libraries it brings (libsystemd, libnftables) are not made to be
// unloaded, and the next login in this process finds them there.
template <class Table> Result<const Table*> load_helper(const char* file, const char* symbol, const char* needed_for)
{
    auto path = pam_helper_path(file);
    if (!path)
        return path.error();
    std::string why = std::string("pam_authwall needs it for ") + needed_for;
    // Only a file as trusted as a configuration is loaded into the login
    // service: owned by root, written by no one else.
    if (auto st = check_trusted_path(*path); !st)
        return Error::msg("load helper", path->string(), st.error().message() + "; " + why);
    void* handle = ::dlopen(path->c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    if (!handle) {
        const char* err = ::dlerror();
        return Error::msg("load helper", path->string(),
                          std::string(err ? err : "dlopen failed") + "; " + why + " (reinstall authwall)");
    }
    auto entry = reinterpret_cast<const Table* (*)()>(::dlsym(handle, symbol));
    if (!entry)
        return Error::msg("load helper", path->string(), std::string("it has no ") + symbol + " (reinstall authwall)");
    const Table* table = entry();
    if (!table || !table->abi || std::strcmp(table->abi, pam_helpers::kAbi) != 0)
        return Error::msg("load helper", path->string(),
                          std::string("it is from another build (") + (table && table->abi ? table->abi : "no table") +
                              "; the module is " + pam_helpers::kAbi + "): reinstall authwall");
    return table;
}

} // namespace

Result<const pam_helpers::NftMirror*> LazyLoginExtras::nft_mirror()
{
    if (!nft_mirror_) {
        auto table = load_helper<pam_helpers::NftMirror>(pam_helpers::kNftMirrorFile, pam_helpers::kNftMirrorSymbol,
                                                         "nft_mirror = true");
        if (!table)
            return table.error();
        nft_mirror_ = *table;
    }
    return nft_mirror_;
}

Result<const pam_helpers::SystemdScope*> LazyLoginExtras::systemd_scope()
{
    if (!systemd_scope_) {
        auto table = load_helper<pam_helpers::SystemdScope>(
            pam_helpers::kSystemdScopeFile, pam_helpers::kSystemdScopeSymbol, "systemd's D-Bus API (transient scopes)");
        if (!table)
            return table.error();
        systemd_scope_ = *table;
    }
    return systemd_scope_;
}

Status LazyLoginExtras::nft_mirror_add(const fs::path& run_dir, const SessionRecord& record)
{
    auto helper = nft_mirror();
    if (!helper)
        return helper.error();
    return (*helper)->add(run_dir, record);
}

Status LazyLoginExtras::nft_mirror_remove(const fs::path& run_dir, const SessionRecord& record)
{
    auto helper = nft_mirror();
    if (!helper)
        return helper.error();
    return (*helper)->remove(run_dir, record);
}

Result<MirrorRepair> LazyLoginExtras::nft_mirror_repair(const fs::path&, const PinnedMaps&)
{
    return Error::msg("repair", "the nft mirror", "a login never repairs it (authwall-cgroupd does)");
}

Status LazyLoginExtras::start_transient_scope(const std::string& unit, const std::string& slice, pid_t pid,
                                              const std::string& description)
{
    auto helper = systemd_scope();
    if (!helper)
        return helper.error();
    return (*helper)->start_transient_scope(unit, slice, pid, description);
}

Status LazyLoginExtras::stop_unit(const std::string& unit)
{
    auto helper = systemd_scope();
    if (!helper)
        return helper.error();
    return (*helper)->stop_unit(unit);
}

} // namespace authwall
