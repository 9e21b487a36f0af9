// SPDX-License-Identifier: Apache-2.0
// Error values: what was attempted, on what, and errno. Library code returns
// them; the top layer (a daemon, the CLI, the PAM shim) logs each one once.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace authwall {

struct Error {
    std::string operation; // "pin map", "attach connect4", ...
    std::string object;    // the path, map or program it was attempted on
    int err = 0;           // errno, 0 when not a system error
    std::string detail;    // extra words for the operator ("mount bpffs first")

    static Error sys(std::string operation, std::string object, int err, std::string detail = {});
    static Error msg(std::string operation, std::string object, std::string detail);

    // "attach connect4 to /sys/fs/cgroup/x: Operation not permitted (EPERM) — detail"
    std::string message() const;
};

template <class T> class [[nodiscard]] Result {
  public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    const Error& error() const { return std::get<1>(v_); }

  private:
    std::variant<T, Error> v_;
};

template <> class [[nodiscard]] Result<void> {
  public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), ok_(false) {}

    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error& error() const { return error_; }

  private:
    Error error_;
    bool ok_ = true;
};

using Status = Result<void>;

// The name of an errno value ("EPERM"), or its number.
std::string errno_name(int err);

} // namespace authwall
