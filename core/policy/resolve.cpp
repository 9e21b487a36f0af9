// SPDX-License-Identifier: Apache-2.0
// From the documents of a load to policies: named sets resolved (each once,
// references followed, cycles refused), bases folded in (extends), every
// written rule expanded to its entries and numbered, allows that a deny
// covers reported. See docs/POLICY.md, "Named sets" and "Composition".
#include "core/policy/written.h"

#include <algorithm>
#include <map>
#include <set>

namespace authwall::detail {

namespace {

// A diagnostic at `at`, `column` characters into the string written there
// (0: at the string itself).
PolicyDiagnostic diagnostic(const Place& at, size_t column, std::string message)
{
    return {at.file, at.line, at.column + static_cast<unsigned>(column), std::move(message)};
}

std::string chain(const std::vector<std::string>& stack, size_t from, const std::string& last)
{
    std::string out;
    for (size_t i = from; i < stack.size(); ++i)
        out += stack[i] + " -> ";
    return out + last;
}

// Every set of the load by name, resolved on first use.
class SetTable {
  public:
    SetTable(const std::vector<PolicyDocument>& documents, std::vector<PolicyDiagnostic>& errors) : errors_(errors)
    {
        for (const auto& d : documents)
            for (const auto& s : d.sets) {
                auto [it, fresh] = written_.try_emplace(s.name, &s);
                if (!fresh)
                    errors_.push_back(
                        diagnostic(s.at, 0, "set '" + s.name + "' is already defined at " + it->second->at.str()));
            }
        for (const auto& [name, set] : written_)
            find(name);
    }

    SetLookup lookup()
    {
        return [this](std::string_view name) { return find(name); };
    }

  private:
    const NamedSet* find(std::string_view name)
    {
        if (auto done = resolved_.find(name); done != resolved_.end()) {
            cycle_reported_ |= done->second.broken;
            return &done->second;
        }
        auto written = written_.find(name);
        if (written == written_.end())
            return nullptr;
        auto on_stack = std::find(stack_.begin(), stack_.end(), name);
        if (on_stack != stack_.end()) {
            // Reported once, where the reference that closes the cycle is.
            errors_.push_back(diagnostic(*member_, 0,
                                         "set '" + std::string(name) + "' includes itself: " +
                                             chain(stack_, on_stack - stack_.begin(), std::string(name))));
            cycle_reported_ = true;
            return &broken_;
        }
        const NamedSet& set = resolve(*written->second);
        // A broken member set reported its own error: none again here.
        cycle_reported_ |= set.broken;
        return &set;
    }

    const NamedSet& resolve(const WrittenSet& s)
    {
        stack_.push_back(s.name);
        NamedSet set;
        bool first = true;
        for (const auto& m : s.members) {
            const Place* outer = member_;
            member_ = &m.at;
            cycle_reported_ = false;
            auto e = parse_set_member(m.value, lookup(), set, first);
            member_ = outer;
            first = false;
            if (!e)
                continue;
            set.broken = true;
            if (!cycle_reported_)
                errors_.push_back(diagnostic(m.at, e->column, "in set '" + s.name + "': " + e->message));
            cycle_reported_ = false;
        }
        stack_.pop_back();
        return resolved_.emplace(s.name, std::move(set)).first->second;
    }

