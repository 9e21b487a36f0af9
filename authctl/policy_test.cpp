// SPDX-License-Identifier: Apache-2.0
// authctl policy test: which policy a login would get and what each layer
// of the data plane would decide on one flow, with the deciding rule.
#include "authctl/context.h"
#include "authctl/explain.h"
#include "authctl/policy_test.h"
#include "core/policy/catalog.h"
#include "core/policy/index.h"
#include "core/policy/names_file.h"
#include "core/policy/policy_file.h"

#include <netinet/in.h>
#include <pwd.h>

#include <iostream>
#include <nlohmann/json.hpp>

using namespace authwall;
namespace fs = std::filesystem;

namespace authctl {

namespace {

// What the decision is taken against: entries, index and catalog, from the
// files (compiled here) or from what the loader installed and published.
struct Generation {
    std::vector<CompiledEntry> entries;
    PolicyIndex index;
    RuleCatalog catalog;
};

Result<Generation> from_files(const Context& ctx, const std::string& path_arg)
{
    fs::path path = path_arg.empty() ? ctx.config.policy_dir : fs::path(path_arg);
    std::error_code ec;
    PolicyLoadLimits limits;
    limits.max_entries = ctx.config.policy_entries;
    PolicyLoad load = fs::is_directory(path, ec) ? load_policy_dir(path, 0, limits) : load_policy_file(path, 0, limits);
    if (!load.ok())
        return Error::msg("read policies", path.string(),
                          load.errors[0].str() + (load.errors.size() > 1 ? " (and more: authctl policy check)" : ""));
    Fallback fallback = ctx.config.unmatched;
    apply_mode_override(load.policies, fallback, ctx.config.audit_override);
    // The DNS names stand for what the loader resolved them to (none
    // without a loader): decided as the kernel would.
    auto names = read_name_addresses(ctx.config.run_dir);
    if (!names)
        return names.error();
    auto compiled = compile_policies(load.policies, fallback, {}, CompileLimits{ctx.config.policy_entries}, *names);
    if (!compiled)
        return compiled.error();
    Config config = ctx.config;
    config.unmatched = fallback;
    return Generation{compiled->entries, build_policy_index(load.policies, compiled->ids, config),
                      RuleCatalog::build(load.policies, compiled->ids, fallback)};
}

Result<Generation> live(const Context& ctx)
{
    auto maps = PinnedMaps::open(ctx.config.pin_dir);
    if (!maps)
        return maps.error();
    auto entries = maps->read_active_policies();
    if (!entries)
        return entries.error();
    auto index = read_policy_index(ctx.config.run_dir);
    if (!index)
        return index.error();
    auto catalog = read_rule_catalog(ctx.config.run_dir);
    return Generation{*entries, *index, catalog ? *catalog : RuleCatalog()};
}

Result<LoginFacts> login_facts(const PolicyTestArgs& a)
{
    LoginFacts login;
    login.user = a.user;
    login.service = a.service;
    if (!a.rhost.empty()) {
        auto addr = IpAddress::parse(a.rhost);
        if (!addr)
            return Error::msg("policy test", a.rhost, "--rhost is not an IP address");
        login.rhost = *addr;
    }
    if (!a.groups.empty()) {
        login.groups = a.groups;
        return login;
    }
    const passwd* pw = ::getpwnam(a.user.c_str());
    if (!pw)
        return login; // a user this host does not know: only the groups given
    auto groups = user_groups(a.user, pw->pw_gid);
    if (groups)
        login.groups = *groups;
    return login;
}

Result<TestFlow> flow_of(const PolicyTestArgs& a)
{
    TestFlow f;
    f.dir = a.direction == "ingress" ? AW_DIR_INGRESS : a.direction == "bind" ? AW_DIR_BIND : AW_DIR_EGRESS;
    auto addr = IpAddress::parse(a.to.at(0));
    if (!addr)
        return Error::msg("policy test", a.to[0], "--to needs an IP address first");
    f.address = *addr;
    if (a.to.size() > 1) {
        auto proto = parse_protocol(a.to[1]);
        if (!proto)
            return Error::msg("policy test", a.to[1], "not a protocol: tcp, udp, icmp, icmpv6, sctp, udplite");
        f.protocol = *proto;
    }
    if (a.to.size() > 2 && (f.protocol == IPPROTO_ICMP || f.protocol == IPPROTO_ICMPV6)) {
        auto type = parse_icmp_type(f.protocol, a.to[2]);
        if (!type)
            return Error::msg("policy test", a.to[2], "not an ICMP type (a name such as echo-request, or 0-255)");
        f.port = icmp_type_port(*type);
    } else if (a.to.size() > 2) {
        unsigned long port = 0;
        try {
            port = std::stoul(a.to[2]);
        } catch (const std::exception&) {
        }
        if (port < 1 || port > 65535)
            return Error::msg("policy test", a.to[2], "not a port (1-65535)");
        f.port = static_cast<uint16_t>(port);
    }
    return f;
}

// One layer: its policy (by the index) and its verdict.
struct Layer {
    std::string name; // "login" or "user"
    const IndexedPolicy* policy = nullptr;
    uint32_t policy_id = AW_POLICY_FALLBACK;
    std::string policy_name;
    LayerVerdict verdict;
};

nlohmann::json layer_json(const Layer& l, const RuleCatalog& catalog)
{
    nlohmann::json j{{"layer", l.name},
                     {"policy", l.policy_name},
                     {"policy_id", l.verdict.policy_id},
                     {"verdict", l.verdict.verdict()},
                     {"rule", l.verdict.rule}};
    if (!l.verdict.reason.empty())
        j["reason"] = l.verdict.reason;
    if (!l.verdict.allowed_by.empty())
        j["allowed_by"] = l.verdict.allowed_by;
    if (const RuleSource* r = catalog.find(l.verdict.policy_id, l.verdict.rule)) {
        j["rule_source"] = r->where();
        j["rule_text"] = r->text;
    }
    if (l.verdict.log)
        j["log"] = true;
    return j;
}

std::string layer_text(const Layer& l, const RuleCatalog& catalog)
{
    std::string out = l.name + " layer: policy " + l.policy_name + ": " + l.verdict.verdict();
    if (l.verdict.rule) {
        out += " by rule #" + std::to_string(l.verdict.rule);
        if (const RuleSource* r = catalog.find(l.verdict.policy_id, l.verdict.rule))
            out += " \"" + r->text + "\" (" + r->where() + ")";
    } else if (!l.verdict.reason.empty()) {
        out += " (" + l.verdict.reason + ")";
    } else if (l.verdict.allowed_by == "rhost") {
        out += " (the login's own address, from_rhost_only)";
    } else if (l.verdict.allowed_by == "reply") {
        out += " (a datagram from a peer the egress rules reach: a reply)";
    } else {
        out += " (the default)";
    }
    if (l.verdict.audit && l.verdict.refused)
        out += ": audit mode, it would pass and be reported";
    return out + "\n";
}

// Whether the user has a user layer (as the PAM module arms it): the layer
// is on and the uid is in [users] min_uid..max_uid. A user this host does
// not know is taken as having one.
bool has_user_layer(const Config& config, const std::string& user)
{
    if (!config.user_layer)
        return false;
    const passwd* pw = ::getpwnam(user.c_str());
    return !pw || (pw->pw_uid >= config.users_min_uid && pw->pw_uid <= config.users_max_uid);
}

// The layers a login of these facts meets: its login policy, then its
// user's policy when that is another one (the data plane's order).
Result<std::vector<Layer>> layers_of(const Generation& g, const LoginFacts& login, bool user_layer, std::string* note)
{
    std::vector<Layer> out;
    auto named = [&](const IndexedPolicy* p, const char* layer) -> std::optional<Layer> {
        Layer l;
        l.name = layer;
        if (p) {
            l.policy_id = p->id;
            l.policy_name = p->name;
            return l;
        }
        switch (g.index.unmatched.kind) {
        case Fallback::Kind::Pass:
            return std::nullopt;
        case Fallback::Kind::Deny:
            l.policy_name = "(unmatched: deny)";
            return l;
        case Fallback::Kind::Policy:
            l.policy_name = g.index.unmatched.policy + " (unmatched)";
            return l;
        }
        return std::nullopt;
    };
    auto login_layer = named(resolve_policy(g.index, login), "login");
    if (!login_layer)
        *note = "no policy claims this login (unmatched = \"pass\"): it gets no session";
    else if (g.index.unmatched.kind == Fallback::Kind::Deny && login_layer->policy_id == AW_POLICY_FALLBACK)
        *note = "no policy claims this login (unmatched = \"deny\"): the login is refused";
    if (login_layer)
        out.push_back(*login_layer);
    if (!user_layer)
        return out;
    auto user = named(resolve_user_policy(g.index, login), "user");
    if (user && (!login_layer || user->policy_id != login_layer->policy_id))
        out.push_back(*user);
    return out;
}

} // namespace

int cmd_policy_test(const Context& ctx, const PolicyTestArgs& args)
{
    auto generation = args.live ? live(ctx) : from_files(ctx, args.path);
    if (!generation)
        return fail(generation.error());
    auto login = login_facts(args);
    if (!login)
        return fail(login.error());
    auto flow = flow_of(args);
    if (!flow)
        return fail(flow.error());
    std::string note;
    bool exempt = is_exempt(generation->index, *login);
    std::vector<Layer> layers;
    if (!exempt) {
        auto found = layers_of(*generation, *login, has_user_layer(ctx.config, args.user), &note);
        if (!found)
            return fail(found.error());
        layers = std::move(*found);
    } else {
        note = "exempt (exempt_users, exempt_groups): not confined";
    }
    EntryIndex index(generation->entries);
    std::string verdict = "allow";
    for (auto& l : layers) {
        l.verdict = decide_flow(index, l.policy_id, *flow, login->rhost);
        if (l.verdict.verdict() == "deny" && verdict != "deny")
            verdict = "deny";
        else if (l.verdict.verdict() == "audit" && verdict == "allow")
            verdict = "audit";
        if (l.verdict.verdict() == "deny")
            break; // the first refusal is the answer
    }
    if (args.json) {
        nlohmann::json j{
            {"source", args.live ? "live" : "files"}, {"verdict", verdict}, {"layers", nlohmann::json::array()}};
        if (!note.empty())
            j["note"] = note;
        for (const auto& l : layers)
            j["layers"].push_back(layer_json(l, generation->catalog));
        std::cout << j.dump(2) << "\n";
        return 0;
    }
    if (!note.empty())
        std::cout << note << "\n";
    for (const auto& l : layers)
        std::cout << layer_text(l, generation->catalog);
    std::cout << "verdict: " << verdict << "\n";
    return 0;
}

} // namespace authctl
