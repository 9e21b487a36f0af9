// SPDX-License-Identifier: Apache-2.0
/* A login service reduced to its PAM calls, for bench_pam: each sample is a
 * fresh child of this process that runs pam_start_confdir, pam_open_session,
 * pam_close_session and pam_end against the service file CONFDIR/SERVICE,
 * so every module of the stack is loaded (dlopen) anew, as sshd loads them
 * for every connection. Written in C and linked against libpam and libc
 * only, like login, su and cron: whatever a module needs beyond them is
 * loaded on its account and measured. --preload LIB loads a library into
 * this process first (before the children fork), to stand for a host that
 * already has it (Debian's sshd links libsystemd, libaudit, libcap, libz).
 *
 *   pam_login_driver CONFDIR SERVICE USER RHOST SAMPLES [--preload LIB]...
 *
 * Prints one line per sample: "<pam_start ms> <whole cycle ms>"; exits 1 on
 * the first sample whose open or close did not return PAM_SUCCESS, naming
 * the code. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int silent_conversation(int n, const struct pam_message** msg, struct pam_response** resp, void* data)
{
    (void)n;
    (void)msg;
    (void)data;
    *resp = NULL;
    return PAM_SUCCESS;
}

struct sample {
    double start_ms, cycle_ms;
    int open_rc, close_rc;
};

/* One login in this (fresh) process. */
static struct sample login_once(const char* confdir, const char* service, const char* user, const char* rhost)
{
    struct pam_conv conv = {silent_conversation, NULL};
    struct sample s = {0, 0, PAM_SYSTEM_ERR, PAM_SYSTEM_ERR};
    pam_handle_t* pamh = NULL;
    double t0 = now_ms();
    int rc = pam_start_confdir(service, user, &conv, confdir, &pamh);
    s.start_ms = now_ms() - t0;
    if (rc != PAM_SUCCESS)
        return s;
    if (rhost[0])
        pam_set_item(pamh, PAM_RHOST, rhost);
    pam_set_item(pamh, PAM_TTY, "pts/0");
    s.open_rc = pam_open_session(pamh, 0);
    s.close_rc = s.open_rc == PAM_SUCCESS ? pam_close_session(pamh, 0) : s.open_rc;
    pam_end(pamh, s.close_rc);
    s.cycle_ms = now_ms() - t0;
    return s;
}

int main(int argc, char** argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: %s CONFDIR SERVICE USER RHOST SAMPLES [--preload LIB]...\n", argv[0]);
        return 2;
    }
    const char *confdir = argv[1], *service = argv[2], *user = argv[3], *rhost = argv[4];
    int samples = atoi(argv[5]);
    for (int i = 6; i < argc; ++i) {
        if (strcmp(argv[i], "--preload") != 0 || i + 1 >= argc) {
            fprintf(stderr, "unknown argument %s\n", argv[i]);
            return 2;
        }
        if (!dlopen(argv[++i], RTLD_NOW | RTLD_GLOBAL)) {
            fprintf(stderr, "preload: %s\n", dlerror());
            return 2;
        }
    }
    for (int i = 0; i < samples; ++i) {
        int p[2];
        if (pipe(p) != 0)
            return 2;
        pid_t pid = fork();
        if (pid < 0)
            return 2;
        if (pid == 0) {
            close(p[0]);
            struct sample s = login_once(confdir, service, user, rhost);
            _exit(write(p[1], &s, sizeof(s)) == (ssize_t)sizeof(s) ? 0 : 1);
        }
        close(p[1]);
        struct sample s;
        ssize_t got = read(p[0], &s, sizeof(s));
        close(p[0]);
        waitpid(pid, NULL, 0);
        if (got != (ssize_t)sizeof(s)) {
            fprintf(stderr, "sample %d: the child died\n", i);
            return 1;
        }
        if (s.open_rc != PAM_SUCCESS || s.close_rc != PAM_SUCCESS) {
            fprintf(stderr, "sample %d: open %d (%s), close %d\n", i, s.open_rc, pam_strerror(NULL, s.open_rc),
                    s.close_rc);
            return 1;
        }
        printf("%.4f %.4f\n", s.start_ms, s.cycle_ms);
    }
    return 0;
}
