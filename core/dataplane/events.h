// SPDX-License-Identifier: Apache-2.0
// Reading decision events (denials, audited would-be denials, logged
// matches) from the pinned ring buffer.
#pragma once

#include "core/base/abi.h"
#include "core/dataplane/maps.h"
#include "core/base/net.h"
#include "core/base/result.h"

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>

struct ring_buffer;

namespace authwall {

struct DecisionEvent {
    uint64_t timestamp_ns = 0; // CLOCK_MONOTONIC
    uint64_t session_id = 0;
    uint64_t cgroup_id = 0;
    uint32_t pid = 0;
    uint32_t policy_id = 0;
    unsigned hook = 0;
    unsigned reason = 0;
    unsigned proto = 0;
    unsigned family = 0;
    uint16_t port = 0;
    IpAddress address;
    uint32_t uid = 0;     // the task's real uid, or the socket's owner
    unsigned layer = 0;   // enum aw_layer that decided
    unsigned verdict = 0; // enum aw_event_verdict
    uint32_t rule = 0;    // the rule's number in the policy (RuleCatalog); 0: a default
    std::string comm;     // the task's name; empty in the packet hooks

    static DecisionEvent from_abi(const aw_event& e);
    const char* verdict_name() const { return event_verdict_name(verdict); }
    std::string str() const; // one log line
    // ICMP and ICMPv6 carry their type in `port` (type + 1, as the rules
    // do): its name ("echo-request") or number; nullopt for other protocols.
    std::optional<std::string> icmp_type() const;
};

class EventReader {
  public:
    using Handler = std::function<void(const DecisionEvent&)>;

    static Result<EventReader> open(const std::filesystem::path& pin_dir, Handler handler);
    EventReader(EventReader&&) noexcept;
    EventReader& operator=(EventReader&&) noexcept;
    ~EventReader();

    int epoll_fd() const; // readable when events are waiting
    // Waits up to timeout_ms (0 = do not wait) and hands over every event.
    Result<int> poll(int timeout_ms);

  private:
    EventReader() = default;
    struct State;
    std::unique_ptr<State> state_;
};

} // namespace authwall
