// SPDX-License-Identifier: Apache-2.0
// A stand-in for an SSO or MFA module earlier in a stack: at session open it
// puts its arguments into the PAM environment (pam_putenv), as such a
// module hands authwall a correlation token and a claims tag. An argument
// is NAME=VALUE with %XX for any byte, so a test can hand hostile values
// (control characters, invalid UTF-8) that a PAM configuration line cannot
// spell.
#include <security/pam_modules.h>

#include <cstdlib>
#include <string>

namespace {

std::string decoded(const char* arg)
{
    std::string out;
    for (const char* p = arg; *p; ++p) {
        if (p[0] == '%' && p[1] && p[2]) {
            const char hex[3] = {p[1], p[2], 0};
            out += static_cast<char>(std::strtoul(hex, nullptr, 16));
            p += 2;
        } else {
            out += *p;
        }
    }
    return out;
}

} // namespace

extern "C" {

__attribute__((visibility("default"))) PAM_EXTERN int pam_sm_open_session(pam_handle_t* pamh, int, int argc,
                                                                          const char** argv)
{
    for (int i = 0; i < argc; ++i)
        if (pam_putenv(pamh, decoded(argv[i]).c_str()) != PAM_SUCCESS)
            return PAM_SESSION_ERR;
    return PAM_SUCCESS;
}

__attribute__((visibility("default"))) PAM_EXTERN int pam_sm_close_session(pam_handle_t*, int, int, const char**)
{
    return PAM_SUCCESS;
}

} // extern "C"
