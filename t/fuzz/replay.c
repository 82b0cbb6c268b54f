/*
 * replay.c: a main() for a fuzz target without libFuzzer, so that
 * `make test` replays the corpora with the normal compiler.
 *
 *     replay_NAME PATH...
 *
 * Each PATH is a file or a directory (its regular files, one level deep,
 * in name order). Every input goes through LLVMFuzzerTestOneInput once.
 * It prints "replayed N inputs, slowest M ms (FILE)" and exits 0; it
 * exits 1 when a path cannot be read, when there was no input at all (an
 * empty corpus must not pass), or when one input took longer than
 * PT_FUZZ_SLOW_MS (default 5000): a hang the fuzzer reported as a
 * timeout stays a failure here. A crash names the input on stderr.
 */

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include "fuzz.h"


static const char  *pt_replay_current;


static void
pt_replay_crashed(int signo)
{
    const char  *p;

    /* Only async-signal-safe calls here; then die of the same signal. */
    p = pt_replay_current ? pt_replay_current : "(none)";

    (void) !write(STDERR_FILENO, "replay: crashed on ", 19);
    (void) !write(STDERR_FILENO, p, strlen(p));
    (void) !write(STDERR_FILENO, "\n", 1);

    signal(signo, SIG_DFL);
    raise(signo);
}


static uint64_t
pt_replay_msec(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}


typedef struct {
    size_t     n;
    uint64_t   slowest_ms;
    char       slowest[PATH_MAX];
} pt_replay_stats_t;


static int
pt_replay_file(const char *path, pt_replay_stats_t *st)
{
    FILE         *f;
    long          size;
    uint8_t      *data;
    uint64_t      start, ms;

    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path,
                strerror(errno));
        return PT_ERROR;
    }

    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0
        || fseek(f, 0, SEEK_SET) != 0)
    {
        fprintf(stderr, "replay: cannot size %s\n", path);
        fclose(f);
        return PT_ERROR;
    }

    /* An exact-size copy, so that reading past the input is caught by
     * ASan in a sanitizer build, as the fuzzer would catch it. */
    data = malloc(size ? (size_t) size : 1);
    if (data == NULL
        || fread(data, 1, (size_t) size, f) != (size_t) size)
    {
        fprintf(stderr, "replay: cannot read %s\n", path);
        free(data);
        fclose(f);
        return PT_ERROR;
    }

    fclose(f);

    pt_replay_current = path;
    start = pt_replay_msec();

    (void) LLVMFuzzerTestOneInput(data, (size_t) size);

    ms = pt_replay_msec() - start;
    pt_replay_current = NULL;
    free(data);

    st->n++;

    if (ms >= st->slowest_ms) {
        st->slowest_ms = ms;
        snprintf(st->slowest, sizeof(st->slowest), "%s", path);
    }

    return PT_OK;
}


static int
pt_replay_name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}


static int
pt_replay_dir(const char *dir, pt_replay_stats_t *st)
{
    int             rc;
    DIR            *d;
    char            path[PATH_MAX], **names, **more;
    size_t          i, n, cap;
    struct stat     sb;
    struct dirent  *de;

    d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "replay: cannot open %s: %s\n", dir, strerror(errno));
        return PT_ERROR;
    }

    names = NULL;
    n = 0;
    cap = 0;
    rc = PT_OK;

    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') {
            continue;
        }

        if (n == cap) {
            cap = cap ? 2 * cap : 256;
            more = realloc(names, cap * sizeof(char *));
            if (more == NULL) {
                rc = PT_ERROR;
                break;
            }
            names = more;
        }

        names[n] = strdup(de->d_name);
        if (names[n] == NULL) {
            rc = PT_ERROR;
            break;
        }
        n++;
    }

    closedir(d);

    if (n) {
        qsort(names, n, sizeof(char *), pt_replay_name_cmp);
    }

    for (i = 0; i < n && rc == PT_OK; i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);

        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            rc = pt_replay_file(path, st);
        }
    }

    for (i = 0; i < n; i++) {
        free(names[i]);
    }

    free(names);

    return rc;
}


int
main(int argc, char **argv)
{
    int                 i, rc;
    char               *env;
    uint64_t            limit;
    struct stat         sb;
    pt_replay_stats_t   st;

    signal(SIGSEGV, pt_replay_crashed);
    signal(SIGBUS, pt_replay_crashed);
    signal(SIGABRT, pt_replay_crashed);
    signal(SIGFPE, pt_replay_crashed);
    signal(SIGILL, pt_replay_crashed);

    env = getenv("PT_FUZZ_SLOW_MS");
    limit = env ? strtoull(env, NULL, 10) : 5000;

    memset(&st, 0, sizeof(st));
    rc = PT_OK;

    for (i = 1; i < argc && rc == PT_OK; i++) {
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 1;
        }

        rc = S_ISDIR(sb.st_mode) ? pt_replay_dir(argv[i], &st)
                                 : pt_replay_file(argv[i], &st);
    }

    if (rc != PT_OK) {
        return 1;
    }

    printf("replayed %zu inputs, slowest %llu ms (%s)\n", st.n,
           (unsigned long long) st.slowest_ms, st.n ? st.slowest : "none");

    if (st.n == 0) {
        fprintf(stderr, "replay: no input\n");
        return 1;
    }

    if (st.slowest_ms > limit) {
        fprintf(stderr, "replay: %s took %llu ms, over PT_FUZZ_SLOW_MS=%llu\n",
                st.slowest, (unsigned long long) st.slowest_ms,
                (unsigned long long) limit);
        return 1;
    }

    return 0;
}
