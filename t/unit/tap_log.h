/*
 * tap_log.h: the error log of a C unit test, captured in a temporary file
 * so that checks can count the lines the code under test logged.
 *
 *   if (tap_log_open("test_slab") != 0) return 1;
 *   ... is_int(tap_log_count("[alert]"), 0, "no alert");
 *   tap_log_close();
 */

#ifndef PT_TAP_LOG_H
#define PT_TAP_LOG_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "pt_log.h"


static pt_log_t  tap_log;
static char      tap_log_path[128];


/* 0, or -1 after a "Bail out!" line. */
static int
tap_log_open(const char *name)
{
    int  fd;

    snprintf(tap_log_path, sizeof(tap_log_path), "/tmp/%s_log.XXXXXX",
             name);

    fd = mkstemp(tap_log_path);
    if (fd < 0) {
        printf("Bail out! mkstemp: %s\n", strerror(errno));
        return -1;
    }

    tap_log.fd = fd;
    tap_log.level = PT_LOG_DEBUG;
    tap_log.path = NULL;
    pt_log_current = &tap_log;

    return 0;
}


/* Lines logged so far that hold needle; (size_t) -1 when unreadable. */
static size_t
tap_log_count(const char *needle)
{
    FILE    *f;
    char     line[PT_LOG_MAX_LINE + 1];
    size_t   n;

    f = fopen(tap_log_path, "r");
    if (f == NULL) {
        return (size_t) -1;
    }

    n = 0;

    while (fgets(line, sizeof(line), f) != NULL) {
        if (strstr(line, needle) != NULL) {
            n++;
        }
    }

    fclose(f);

    return n;
}


static void
tap_log_close(void)
{
    close(tap_log.fd);
    unlink(tap_log_path);
}

#endif /* PT_TAP_LOG_H */
