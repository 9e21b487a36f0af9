// SPDX-License-Identifier: Apache-2.0
#include "loader/session_answers.h"

#include "core/dataplane/pins.h"

#include <arpa/inet.h>
#include <ares.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <netdb.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>

namespace authwall {

namespace {

uint64_t monotonic_ns()
{
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts); // bpf_ktime_get_ns's clock
    return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

void add_rules(std::vector<NameRuleGrant>& into, const RuleSet& set, uint8_t dir)
{
    for (const auto& r : set.allow) {
        if (r.host.empty())
            continue;
        NameRuleGrant g;
        g.pattern = r.host;
        g.grant.rule = r.id;
        g.grant.proto = r.protocol;
        g.grant.port_first = r.ports.first;
        g.grant.port_last = r.ports.last;
        g.grant.dir = dir;
        into.push_back(g);
    }
}

bool same_grant(const aw_name_grant& a, const aw_name_grant& b)
{
    return a.rule == b.rule && a.dir == b.dir && a.proto == b.proto && a.port_first == b.port_first &&
           a.port_last == b.port_last;
}

// The A (or AAAA) records of a response, after CNAMEs.
template <typename Ttl, typename Parse>
void read_records(const uint8_t* data, size_t length, Parse parse, std::vector<NameAnswer>& out)
{
    Ttl ttls[64];
    int n = 64;
    hostent* host = nullptr;
    int r = parse(data, static_cast<int>(length), &host, ttls, &n);
    if (host)
        ares_free_hostent(host);
    if (r != ARES_SUCCESS)
        return;
    for (int i = 0; i < n; ++i) {
        NameAnswer a;
        a.ttl = std::chrono::seconds(std::max(ttls[i].ttl, 0));
        if constexpr (std::is_same_v<Ttl, ares_addrttl>) {
            a.address = IpAddress::v4(ntohl(ttls[i].ipaddr.s_addr));
        } else {
            std::array<uint8_t, 16> bytes{};
            std::memcpy(bytes.data(), &ttls[i].ip6addr, 16);
            a.address = IpAddress(bytes);
        }
        out.push_back(a);
    }
}

} // namespace

PolicyNameRules policy_name_rules(const std::vector<Policy>& policies, const std::map<std::string, uint32_t>& ids,
                                  const Fallback& fallback)
{
    PolicyNameRules out;
    for (const auto& p : policies) {
        auto id = ids.find(p.name);
        if (id == ids.end())
            continue;
        std::vector<NameRuleGrant> rules;
        add_rules(rules, p.egress, AW_DIR_EGRESS);
        add_rules(rules, p.ingress, AW_DIR_INGRESS);
        if (rules.empty())
            continue;
        if (fallback.kind == Fallback::Kind::Policy && fallback.policy == p.name)
            out[AW_POLICY_FALLBACK] = rules;
        out[id->second] = std::move(rules);
    }
    return out;
}

bool name_matches(const std::string& pattern, const std::string& name)
{
    if (!is_wildcard_name(pattern))
        return pattern == name;
    std::string_view suffix = std::string_view(pattern).substr(1); // ".example.com"
    return name.size() > suffix.size() && name.ends_with(suffix);
}

std::optional<DnsResponse> parse_dns_response(const uint8_t* data, size_t length)
{
    // A response (QR), no error (RCODE 0), one question.
    if (length < 12 || length > 65535 || !(data[2] & 0x80) || (data[3] & 0x0f) != 0 || data[4] != 0 || data[5] != 1)
        return std::nullopt;
    char* asked = nullptr;
    long used = 0;
    if (ares_expand_name(data + 12, data, static_cast<int>(length), &asked, &used) != ARES_SUCCESS)
        return std::nullopt;
    DnsResponse out;
    out.name = asked;
    ares_free_string(asked);
    std::transform(out.name.begin(), out.name.end(), out.name.begin(), [](unsigned char c) { return std::tolower(c); });
    if (out.name.ends_with('.'))
        out.name.pop_back();
    read_records<ares_addrttl>(data, length, ares_parse_a_reply, out.answer);
    read_records<ares_addr6ttl>(data, length, ares_parse_aaaa_reply, out.answer);
    return out;
}

size_t merge_grants(aw_name_seen& into, const std::optional<aw_name_seen>& had,
                    const std::vector<aw_name_grant>& grants, uint64_t expires_ns, uint64_t now_ns)
{
    std::vector<aw_name_grant> all(grants.begin(), grants.end());
    into = aw_name_seen{};
    into.expires_ns = expires_ns;
    if (had && had->expires_ns > now_ns) {
        into.expires_ns = std::max<uint64_t>(expires_ns, had->expires_ns);
        for (const auto& g : had->grants)
            if (g.rule)
                all.push_back(g);
    }
    size_t kept = 0, dropped = 0;
    for (const auto& g : all) {
        bool repeat =
            std::any_of(into.grants, into.grants + kept, [&](const aw_name_grant& k) { return same_grant(k, g); });
        if (repeat)
            continue;
        if (kept == AW_NAME_GRANTS) {
            ++dropped;
            continue;
        }
        into.grants[kept++] = g;
    }
    return dropped;
}

Result<std::unique_ptr<SessionAnswers>> SessionAnswers::open(const std::filesystem::path& pin_dir, PinnedMaps& maps)
{
    int fd = maps.map_fd(MapId::DnsAnswers);
    if (fd < 0)
        return std::unique_ptr<SessionAnswers>();
    std::unique_ptr<SessionAnswers> s(new SessionAnswers(maps));
    s->map_fd_ = fd;
    s->rb_ = ring_buffer__new(fd, on_sample, s.get(), nullptr);
    if (!s->rb_)
        return Error::sys("open ring buffer", map_pin_path(pin_dir, "dns_answers").string(), errno);
    return s;
}

SessionAnswers::~SessionAnswers()
{
    if (rb_)
        ring_buffer__free(rb_);
}

int SessionAnswers::epoll_fd() const
{
    return ring_buffer__epoll_fd(rb_);
}

void SessionAnswers::poll()
{
    if (int n = ring_buffer__poll(rb_, 0); n < 0 && n != -EINTR)
        spdlog::warn("dns: reading sessions' answers: {}", std::strerror(-n));
}

int SessionAnswers::on_sample(void* self, void* data, size_t size)
{
    if (size >= sizeof(aw_dns_answer))
        static_cast<SessionAnswers*>(self)->answer(*static_cast<const aw_dns_answer*>(data));
    return 0;
}

void SessionAnswers::answer(const aw_dns_answer& a)
{
    ++counts_.answers;
    std::array<uint8_t, 16> bytes{};
    std::memcpy(bytes.data(), a.server, 16);
    IpAddress server(bytes);
    if (std::none_of(settings_.observe_from.begin(), settings_.observe_from.end(),
                     [&](const Prefix& p) { return p.contains(server); })) {
        ++counts_.ignored;
        spdlog::debug("dns: session {}: an answer from {}, not in dns.observe_from", a.session_id, server.str());
        return;
    }
    auto rules = rules_.find(a.policy_id);
    auto response = parse_dns_response(a.payload, std::min<size_t>(a.length, AW_DNS_ANSWER_MAX));
    std::vector<aw_name_grant> grants;
    if (rules != rules_.end() && response)
        for (const auto& r : rules->second)
            if (name_matches(r.pattern, response->name))
                grants.push_back(r.grant);
    if (grants.empty() || response->answer.empty()) {
        ++counts_.ignored;
        spdlog::debug("dns: session {}: an answer {}", a.session_id,
                      !response ? "that is no well-formed response"
                                : "for " + response->name + ", which no rule names");
        return;
    }
    uint64_t now = monotonic_ns();
    for (const auto& addr : response->answer) {
        auto ttl = std::clamp(addr.ttl, std::chrono::seconds(settings_.min_ttl_sec),
                              std::chrono::seconds(settings_.max_ttl_sec));
        uint64_t expires = now + static_cast<uint64_t>((ttl.count() + settings_.grace_sec)) * 1'000'000'000ull;
        auto had = maps_.name_seen(a.session_id, addr.address);
        aw_name_seen seen{};
        if (size_t dropped = merge_grants(seen, had ? *had : std::nullopt, grants, expires, now))
            spdlog::warn("dns: session {}: {} has more than {} rules allowing it; {} left out", a.session_id,
                         addr.address.str(), AW_NAME_GRANTS, dropped);
        if (auto st = maps_.write_name_seen(a.session_id, addr.address, seen); !st) {
            spdlog::warn("dns: session {}: {}", a.session_id, st.error().message());
            continue;
        }
        ++counts_.granted;
        spdlog::debug("dns: session {}: {} is {} for {} s", a.session_id, response->name, addr.address.str(),
                      ttl.count() + settings_.grace_sec);
    }
}

} // namespace authwall