    std::vector<PolicyDiagnostic>& errors_;
    std::map<std::string, const WrittenSet*, std::less<>> written_;
    std::map<std::string, NamedSet, std::less<>> resolved_;
    std::vector<std::string> stack_; // sets being resolved, outermost first
    const Place* member_ = nullptr;  // the member being read
    bool cycle_reported_ = false;
    NamedSet broken_{NamedSet::Kind::Address, {}, {}, true};
};

// A policy with its bases folded in, and where its own allows start (the
// allows a deny may not cover are the policy's own: a deny of the child
// over an allow of the base is an override).
struct Flat {
    WrittenPolicy policy;
    size_t own_allow[3] = {0, 0, 0}; // egress, ingress, bind
    size_t own_deny[3] = {0, 0, 0};
};

bool same_place(const Place& a, const Place& b)
{
    return a.file == b.file && a.line == b.line && a.column == b.column;
}

void append_rules(std::vector<WrittenRule>& into, const std::vector<WrittenRule>& from)
{
    for (const auto& r : from) {
        bool seen = std::any_of(into.begin(), into.end(), [&](const WrittenRule& x) { return same_place(x.at, r.at); });
        if (!seen) // a base reached twice (a diamond) gives its rules once
            into.push_back(r);
    }
}

void overlay_direction(WrittenDirection& into, const WrittenDirection& from)
{
    if (from.default_verdict)
        into.default_verdict = from.default_verdict;
    append_rules(into.allow, from.allow);
    append_rules(into.deny, from.deny);
}

// What `from` enforces over what `into` holds: its values win, its rules
// come after, its denied families add up.
void overlay(WrittenPolicy& into, const WrittenPolicy& from)
{
    if (from.audit)
        into.audit = from.audit;
    if (from.from_rhost_only)
        into.from_rhost_only = from.from_rhost_only;
    if (from.max_duration)
        into.max_duration = from.max_duration;
    overlay_direction(into.egress, from.egress);
    overlay_direction(into.ingress, from.ingress);
    overlay_direction(into.bind, from.bind);
    into.denied_families |= from.denied_families;
    into.deny_raw |= from.deny_raw;
}

// Every policy of the load by name, flattened on first use.
class PolicyTable {
  public:
    PolicyTable(const std::vector<PolicyDocument>& documents, std::vector<PolicyDiagnostic>& errors) : errors_(errors)
    {
        for (const auto& d : documents)
            for (const auto& p : d.policies) {
                auto [it, fresh] = written_.try_emplace(p.name, &p);
                if (fresh)
                    order_.push_back(&p);
                else
                    errors_.push_back(
                        diagnostic(p.at, 0, "policy '" + p.name + "' is already defined at " + it->second->at.str()));
            }
    }

    const std::vector<const WrittenPolicy*>& policies() const { return order_; }

    const Flat* flat(const std::string& name)
    {
        if (auto done = flat_.find(name); done != flat_.end())
            return &done->second;
        return &flatten(*written_.at(name));
    }

  private:
    const Flat* base(const Written<std::string>& ref)
    {
        auto written = written_.find(ref.value);
        if (written == written_.end()) {
            errors_.push_back(diagnostic(ref.at, 0, "unknown base policy '" + ref.value + "' in extends"));
            return nullptr;
        }
        auto on_stack = std::find(stack_.begin(), stack_.end(), ref.value);
        if (on_stack != stack_.end()) {
            errors_.push_back(diagnostic(
                ref.at, 0,
                "policy '" + ref.value + "' extends itself: " + chain(stack_, on_stack - stack_.begin(), ref.value)));
            return nullptr;
        }
        return flat(ref.value);
    }

    const Flat& flatten(const WrittenPolicy& p)
    {
        stack_.push_back(p.name);
        Flat f;
        for (const auto& ref : p.extends)
            if (const Flat* b = base(ref))
                overlay(f.policy, b->policy);
        f.own_allow[0] = f.policy.egress.allow.size();
        f.own_allow[1] = f.policy.ingress.allow.size();
        f.own_allow[2] = f.policy.bind.allow.size();
        f.own_deny[0] = f.policy.egress.deny.size();
        f.own_deny[1] = f.policy.ingress.deny.size();
        f.own_deny[2] = f.policy.bind.deny.size();
        overlay(f.policy, p);
        f.policy.name = p.name;
        f.policy.at = p.at;
        f.policy.abstract = p.abstract;
        f.policy.extends = p.extends;
        f.policy.priority = p.priority;
        f.policy.match = p.match;
        f.policy.has_match = p.has_match;
        stack_.pop_back();
        return flat_.emplace(p.name, std::move(f)).first->second;
    }

    std::vector<PolicyDiagnostic>& errors_;
    std::map<std::string, const WrittenPolicy*> written_;
    std::vector<const WrittenPolicy*> order_;
    std::map<std::string, Flat> flat_;
    std::vector<std::string> stack_;
};

// One written rule's entries within its direction's allow or deny list.
struct Span {
    size_t begin = 0, end = 0;
    const WrittenRule* written = nullptr;
    bool own = false;
};

// Where a DNS name may not stand (docs/POLICY.md, "DNS names").
std::optional<std::string> name_refused(bool bind, bool deny)
{
    if (bind)
        return "a DNS name is a remote host's, not a local address: only in egress and ingress";
    if (deny)
        return "a DNS name can only allow: denying the addresses a name has now leaves every other name of the "
               "same host open (deny the addresses, or allow only what is needed)";
    return std::nullopt;
}

// Expands and numbers the rules of one policy, counting every entry of the
// load against the limits.
class Expander {
  public:
    Expander(SetTable& sets, const PolicyLoadLimits& limits, std::vector<PolicyDiagnostic>& errors)
        : sets_(sets.lookup()), limits_(limits), errors_(errors)
    {
    }

