/*
 * fuzz.h: what every fuzz target (t/fuzz/fuzz_NAME.c) shares.
 *
 * A target defines LLVMFuzzerTestOneInput, the libFuzzer entry point. The
 * same object links either with libFuzzer (`make fuzz`, clang) or with
 * replay.c (`make test`, the normal compiler), which feeds it the files of
 * t/fuzz/corpus/NAME and t/fuzz/regress/NAME.
 *
 * A target checks properties the code promises, not only the absence of
 * crashes: a broken promise aborts, which both drivers report as a crash.
 */

#ifndef PT_FUZZ_H
#define PT_FUZZ_H

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "pt_core.h"
#include "pt_log.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


#define pt_fuzz_check(cond)                                                  \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: broken promise: %s\n", __FILE__,        \
                    __LINE__, #cond);                                        \
            abort();                                                         \
        }                                                                    \
    } while (0)


/* Send every log line to /dev/null at debug level, so that the formatting
 * of messages about hostile input runs too, without flooding the fuzzer's
 * output. */
static inline void
pt_fuzz_quiet_log(void)
{
    static pt_log_t  log;

    log.fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    log.level = PT_LOG_DEBUG;
    log.path = NULL;
    pt_log_current = &log;
}


#endif /* PT_FUZZ_H */
