// SPDX-License-Identifier: Apache-2.0
// A DNS client for the loader's event loop, on c-ares: each query asks for
// the A and AAAA records of one absolute name (no search domains, no
// /etc/hosts: an address must come with its TTL), from the servers of
// [dns] or of /etc/resolv.conf. fd() is one descriptor for the loop,
// readable when a socket or a timeout needs process().
#pragma once

#include "core/base/fd.h"
#include "core/base/result.h"
#include "core/policy/config.h"
#include "loader/names.h"

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace authwall {

struct DnsResult {
    enum class Kind { Answer, NotFound, Failed } kind = Kind::Failed;
    std::vector<NameAnswer> answer;
    std::string error; // Failed: why ("timeout", "connection refused", ...)
};

class DnsClient {
  public:
    using Done = std::function<void(const std::string& name, DnsResult result)>;

    // Reads /etc/resolv.conf (when [dns] names no server): before the
    // loader confines itself.
    static Result<std::unique_ptr<DnsClient>> create(const DnsSettings& settings, Done done);
    ~DnsClient();
    DnsClient(const DnsClient&) = delete;
    DnsClient& operator=(const DnsClient&) = delete;

    int fd() const { return epoll_.get(); }
    void resolve(const std::string& name);
    void process(); // when fd() is readable
    size_t in_flight() const { return in_flight_; }
    // Processes until at most `below` queries are in flight or `limit`
    // passed (start-up).
    void wait(std::chrono::milliseconds limit, size_t below = 0);
    // Where the queries go, for the log.
    std::string servers() const;

  private:
    struct Channel;
    DnsClient(Done done, Fd epoll, Fd timer);
    void socket_state(int fd, bool readable, bool writable);
    void arm_timer();
    void finished(const std::string& name, DnsResult result);

    Done done_;
    Fd epoll_;
    Fd timer_;
    std::unique_ptr<Channel> channel_;
    size_t in_flight_ = 0;
};

} // namespace authwall
