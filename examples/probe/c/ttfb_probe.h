/*
 * ttfb_probe.h -- report start-up phases and the first batch to ttfb-lab (C and C++).
 *
 * Copy this header into your project.  Header-only, no dependencies beyond POSIX:
 *
 *     #include "ttfb_probe.h"
 *     ttfb_probe_phase("imports");   // phase "imports" begins
 *     ...
 *     ttfb_probe_phase("data");      // phase "data" begins (and "imports" ends)
 *     ...
 *     ttfb_probe_first_batch();      // the first batch enters the model
 *
 * Protocol: the ttfb-lab worker passes the write end of a pipe and its number in the
 * environment variable TTFB_PROBE_FD.  Each call writes one ASCII line to that file
 * descriptor with a single write(2), unbuffered:
 *
 *     phase NAME\n      when phase NAME begins
 *     first_batch\n     when the first batch enters the model (sent at most once)
 *
 * The worker timestamps the lines (CLOCK_MONOTONIC); a phase lasts until the next mark
 * and the last one ends at first_batch.
 *
 * With TTFB_PROBE_FD unset or empty every call does nothing and returns 0, so the program
 * behaves the same outside the lab.
 *
 * Which process reports: the worker also sets TTFB_PROBE_ID to the pipe's identity
 * ("DEV:INO"), and the probe writes only when its descriptor is that pipe (without
 * TTFB_PROBE_ID, to whatever TTFB_PROBE_FD names).  A process that inherited the variables
 * but not the pipe (started by a launcher that closes descriptors, or by posix_spawn with a
 * fresh descriptor table) stays silent instead of writing into whatever file has that number.
 * A process whose RANK is set and not "0" stays silent too: the worker takes the first
 * first_batch it reads, so a distributed job's rank 0 decides.  Phase names are 1-64 characters from [A-Za-z0-9_.-];
 * other names are rejected (return -1, nothing written).  A failed write disables the
 * probe and returns -1; nothing is ever printed and the program is never stopped.  (The
 * worker keeps the pipe open until the process group has exited, so SIGPIPE does not
 * occur in the lab; if you use the protocol with another reader, keep its end open too.)
 *
 * All functions are static inline: each translation unit keeps its own state, which only
 * matters for the at-most-once rule of ttfb_probe_first_batch -- call it from one place.
 */
#ifndef TTFB_PROBE_H
#define TTFB_PROBE_H

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TTFB_PROBE_ENV "TTFB_PROBE_FD"
#define TTFB_PROBE_ID_ENV "TTFB_PROBE_ID"
#define TTFB_PROBE_MAX_NAME 64

/* The probe's descriptor: -2 = not read yet, -1 = disabled, >= 0 = enabled. */
static inline int *ttfb_probe__state(void) {
    static int fd = -2;
    return &fd;
}

static inline int ttfb_probe__fd(void) {
    int *fd = ttfb_probe__state();
    if (*fd == -2) {
        const char *s = getenv(TTFB_PROBE_ENV);
        char *end = NULL;
        long v;
        *fd = -1;
        if (s != NULL && *s != '\0') {
            errno = 0;
            v = strtol(s, &end, 10);
            if (errno == 0 && end != s && *end == '\0' && v >= 0 && v <= INT_MAX) *fd = (int)v;
        }
        if (*fd >= 0) {
            const char *rank = getenv("RANK");
            const char *id = getenv(TTFB_PROBE_ID_ENV);
            struct stat st;
            char mine[64];
            if (rank != NULL && *rank != '\0' && strcmp(rank, "0") != 0) {
                *fd = -1; /* not rank 0 */
            } else if (fstat(*fd, &st) != 0) {
                *fd = -1; /* not open in this process */
            } else if (id != NULL && *id != '\0') {
                snprintf(mine, sizeof mine, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
                if (strcmp(mine, id) != 0) *fd = -1; /* another file under that number */
            }
        }
    }
    return *fd;
}

/* 1 when marks are being written (TTFB_PROBE_FD set and writable so far), else 0. */
static inline int ttfb_probe_enabled(void) { return ttfb_probe__fd() >= 0; }

static inline int ttfb_probe__write(const char *line, size_t len) {
    int fd = ttfb_probe__fd();
    size_t done = 0;
    if (fd < 0) return 0;
    while (done < len) {
        /* Lines are far shorter than PIPE_BUF: on a pipe the first write is complete. */
        ssize_t n = write(fd, line + done, len - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            *ttfb_probe__state() = -1;
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

/* Mark the beginning of phase `name`; returns 0, or -1 for a bad name or a failed write. */
static inline int ttfb_probe_phase(const char *name) {
    char line[sizeof("phase \n") + TTFB_PROBE_MAX_NAME];
    size_t len, i;
    if (name == NULL) return -1;
    len = strlen(name);
    if (len == 0 || len > TTFB_PROBE_MAX_NAME) return -1;
    for (i = 0; i < len; ++i) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '.' || c == '-'))
            return -1;
    }
    memcpy(line, "phase ", 6);
    memcpy(line + 6, name, len);
    line[6 + len] = '\n';
    return ttfb_probe__write(line, 7 + len);
}

/* Mark the moment the first batch enters the model; later calls do nothing. */
static inline int ttfb_probe_first_batch(void) {
    static int sent = 0;
    if (sent) return 0;
    sent = 1;
    return ttfb_probe__write("first_batch\n", 12);
}

#endif /* TTFB_PROBE_H */
