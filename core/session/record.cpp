// SPDX-License-Identifier: Apache-2.0
#include "core/session/record.h"

#include "core/base/json_fields.h"

#include "core/base/fd.h"
#include "core/base/files.h"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <dirent.h>

#include <cstdio>
#include <ctime>
#include <limits>
#include <optional>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <type_traits>
#include <nlohmann/json.hpp>

namespace authwall {

namespace fs = std::filesystem;

const char* kind_name(SessionKind kind)
{
    switch (kind) {
    case SessionKind::Container:
        return "container";
    case SessionKind::User:
        return "user";
    case SessionKind::Login:
        break;
    }
    return "login";
}

std::optional<SessionKind> record_kind(std::string_view name)
{
    if (name == "login")
        return SessionKind::Login;
    if (name == "container")
        return SessionKind::Container;
    return std::nullopt;
}

std::string to_json(const SessionRecord& r)
{
    nlohmann::json j{
        {"version", r.version},
        {"id", r.id},
        {"correlation", r.correlation},
        {"kind", kind_name(r.kind)},
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
    if (!r.auth_correlation.empty())
        j["auth_correlation"] = r.auth_correlation;
    if (!r.auth_claims.empty())
        j["auth_claims"] = r.auth_claims;
    return j.dump(2) + "\n";
}

using json_fields::BadField;
using json_fields::unsigned_field;

namespace {

// A flat JSON object of the kind to_json writes, read in place: values are
// views into the text. parse() fails (for the full parser to judge) on
// anything else: an escape or a byte outside printable ASCII in a string, a
// number that is not an unsigned integer, true/false, nesting, a duplicate
// key, malformed or trailing text.
class FlatJsonObject {
  public:
    enum class Kind { String, Unsigned, Null };
    struct Value {
        Kind kind = Kind::Null;
        std::string_view text; // String
        uint64_t number = 0;   // Unsigned
    };

    bool parse(std::string_view text)
    {
        text_ = text;
        pos_ = 0;
        skip_space();
        if (!take('{'))
            return false;
        skip_space();
        if (take('}'))
            return at_end();
        for (;;) {
            std::string_view key;
            Value value;
            if (!string(key))
                return false;
            skip_space();
            if (!take(':'))
                return false;
            skip_space();
            if (!this->value(value) || find(key) || fields_.size() >= kMaxFields)
                return false;
            fields_.emplace_back(key, value);
            skip_space();
            if (take('}'))
                return at_end();
            if (!take(','))
                return false;
            skip_space();
        }
    }

    const Value* find(std::string_view key) const
    {
        for (const auto& [k, v] : fields_)
            if (k == key)
                return &v;
        return nullptr;
    }

  private:
    static constexpr size_t kMaxFields = 64;

    void skip_space()
    {
        while (pos_ < text_.size() &&
               (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\r' || text_[pos_] == '\t'))
            ++pos_;
    }
    bool take(char c)
    {
        if (pos_ < text_.size() && text_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }
    bool at_end()
    {
        skip_space();
        return pos_ == text_.size();
    }
    bool string(std::string_view& out)
    {
        if (!take('"'))
            return false;
        size_t start = pos_;
        for (; pos_ < text_.size(); ++pos_) {
            auto c = static_cast<unsigned char>(text_[pos_]);
            if (c == '"') {
                out = text_.substr(start, pos_ - start);
                ++pos_;
                return true;
            }
            if (c == '\\' || c < 0x20 || c >= 0x7f)
                return false;
        }
        return false;
    }
    bool value(Value& out)
    {
        if (pos_ >= text_.size())
            return false;
        char c = text_[pos_];
        if (c == '"') {
            out.kind = Kind::String;
            return string(out.text);
        }
        if (text_.substr(pos_).starts_with("null")) {
            pos_ += 4;
            out.kind = Kind::Null;
            return true;
        }
        if (c < '0' || c > '9')
            return false;
        if (c == '0' && pos_ + 1 < text_.size() && text_[pos_ + 1] >= '0' && text_[pos_ + 1] <= '9')
            return false; // a leading zero: not JSON
        uint64_t n = 0;
        for (; pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9'; ++pos_) {
            auto digit = static_cast<uint64_t>(text_[pos_] - '0');
            if (n > (std::numeric_limits<uint64_t>::max() - digit) / 10)
                return false;
            n = n * 10 + digit;
        }
        if (pos_ < text_.size() && (text_[pos_] == '.' || text_[pos_] == 'e' || text_[pos_] == 'E'))
            return false;
        out.kind = Kind::Unsigned;
        out.number = n;
        return true;
    }

    std::string_view text_;
    size_t pos_ = 0;
    std::vector<std::pair<std::string_view, FlatJsonObject::Value>> fields_;
};

} // namespace

std::optional<SessionRecord> detail::record_from_json_fast(std::string_view text)
{
    FlatJsonObject o;
    if (!o.parse(text))
        return std::nullopt;
    using Kind = FlatJsonObject::Kind;
    // The full parser's rules, field by field; any doubt goes to it.
    auto text_of = [&](const char* key, std::string& out, bool required) {
        const auto* v = o.find(key);
        if (!v)
            return !required;
        if (v->kind != Kind::String)
            return false;
        out = v->text;
        return true;
    };
    auto number_of = [&](const char* key, uint64_t max, bool required, auto& out) {
        const auto* v = o.find(key);
        if (!v)
            return !required; // out keeps its default
        if (v->kind != Kind::Unsigned || v->number > max)
            return false;
        out = static_cast<std::remove_reference_t<decltype(out)>>(v->number);
        return true;
    };
    constexpr uint64_t u32 = std::numeric_limits<uint32_t>::max();
    constexpr uint64_t u64 = std::numeric_limits<uint64_t>::max();
    SessionRecord r;
    uint64_t version = 0;
    if (!number_of("version", u32, true, version) || version != 1)
        return std::nullopt;
    const auto* rhost = o.find("rhost");
    if (!rhost || rhost->kind == Kind::Unsigned)
        return std::nullopt;
    if (rhost->kind == Kind::String)
        r.rhost = std::string(rhost->text);
    std::string kind;
    bool ok = number_of("id", u64, true, r.id) && text_of("correlation", r.correlation, true) &&
              text_of("kind", kind, true) && text_of("user", r.user, true) && number_of("uid", u32, true, r.uid) &&
              text_of("service", r.service, true) && text_of("tty", r.tty, false) &&
              text_of("policy", r.policy, true) && number_of("policy_id", u32, true, r.policy_id) &&
              text_of("cgroup", r.cgroup, true) && text_of("origin_cgroup", r.origin_cgroup, false) &&
              number_of("leader_pid", static_cast<uint64_t>(std::numeric_limits<pid_t>::max()), false, r.leader_pid) &&
              text_of("opened_at", r.opened_at, true) && number_of("opened_ns", u64, false, r.opened_ns) &&
              number_of("max_duration_s", u64, false, r.max_duration_s) && text_of("unit", r.unit, false) &&
              text_of("auth_correlation", r.auth_correlation, false) && text_of("auth_claims", r.auth_claims, false);
    if (!ok)
        return std::nullopt;
    auto typed = record_kind(kind);
    if (!typed)
        return std::nullopt; // the full parser names the error
    r.kind = *typed;
    return r;
}

Result<SessionRecord> record_from_json(const std::string& text, const std::string& source)
{
    if (auto r = detail::record_from_json_fast(text))
        return std::move(*r);
    return detail::record_from_json_full(text, source);
}

Result<SessionRecord> detail::record_from_json_full(const std::string& text, const std::string& source)
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
        auto kind = record_kind(j.at("kind").get<std::string>());
        if (!kind)
            return Error::msg("read session record", source, "unknown kind (expected login or container)");
        r.kind = *kind;
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
        r.auth_correlation = j.value("auth_correlation", "");
        r.auth_claims = j.value("auth_claims", "");
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

namespace {

// A whole small file in one or two reads: no stream, no stat. Returns
// false with errno set when it cannot be opened or read.
bool read_small_file(int dir_fd, const char* path, std::string& text)
{
    Fd fd(::openat(dir_fd, path, O_RDONLY | O_CLOEXEC));
    if (!fd)
        return false;
    text.clear();
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd.get(), buf, sizeof(buf));
        if (n < 0)
            return false;
        if (n == 0)
            return true;
        text.append(buf, static_cast<size_t>(n));
    }
}

} // namespace

Result<std::vector<SessionRecord>> list_records(const fs::path& run_dir)
{
    // cgroupd's start reads every record: one directory read, then each
    // file relative to the directory, as few syscalls as a record allows.
    std::vector<SessionRecord> out;
    const fs::path dir = sessions_dir(run_dir);
    struct CloseDir {
        void operator()(DIR* d) const { ::closedir(d); }
    };
    std::unique_ptr<DIR, CloseDir> d(::opendir(dir.c_str()));
    if (!d) {
        if (errno == ENOENT)
            return out;
        return Error::sys("list session records", dir.string(), errno);
    }
    std::string text;
    for (;;) {
        errno = 0;
        const dirent* e = ::readdir(d.get());
        if (!e)
            break;
        std::string_view name = e->d_name;
        if (name.size() <= 5 || !name.ends_with(".json"))
            continue;
        if (!read_small_file(::dirfd(d.get()), e->d_name, text))
            continue; // removed meanwhile (a session closed), or unreadable: not listed
        if (auto r = record_from_json(text, dir.native() + "/" + e->d_name))
            out.push_back(std::move(r).value());
    }
    if (errno != 0)
        return Error::sys("list session records", dir.string(), errno);
    return out;
}

} // namespace authwall
