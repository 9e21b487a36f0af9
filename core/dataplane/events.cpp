// SPDX-License-Identifier: Apache-2.0
#include "core/dataplane/events.h"

#include "core/base/fd.h"
#include "core/dataplane/maps.h"
#include "core/dataplane/pins.h"
#include "core/policy/rule.h"

#include <bpf/bpf.h>
#include <netinet/in.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>

#include <cstring>

namespace authwall {

DecisionEvent DecisionEvent::from_abi(const aw_event& e)
{
    DecisionEvent d;
    d.timestamp_ns = e.timestamp_ns;
    d.session_id = e.session_id;
    d.cgroup_id = e.cgroup_id;
    d.pid = e.pid;
    d.policy_id = e.policy_id;
    d.hook = e.hook;
    d.reason = e.reason;
    d.proto = e.proto;
    d.family = e.family;
    d.port = e.port;
    d.uid = e.uid;
    d.layer = e.layer;
    d.verdict = e.verdict;
    d.rule = e.rule;
    // The task's name is whatever the task set (prctl): printable ASCII
    // only, the rest as '?', so it is safe in any log.
    for (size_t i = 0; i < sizeof(e.comm) && e.comm[i]; ++i) {
        char c = e.comm[i];
        d.comm.push_back(c >= 0x20 && c < 0x7f ? c : '?');
    }
    std::array<uint8_t, 16> b{};
    std::memcpy(b.data(), e.addr, 16);
    d.address = IpAddress(b);
    return d;
}

std::optional<std::string> DecisionEvent::icmp_type() const
{
    if ((proto != IPPROTO_ICMP && proto != IPPROTO_ICMPV6) || port == 0 || hook == AW_HOOK_SOCK_CREATE)
        return std::nullopt;
    return icmp_type_name(static_cast<uint8_t>(proto), static_cast<uint8_t>(port - 1));
}

std::string DecisionEvent::str() const
{
    std::string target;
    if (hook == AW_HOOK_SOCK_CREATE)
        target = fmt::format("family {} type {}", family, proto);
    else if (auto type = icmp_type(); type)
        target = fmt::format("{} {} {}", address.str(), protocol_name(static_cast<uint8_t>(proto)), *type);
    else
        target = fmt::format("{} {} port {}", address.str(), protocol_name(static_cast<uint8_t>(proto)), port);
    return fmt::format("{} layer={} session={} cgroup={} uid={} pid={} comm={} hook={} reason={} policy={} rule={} {}",
                       verdict_name(), layer_name(layer), session_id, cgroup_id, uid, pid, comm.empty() ? "-" : comm,
                       hook_name(hook), verdict == AW_EVENT_LOG ? "-" : reason_name(reason), policy_id, rule, target);
}

struct EventReader::State {
    Fd map;
    Handler handler;
    ring_buffer* rb = nullptr;
    ~State()
    {
        if (rb)
            ring_buffer__free(rb);
    }
};

namespace {
int on_sample(void* ctx, void* data, size_t size)
{
    auto* state = static_cast<EventReader::Handler*>(ctx);
    if (size < sizeof(aw_event))
        return 0;
    aw_event e{};
    std::memcpy(&e, data, sizeof(e));
    (*state)(DecisionEvent::from_abi(e));
    return 0;
}
} // namespace

EventReader::EventReader(EventReader&&) noexcept = default;
EventReader& EventReader::operator=(EventReader&&) noexcept = default;
EventReader::~EventReader() = default;

Result<EventReader> EventReader::open(const std::filesystem::path& pin_dir, Handler handler)
{
    EventReader reader;
    reader.state_ = std::make_unique<State>();
    auto path = map_pin_path(pin_dir, "events");
    reader.state_->map = Fd(bpf_obj_get(path.c_str()));
    if (!reader.state_->map)
        return Error::sys("open pinned map", path.string(), errno);
    reader.state_->handler = std::move(handler);
    reader.state_->rb = ring_buffer__new(reader.state_->map.get(), on_sample, &reader.state_->handler, nullptr);
    if (!reader.state_->rb)
        return Error::sys("open ring buffer", path.string(), errno);
    return reader;
}

int EventReader::epoll_fd() const
{
    return ring_buffer__epoll_fd(state_->rb);
}

Result<int> EventReader::poll(int timeout_ms)
{
    int n = ring_buffer__poll(state_->rb, timeout_ms);
    if (n < 0 && n != -EINTR)
        return Error::sys("read events", "events", -n);
    return n < 0 ? 0 : n;
}

} // namespace authwall
