// SPDX-License-Identifier: Apache-2.0
// The BPF ABI seen from C++: bpf/authwall_abi.h plus checks that the layout
// is the one the BPF programs were compiled against.
#pragma once

#include <linux/types.h>

#include <cstddef>

extern "C" {
#include "authwall_abi.h"
}

static_assert(sizeof(aw_session) == 40, "aw_session layout changed: bump AW_ABI_VERSION");
static_assert(offsetof(aw_session, rhost) == 16);
static_assert(offsetof(aw_session, opened_ns) == 32);
static_assert(sizeof(aw_rule_key) == 32, "aw_rule_key layout changed: bump AW_ABI_VERSION");
static_assert(offsetof(aw_rule_key, policy_id) == 4);
static_assert(offsetof(aw_rule_key, dir) == 8);
static_assert(offsetof(aw_rule_key, port) == 10);
static_assert(offsetof(aw_rule_key, port_bits) == 12);
static_assert(offsetof(aw_rule_key, addr) == 16);
static_assert(sizeof(aw_rule_val) == 24, "aw_rule_val layout changed: bump AW_ABI_VERSION");
static_assert(offsetof(aw_rule_val, rule) == 16);
static_assert(sizeof(aw_stats) == 8 * (5 + AW_HOOK_COUNT));
static_assert(sizeof(aw_policy_totals) == 16 + sizeof(aw_stats));
static_assert(sizeof(aw_policy_totals) % 8 == 0, "an array element is the value rounded up to 8");
static_assert(sizeof(aw_event) == 80, "aw_event layout changed: bump AW_ABI_VERSION");
static_assert(offsetof(aw_event, layer) == 38);
static_assert(offsetof(aw_event, addr) == 40);
static_assert(offsetof(aw_event, uid) == 56);
static_assert(offsetof(aw_event, rule) == 60);
static_assert(offsetof(aw_event, comm) == 64);
static_assert(sizeof(aw_user) == 32, "aw_user layout changed: bump AW_ABI_VERSION");
static_assert(offsetof(aw_user, denied) == 16);
static_assert(sizeof(aw_event_budget) == 24);
static_assert(sizeof(aw_refusals) == 2 * 8 * AW_HOOK_COUNT * AW_REASON_COUNT);
static_assert(sizeof(aw_dns_query_key) == 32);
static_assert(offsetof(aw_dns_query_key, port) == 24 && offsetof(aw_dns_query_key, txid) == 26);
static_assert(sizeof(aw_dns_answer) == 32 + AW_DNS_ANSWER_MAX);
static_assert(offsetof(aw_dns_answer, payload) == 32);
static_assert(sizeof(aw_name_key) == 24);
static_assert(sizeof(aw_name_grant) == 12);
static_assert(sizeof(aw_name_seen) == 8 + 12 * AW_NAME_GRANTS);
static_assert(sizeof(aw_settings) == 16);
static_assert(sizeof(aw_policy_name) == AW_POLICY_NAME_MAX + 8);
static_assert(AW_RULE_KEY_FIXED_BITS == 8 * (offsetof(aw_rule_key, addr) - offsetof(aw_rule_key, policy_id)));
// The meta flags' fields must not overlap (bpf/authwall_abi.h lists them).
static_assert(((AW_POLICY_INGRESS_FROM_RHOST | AW_POLICY_DENY_RAW) &
               (AW_POLICY_HAS_BLOCKS(AW_DIR_EGRESS) | AW_POLICY_HAS_BLOCKS(AW_DIR_BIND))) == 0);
static_assert(AW_POLICY_HAS_BLOCKS(AW_DIR_BIND) < AW_POLICY_HAS_CLASS(AW_DIR_EGRESS, AW_CLASS_PORT));
static_assert(((AW_POLICY_INGRESS_FROM_RHOST | AW_POLICY_DENY_RAW | AW_POLICY_AUDIT) &
               (AW_POLICY_HAS_RHOST(AW_DIR_EGRESS) | AW_POLICY_HAS_RHOST(AW_DIR_INGRESS))) == 0);
static_assert(AW_POLICY_HAS_RHOST(AW_DIR_INGRESS) < AW_POLICY_HAS_BLOCKS(AW_DIR_EGRESS));
static_assert((AW_DIR_RHOST & (AW_DIR_EGRESS | AW_DIR_INGRESS | AW_DIR_BIND)) == 0);
static_assert(AW_POLICY_HAS_CLASS(AW_DIR_BIND, AW_CLASS_ANY) < AW_POLICY_BLOCK_SIZE(1));
static_assert(AW_POLICY_BLOCK_SIZE(AW_PORT_BLOCK_BITS_MAX) == 1u << 31);
