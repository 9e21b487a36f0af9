// SPDX-License-Identifier: Apache-2.0
#include "core/base/result.h"

#include <cstring>

namespace authwall {

Error Error::sys(std::string operation, std::string object, int err, std::string detail)
{
    return Error{std::move(operation), std::move(object), err, std::move(detail)};
}

Error Error::msg(std::string operation, std::string object, std::string detail)
{
    return Error{std::move(operation), std::move(object), 0, std::move(detail)};
}

std::string errno_name(int err)
{
    switch (err) {
    case EPERM:
        return "EPERM";
    case ENOENT:
        return "ENOENT";
    case EACCES:
        return "EACCES";
    case EEXIST:
        return "EEXIST";
    case EINVAL:
        return "EINVAL";
    case ENOSPC:
        return "ENOSPC";
    case ENOMEM:
        return "ENOMEM";
    case EBUSY:
        return "EBUSY";
    case E2BIG:
        return "E2BIG";
    case ENOTDIR:
        return "ENOTDIR";
    case ESRCH:
        return "ESRCH";
    case EOPNOTSUPP:
        return "EOPNOTSUPP";
    case ENOSYS:
        return "ENOSYS";
    case EBADF:
        return "EBADF";
    default:
        return std::to_string(err);
    }
}

std::string Error::message() const
{
    std::string out = operation;
    if (!object.empty())
        out += (out.empty() ? "" : " ") + object;
    if (err != 0)
        out += std::string(": ") + std::strerror(err) + " (" + errno_name(err) + ")";
    if (!detail.empty())
        out += (err != 0 ? " — " : ": ") + detail;
    return out;
}

} // namespace authwall