    void rules(const std::vector<WrittenRule>& written, size_t own_from, std::vector<Rule>& into,
               std::vector<Span>& spans, bool deny = false)
    {
        for (size_t i = 0; i < written.size(); ++i) {
            const WrittenRule& w = written[i];
            uint32_t id = ++count_;
            if (total_ > limits_.max_entries)
                return; // reported once; expanding more only costs memory
            RuleError re;
            auto entries = parse_rule_entries(w.text, sets_, &re, limits_.max_rule_entries);
            if (!entries) {
                errors_.push_back(diagnostic(w.at, re.column, "in rule \"" + w.text + "\": " + re.message));
                continue;
            }
            if (!entries->empty() && !entries->front().host.empty()) {
                if (auto why = name_refused(bind_, deny)) {
                    errors_.push_back(diagnostic(w.at, 1, "in rule \"" + w.text + "\": " + *why));
                    continue;
                }
            }
            if (bind_ && !entries->empty() && entries->front().rhost) {
                errors_.push_back(diagnostic(w.at, 1,
                                             "in rule \"" + w.text +
                                                 "\": $rhost is the login's remote address, not a local one: "
                                                 "only in egress and ingress"));
                continue;
            }
            total_ += entries->size();
            if (total_ > limits_.max_entries)
                errors_.push_back(diagnostic(w.at, 0,
                                             "the policies expand to more than " + std::to_string(limits_.max_entries) +
                                                 " rule entries (limits.policy_entries) at this rule"));
            Span span{into.size(), into.size() + entries->size(), &w, i >= own_from};
            for (auto& r : *entries) {
                r.id = id;
                r.file = w.at.file;
                r.line = w.at.line;
                r.column = w.at.column;
                r.log = w.log;
                into.push_back(std::move(r));
            }
            spans.push_back(span);
        }
    }

    void start_policy() { count_ = 0; }
    void in_bind(bool bind) { bind_ = bind; }

