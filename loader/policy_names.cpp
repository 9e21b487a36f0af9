// SPDX-License-Identifier: Apache-2.0
#include "loader/policy_names.h"

#include "core/base/files.h"
#include "core/policy/names_file.h"

#include <spdlog/spdlog.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>

namespace authwall {

namespace {

std::string join(const std::set<IpAddress>& addresses)
{
    std::string out;
    for (const auto& a : addresses)
        out += (out.empty() ? "" : ", ") + a.str();
    return out.empty() ? "none" : out;
}

} // namespace

std::set<std::string> policy_names(const std::vector<Policy>& policies)
{
    std::set<std::string> out;
    for (const auto& p : policies)
        for (const auto* rules : {&p.egress.allow, &p.ingress.allow})
            for (const auto& r : *rules)
                if (!r.host.empty() && !is_wildcard_name(r.host))
                    out.insert(r.host);
    return out;
}

Result<std::unique_ptr<PolicyNames>> PolicyNames::create(const DnsSettings& settings, std::filesystem::path run_dir)
{
    Fd schedule(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
    if (!schedule)
        return Error::sys("start", "the DNS schedule", errno);
    std::unique_ptr<PolicyNames> names(new PolicyNames(NameTable(settings), std::move(schedule), std::move(run_dir)));
    names->settings_ = settings;
    auto* self = names.get();
    auto client = DnsClient::create(settings, [self](const std::string& name, DnsResult r) { self->answer(name, r); });
    if (!client)
        return client.error();
    names->client_ = std::move(client).value();
    return names;
}

void PolicyNames::use(const std::vector<Policy>& policies, const DnsSettings& settings)
{
    settings_ = settings;
    table_.set_settings(settings);
    auto wanted = policy_names(policies);
    table_.want(wanted, NameTable::Clock::now());
    // The new names in batches (ask_due keeps kMaxInFlight asked), for
    // timeout_ms at most in all: what is left is asked from the event loop.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(settings.timeout_ms);
    size_t due = table_.due(NameTable::Clock::now()).size(); // new, or to be asked again
    ask_due();
    if (due > 0)
        spdlog::debug("dns: asking {} for {} of {} name(s)", client_->servers(), due, wanted.size());
    while (client_->in_flight() > 0) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0)
            break;
        // Until half a full batch is answered (names wait for room), else
        // until every answer came: waiting for fewer than are in flight
        // would return at once, and spin past the answers to the deadline.
        client_->wait(left, client_->in_flight() >= kMaxInFlight ? kMaxInFlight / 2 : 0);
        ask_due();
    }
    arm();
}

NameAddresses PolicyNames::addresses()
{
    compiled_ = table_.in_force(NameTable::Clock::now());
    publish();
    return compiled_;
}

bool PolicyNames::ready()
{
    uint64_t expirations = 0;
    (void)!::read(schedule_.get(), &expirations, sizeof(expirations));
    client_->process();
    ask_due();
    bool changed = table_.in_force(NameTable::Clock::now()) != compiled_;
    if (!changed)
        publish(); // the times and errors moved on (else addresses() publishes)
    arm();
    return changed;
}

void PolicyNames::answer(const std::string& name, DnsResult r)
{
    auto now = NameTable::Clock::now();
    const NameTable::Entry* before = table_.entry(name);
    std::set<IpAddress> previous = before ? before->last_answer : std::set<IpAddress>{};
    unsigned failures = before ? before->failures : 0;
    bool answered_before = before && before->last_good; // read now: the table changes below
    switch (r.kind) {
    case DnsResult::Kind::Answer:
        table_.answered(name, r.answer, now);
        if (const auto* e = table_.entry(name); e && e->last_answer != previous)
            spdlog::info("dns: {} is {}", name, join(e->last_answer));
        if (r.answer.size() > settings_.max_addresses)
            spdlog::warn("dns: {} has {} addresses; the first {} are allowed (dns.max_addresses)", name,
                         r.answer.size(), settings_.max_addresses);
        break;
    case DnsResult::Kind::NotFound:
        table_.not_found(name, now);
        if (!previous.empty() || !answered_before)
            spdlog::warn("dns: {} has no address (no such name, or no A/AAAA record); {} leave(s) after the grace "
                         "period",
                         name, join(previous));
        break;
    case DnsResult::Kind::Failed:
        table_.failed(name, r.error, now);
        if (failures == 0)
            spdlog::warn("dns: {}: {}; its last good addresses ({}) stay for up to {} s", name, r.error, join(previous),
                         settings_.stale_sec);
        else
            spdlog::debug("dns: {}: {} ({} failures in a row)", name, r.error, failures + 1);
        break;
    }
}

void PolicyNames::ask_due()
{
    for (const auto& name : table_.due(NameTable::Clock::now())) {
        // A burst of thousands of datagrams overflows the server's socket
        // (bench_names: 370 of 1 000 names answered in 5 s); the rest wait
        // for answers to come.
        if (client_->in_flight() >= kMaxInFlight)
            break;
        table_.asked(name);
        client_->resolve(name);
    }
}

void PolicyNames::note_session_answers(const SessionAnswerCounts& counts)
{
    session_answers_ = counts;
    unpublished_ = true;
    if (NameTable::Clock::now() - published_at_ >= kAnswersPublished)
        publish();
    else
        arm();
}

void PolicyNames::arm()
{
    itimerspec its{};
    auto now = NameTable::Clock::now();
    auto next = table_.next_event(now);
    if (unpublished_) // ready() publishes them
        next = std::min(next.value_or(NameTable::Clock::time_point::max()), published_at_ + kAnswersPublished);
    if (next) {
        // Names due while the batch is full: their answers wake the loop.
        if (client_->in_flight() >= kMaxInFlight)
            next = std::max(*next, now + std::chrono::milliseconds(50));
        auto wait = std::max(*next - now, NameTable::Clock::duration(std::chrono::milliseconds(1)));
        auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
        its.it_value.tv_sec = ns / 1'000'000'000;
        its.it_value.tv_nsec = ns % 1'000'000'000;
    }
    timerfd_settime(schedule_.get(), 0, &its, nullptr);
}

void PolicyNames::publish()
{
    auto state = table_.state(NameTable::Clock::now());
    if (session_answers_)
        state["session_answers"] = {{"answers", session_answers_->answers},
                                    {"ignored", session_answers_->ignored},
                                    {"granted", session_answers_->granted}};
    published_at_ = NameTable::Clock::now();
    unpublished_ = false;
    auto text = state.dump(2) + "\n";
    if (auto st = write_file_atomic(names_file_path(run_dir_), text, 0644); !st)
        spdlog::debug("dns: {}", st.error().message());
}

} // namespace authwall
