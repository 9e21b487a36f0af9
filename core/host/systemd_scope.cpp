// SPDX-License-Identifier: Apache-2.0
#include "core/host/systemd_scope.h"

#include <systemd/sd-bus.h>

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <memory>

namespace authwall {

namespace {

constexpr const char* kDest = "org.freedesktop.systemd1";
constexpr const char* kPath = "/org/freedesktop/systemd1";
constexpr const char* kManager = "org.freedesktop.systemd1.Manager";

struct BusDeleter {
    void operator()(sd_bus* b) const { sd_bus_flush_close_unref(b); }
};
using Bus = std::unique_ptr<sd_bus, BusDeleter>;
struct MessageDeleter {
    void operator()(sd_bus_message* m) const { sd_bus_message_unref(m); }
};
using Message = std::unique_ptr<sd_bus_message, MessageDeleter>;
struct SlotDeleter {
    void operator()(sd_bus_slot* s) const { sd_bus_slot_unref(s); }
};
using Slot = std::unique_ptr<sd_bus_slot, SlotDeleter>;

Error bus_error(const std::string& what, const std::string& object, int r, const sd_bus_error* e = nullptr)
{
    if (e && sd_bus_error_is_set(e))
        return Error::msg(what, object, std::string(e->name) + ": " + (e->message ? e->message : ""));
    return Error::sys(what, object, -r);
}

// The outcome of the job we wait for, filled by the JobRemoved handler.
struct JobWait {
    std::string job; // object path of our job
    std::string result;
    bool done = false;
};

int on_job_removed(sd_bus_message* m, void* userdata, sd_bus_error*)
{
    auto* w = static_cast<JobWait*>(userdata);
    uint32_t id = 0;
    const char *path = nullptr, *unit = nullptr, *result = nullptr;
    if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
        return 0;
    if (!w->job.empty() && w->job == path) {
        w->result = result;
        w->done = true;
    }
    return 0;
}

// As root, systemd's private socket (what systemctl uses): no dependency
// on a D-Bus broker, and no broker policy in the way. Otherwise, or if that
// socket is not there, the system bus.
Result<Bus> connect_to_systemd()
{
    sd_bus* raw = nullptr;
    if (geteuid() == 0 && ::access("/run/systemd/private", F_OK) == 0) {
        int r = sd_bus_new(&raw);
        if (r >= 0) {
            Bus bus(raw);
            r = sd_bus_set_address(bus.get(), "unix:path=/run/systemd/private");
            if (r >= 0)
                r = sd_bus_start(bus.get());
            if (r >= 0)
                return bus;
        }
        raw = nullptr;
    }
    if (int r = sd_bus_open_system(&raw); r < 0)
        return bus_error("connect to", "systemd (private socket and system bus)", r);
    return Bus(raw);
}

// Connects, subscribes to job signals (before the call, so the signal of a
// fast job is not missed), runs `call` (which returns the job path), and
// waits for that job's JobRemoved.
template <typename Call> Status run_job(const std::string& unit, int timeout_ms, Call call)
{
    auto bus_or = connect_to_systemd();
    if (!bus_or)
        return bus_or.error();
    Bus bus = std::move(*bus_or);
    JobWait wait;
    sd_bus_slot* slot_raw = nullptr;
    if (int r = sd_bus_match_signal(bus.get(), &slot_raw, kDest, kPath, kManager, "JobRemoved", on_job_removed, &wait);
        r < 0)
        return bus_error("watch", "systemd jobs", r);
    Slot slot(slot_raw);
    sd_bus_error err{}; // SD_BUS_ERROR_NULL, without its C compound literal
    if (int r = sd_bus_call_method(bus.get(), kDest, kPath, kManager, "Subscribe", &err, nullptr, ""); r < 0) {
        Error e = bus_error("subscribe to", "systemd", r, &err);
        sd_bus_error_free(&err);
        return e;
    }
    auto job = call(bus.get());
    if (!job)
        return job.error();
    if (job->empty())
        return {}; // nothing to wait for
    wait.job = *job;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!wait.done) {
        int r = sd_bus_process(bus.get(), nullptr);
        if (r < 0)
            return bus_error("wait for", unit, r);
        if (r > 0)
            continue;
        auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            return Error::msg("wait for", unit,
                              "systemd did not finish the job within " + std::to_string(timeout_ms) + " ms");
        if (r = sd_bus_wait(bus.get(), static_cast<uint64_t>(left.count())); r < 0)
            return bus_error("wait for", unit, r);
    }
    if (wait.result != "done")
        return Error::msg("start", unit, "systemd's job ended with '" + wait.result + "' (journalctl -u " + unit + ")");
    return {};
}

} // namespace

Status start_transient_scope(const std::string& unit, const std::string& slice, pid_t pid,
                             const std::string& description, int timeout_ms)
{
    return run_job(unit, timeout_ms, [&](sd_bus* bus) -> Result<std::string> {
        sd_bus_message* raw = nullptr;
        int r = sd_bus_message_new_method_call(bus, &raw, kDest, kPath, kManager, "StartTransientUnit");
        if (r < 0)
            return bus_error("build", "StartTransientUnit", r);
        Message m(raw);
        r = sd_bus_message_append(m.get(), "ss", unit.c_str(), "fail");
        if (r >= 0)
            r = sd_bus_message_open_container(m.get(), 'a', "(sv)");
        if (r >= 0)
            r = sd_bus_message_append(m.get(), "(sv)(sv)(sv)(sv)", "Description", "s", description.c_str(), "Slice",
                                      "s", slice.c_str(), "PIDs", "au", 1, static_cast<uint32_t>(pid), "CollectMode",
                                      "s", "inactive-or-failed");
        if (r >= 0)
            r = sd_bus_message_close_container(m.get());
        if (r >= 0)
            r = sd_bus_message_append(m.get(), "a(sa(sv))", 0);
        if (r < 0)
            return bus_error("build", "StartTransientUnit", r);
        sd_bus_error err{}; // SD_BUS_ERROR_NULL, without its C compound literal
        sd_bus_message* reply_raw = nullptr;
        r = sd_bus_call(bus, m.get(), 0, &err, &reply_raw);
        if (r < 0) {
            Error e = bus_error("start", unit, r, &err);
            sd_bus_error_free(&err);
            return e;
        }
        Message reply(reply_raw);
        const char* job = nullptr;
        if (r = sd_bus_message_read(reply.get(), "o", &job); r < 0)
            return bus_error("read", "StartTransientUnit reply", r);
        return std::string(job);
    });
}

Status stop_unit(const std::string& unit, int timeout_ms)
{
    return run_job(unit, timeout_ms, [&](sd_bus* bus) -> Result<std::string> {
        sd_bus_error err{}; // SD_BUS_ERROR_NULL, without its C compound literal
        sd_bus_message* reply_raw = nullptr;
        int r = sd_bus_call_method(bus, kDest, kPath, kManager, "StopUnit", &err, &reply_raw, "ss", unit.c_str(),
                                   "replace");
        if (r < 0) {
            bool gone = sd_bus_error_has_name(&err, "org.freedesktop.systemd1.NoSuchUnit");
            Error e = bus_error("stop", unit, r, &err);
            sd_bus_error_free(&err);
            if (gone)
                return std::string();
            return e;
        }
        Message reply(reply_raw);
        const char* job = nullptr;
        if (r = sd_bus_message_read(reply.get(), "o", &job); r < 0)
            return bus_error("read", "StopUnit reply", r);
        return std::string(job);
    });
}

} // namespace authwall