  private:
    SetLookup sets_;
    const PolicyLoadLimits& limits_;
    std::vector<PolicyDiagnostic>& errors_;
    uint32_t count_ = 0;
    size_t total_ = 0;
    bool bind_ = false;
};

bool entries_covered(const std::vector<Rule>& allow, const Span& a, const std::vector<Rule>& deny,
                     const std::vector<const Span*>& by)
{
    for (size_t i = a.begin; i < a.end; ++i) {
        bool covered = false;
        for (const Span* d : by)
            for (size_t j = d->begin; j < d->end && !covered; ++j)
                covered = allow[i].covered_by(deny[j]);
        if (!covered)
            return false;
    }
    return true;
}

bool same_entries(const std::vector<Rule>& allow, const Span& a, const std::vector<Rule>& deny, const Span& d)
{
    if (a.end - a.begin != d.end - d.begin)
        return false;
    for (size_t i = 0; i < a.end - a.begin; ++i) {
        const Rule& x = allow[a.begin + i];
        const Rule& y = deny[d.begin + i];
        if (x.prefix != y.prefix || x.host != y.host || x.protocol != y.protocol || x.ports != y.ports)
            return false;
    }
    return true;
}

std::string deny_name(const Span& d)
{
    return "\"" + d.written->text + "\"" + (d.own ? "" : " (" + d.written->at.str() + ")");
}

// An allow of the policy's own that its denies (its own or its bases')
// cover entirely can never take effect: deny would win silently, and the
// operator meant something else. A deny covering only some entries of an
// allow (a set that holds a denied address) is a carve-out.
void check_covered(const RuleSet& set, const std::vector<Span>& allows, const std::vector<Span>& denies,
                   const std::string& where, std::vector<PolicyDiagnostic>& errors)
{
    std::vector<const Span*> all;
    for (const auto& d : denies)
        all.push_back(&d);
    for (const auto& a : allows) {
        if (!a.own || a.begin == a.end)
            continue;
        const Place& at = a.written->at;
        std::string text = "\"" + a.written->text + "\"";
        bool reported = false;
        for (const auto& d : denies) {
            if (!entries_covered(set.allow, a, set.deny, {&d}))
                continue;
            if (d.own && same_entries(set.allow, a, set.deny, d))
                errors.push_back(diagnostic(at, 0, where + ": " + text + " is both allowed and denied"));
            else
                errors.push_back(diagnostic(
                    at, 0, where + ": allow " + text + " can never match: deny " + deny_name(d) + " covers it"));
            reported = true;
            break;
        }
        if (!reported && !all.empty() && entries_covered(set.allow, a, set.deny, all))
            errors.push_back(diagnostic(
                at, 0, where + ": allow " + text + " can never match: the denies of this direction cover it"));
    }
}

void build_direction(Expander& expand, const WrittenDirection& w, size_t own_allow, size_t own_deny, RuleSet& set,
                     const std::string& where, std::vector<PolicyDiagnostic>& errors)
{
    if (w.default_verdict)
        set.default_verdict = w.default_verdict->value;
    std::vector<Span> allows, denies;
    expand.rules(w.allow, own_allow, set.allow, allows);
    // Every deny counts: a base's deny beats the child's allow.
    expand.rules(w.deny, own_deny, set.deny, denies, true);
    check_covered(set, allows, denies, where, errors);
}

// from_rhost_only = true pins ingress to deny by default: a default of
// "allow" contradicts it. Reported where the later of the two is written
// (the policy's own, when a base wrote the other).
void check_rhost_pin(const WrittenPolicy& own, const WrittenPolicy& flat, std::vector<PolicyDiagnostic>& errors)
{
    const auto& def = flat.ingress.default_verdict;
    if (!flat.from_rhost_only || !flat.from_rhost_only->value || !def || def->value != Verdict::Allow)
        return;
    std::string where = "policy." + own.name + ".ingress";
    if (own.ingress.default_verdict)
        errors.push_back(diagnostic(def->at, 0, where + ": default = \"allow\" contradicts from_rhost_only = true"));
    else if (own.from_rhost_only)
        errors.push_back(
            diagnostic(flat.from_rhost_only->at, 0,
                       where + ": from_rhost_only = true contradicts default = \"allow\" (" + def->at.str() + ")"));
}

Policy build_policy(Expander& expand, const WrittenPolicy& own, const Flat& flat, std::vector<PolicyDiagnostic>& errors)
{
    const WrittenPolicy& f = flat.policy;
    Policy p;
    p.name = f.name;
    p.source = f.at.file + ":" + std::to_string(f.at.line);
    p.priority = f.priority;
    p.match = f.match;
    p.audit = f.audit && f.audit->value;
    p.abstract = f.abstract;
    for (const auto& e : f.extends)
        p.extends.push_back(e.value);
    p.ingress_from_rhost_only = f.from_rhost_only && f.from_rhost_only->value;
    p.denied_families = f.denied_families;
    p.deny_raw = f.deny_raw;
    if (f.max_duration)
        p.max_duration = f.max_duration->value;
    expand.start_policy();
    std::string where = "policy." + f.name + ".";
    build_direction(expand, f.egress, flat.own_allow[0], flat.own_deny[0], p.egress, where + "egress", errors);
    build_direction(expand, f.ingress, flat.own_allow[1], flat.own_deny[1], p.ingress, where + "ingress", errors);
    expand.in_bind(true);
    build_direction(expand, f.bind, flat.own_allow[2], flat.own_deny[2], p.bind, where + "bind", errors);
    expand.in_bind(false);
    check_rhost_pin(own, f, errors);
    if (p.ingress_from_rhost_only)
        p.ingress.default_verdict = Verdict::Deny;
    return p;
}

// A base reached from several policies reports its errors once.
void drop_repeated(std::vector<PolicyDiagnostic>& errors)
{
    std::set<std::string> seen;
    std::erase_if(errors, [&](const PolicyDiagnostic& e) { return !seen.insert(e.str()).second; });
}

} // namespace

PolicyLoad resolve_documents(const std::vector<PolicyDocument>& documents, std::vector<PolicyDiagnostic> errors,
                             const PolicyLoadLimits& limits)
{
    PolicyLoad out;
    SetTable sets(documents, errors);
    PolicyTable table(documents, errors);
    Expander expand(sets, limits, errors);
    for (const WrittenPolicy* own : table.policies()) {
        Policy p = build_policy(expand, *own, *table.flat(own->name), errors);
        (p.abstract ? out.abstract : out.policies).push_back(std::move(p));
    }
    drop_repeated(errors);
    out.errors = std::move(errors);
    return out;
}

} // namespace authwall::detail
