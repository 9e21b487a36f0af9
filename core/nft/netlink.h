// SPDX-License-Identifier: Apache-2.0
// The transport of the nftables mirror: a netlink socket to nf_tables in
// the current network namespace, and element updates sent as batched
// transactions (libmnl, libnftnl). Internal to core/nft.
#pragma once

#include "core/base/result.h"
#include "core/nft/elements.h"

#include <libmnl/libmnl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace authwall::nft {

class Netlink {
  public:
    static Result<Netlink> open();
    // One transaction. Returns 0 or the first errno the kernel reported
    // (the whole transaction is then void), with the failed op's index.
    Result<std::pair<int, size_t>> transact(const std::vector<Op>& ops);
    // The keys of one set; ENOENT when the table or the set is missing.
    Result<std::vector<std::vector<uint8_t>>> keys(const std::string& set);

  private:
    // The batch of `ops`, framed by batch begin and end messages.
    std::vector<char> batch_of(const std::vector<Op>& ops, uint32_t& first_seq);
    // Reads one acknowledgement per op; the first error and its op.
    Result<std::pair<int, size_t>> read_acks(size_t count, uint32_t first_seq);

    std::unique_ptr<mnl_socket, decltype(&mnl_socket_close)> nl_{nullptr, mnl_socket_close};
    uint32_t portid_ = 0;
    uint32_t seq_ = 0;
};

// Runs ops in transactions of bounded size. Deletes of elements already
// gone (timed out, flushed) are not errors: a transaction that fails with
// ENOENT is retried op by op, skipping those.
Status run_ops(Netlink& nl, const std::vector<Op>& ops);

// Whether an error says the table (or a set of it) does not exist.
bool table_missing(const Error& e);

} // namespace authwall::nft
