#include "core/session_record.h"

#include "core/json_fields.h"

#include "core/fd.h"
#include "core/text_file.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>

#include <cstdio>
#include <ctime>
#include <limits>
#include <optional>
#include <stdexcept>
#include <nlohmann/json.hpp>

namespace authwall {

namespace fs = std::filesystem;

uint64_t realtime_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<uint64_t>(ts.tv_nsec);
}

std::string rfc3339_utc(uint64_t ns)
{
    time_t secs = static_cast<time_t>(ns / 1'000'000'000ULL);
    tm utc{};
    gmtime_r(&secs, &utc);
    char buf[32];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &utc);
    char out[48];
    std::snprintf(out, sizeof(out), "%s.%03lluZ", buf, static_cast<unsigned long long>((ns / 1'000'000ULL) % 1000));
    return out;
}

std::string random_hex(size_t bytes)
{
    std::string raw(bytes, '\0');
    size_t got = 0;
    while (got < bytes) {
        ssize_t n = getrandom(raw.data() + got, bytes - got, 0);
        if (n <= 0)
            break;
        got += static_cast<size_t>(n);
    }
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes * 2);
    for (unsigned char c : raw) {
        out += digits[c >> 4];
        out += digits[c & 15];
    }
    return out;
}

std::string to_json(const SessionRecord& r)
{
    nlohmann::json j{
        {"version", r.version},
        {"id", r.id},
        {"correlation", r.correlation},
        {"kind", r.kind},
        {"user", r.user},
        {"uid", r.uid},
        {"service", r.service},
        {"rhost", r.rhost ? nlohmann::json(*r.rhost) : nlohmann::json(nullptr)},
        {"tty", r.tty},
        {"policy", r.policy},
        {"policy_id", r.policy_id},
        {"cgroup", r.cgroup},
        {"origin_cgroup", r.origin_cgroup},
        {"leader_pid", r.leader_pid},
        {"opened_at", r.opened_at},
        {"opened_ns", r.opened_ns},
        {"max_duration_s", r.max_duration_s},
    };
    if (!r.unit.empty())
        j["unit"] = r.unit;
    return j.dump(2) + "\n";
}

using json_fields::BadField;
using json_fields::unsigned_field;

Result<SessionRecord> record_from_json(const std::string& text, const std::string& source)
{
    try {
        auto j = nlohmann::json::parse(text);
        if (!j.is_object())
            return Error::msg("read session record", source, "not a JSON object");
        constexpr uint64_t u32 = std::numeric_limits<uint32_t>::max();
        constexpr uint64_t u64 = std::numeric_limits<uint64_t>::max();
        SessionRecord r;
        auto version = unsigned_field(j, "version", u32, std::nullopt);
        if (version != 1)
            return Error::msg("read session record", source, "unknown version " + std::to_string(version));
        r.version = 1;
        r.id = unsigned_field(j, "id", u64, std::nullopt);
        r.correlation = j.at("correlation").get<std::string>();
        r.kind = j.at("kind").get<std::string>();
        r.user = j.at("user").get<std::string>();
        r.uid = static_cast<uint32_t>(unsigned_field(j, "uid", u32, std::nullopt));
        r.service = j.at("service").get<std::string>();
        if (!j.at("rhost").is_null())
            r.rhost = j.at("rhost").get<std::string>();
        r.tty = j.value("tty", "");
        r.policy = j.at("policy").get<std::string>();
        r.policy_id = static_cast<uint32_t>(unsigned_field(j, "policy_id", u32, std::nullopt));
        r.cgroup = j.at("cgroup").get<std::string>();
        r.origin_cgroup = j.value("origin_cgroup", "");
        r.leader_pid = static_cast<pid_t>(
            unsigned_field(j, "leader_pid", static_cast<uint64_t>(std::numeric_limits<pid_t>::max()), 0));
        r.opened_at = j.at("opened_at").get<std::string>();
        r.opened_ns = unsigned_field(j, "opened_ns", u64, 0);
        r.max_duration_s = unsigned_field(j, "max_duration_s", u64, 0);
        r.unit = j.value("unit", "");
        return r;
    } catch (const nlohmann::json::exception& e) {
        return Error::msg("read session record", source, e.what());
    } catch (const BadField& e) {
        return Error::msg("read session record", source, e.what());
    }
}

fs::path sessions_dir(const fs::path& run_dir)
{
    return run_dir / "sessions";
}

fs::path record_path(const fs::path& run_dir, uint64_t id)
{
    return sessions_dir(run_dir) / (std::to_string(id) + ".json");
}

Status write_file_atomic(const fs::path& path, const std::string& text, unsigned mode)
{
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec)
        return Error::sys("create directory", path.parent_path().string(), ec.value());
    fs::path tmp = path;
    tmp += ".tmp." + random_hex(4);
    Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
    if (!fd)
        return Error::sys("create", tmp.string(), errno);
    size_t done = 0;
    while (done < text.size()) {
        ssize_t n = ::write(fd.get(), text.data() + done, text.size() - done);
        if (n < 0) {
            int err = errno;
            ::unlink(tmp.c_str());
            return Error::sys("write", tmp.string(), err);
        }
        done += static_cast<size_t>(n);
    }
    if (::fchmod(fd.get(), mode) != 0 || ::fsync(fd.get()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return Error::sys("sync", tmp.string(), err);
    }
    fd.reset();
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        int err = errno;
        ::unlink(tmp.c_str());
        return Error::sys("rename to", path.string(), err);
    }
    return {};
}

Status write_record(const fs::path& run_dir, const SessionRecord& r)
{
    return write_file_atomic(record_path(run_dir, r.id), to_json(r), 0644);
}

Result<SessionRecord> read_record(const fs::path& run_dir, uint64_t id)
{
    auto path = record_path(run_dir, id);
    auto text = read_text_file(path);
    if (!text)
        return Error::sys("read session record", path.string(), text.error().err);
    return record_from_json(*text, path.string());
}

Status remove_record(const fs::path& run_dir, uint64_t id)
{
    auto path = record_path(run_dir, id);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT)
        return Error::sys("remove session record", path.string(), errno);
    return {};
}

Result<std::vector<SessionRecord>> list_records(const fs::path& run_dir)
{
    std::vector<SessionRecord> out;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(sessions_dir(run_dir), ec)) {
        if (entry.path().extension() != ".json")
            continue;
        auto text = read_text_file(entry.path());
        if (!text)
            continue; // removed meanwhile (a close)
        if (auto r = record_from_json(*text, entry.path().string()))
            out.push_back(std::move(r).value());
    }
    if (ec && ec != std::errc::no_such_file_or_directory)
        return Error::sys("list session records", sessions_dir(run_dir).string(), ec.value());
    return out;
}

} // namespace authwall
