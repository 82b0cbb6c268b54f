/*
 * fuzz_config.c: the whole configuration load, as `portico -t` does it:
 * the YAML loader (pt_yaml_load.c), include: resolution
 * (pt_yaml_include.c) and every module's keys, values, templates, regexes
 * and validation, through pt_cycle_init(NULL, file, prefix, test_only).
 *
 * The input is the main file. It is written to a scratch directory that
 * also serves as the prefix and holds a few files to include
 * (inc/routes.yaml, inc/upstreams.yaml, inc/deep.yaml -> inc/more.yaml),
 * so that includes (paths or globs under inc/) and relative paths
 * resolve. Errors go to the log (/dev/null); a loaded cycle is freed.
 * Test mode opens no file, socket or zone and resolves no name.
 */

#include <sys/stat.h>

#include "fuzz.h"
#include "pt_cycle.h"
#include "pt_module.h"
#include "pt_time.h"


static char  pt_fuzz_dir[64];
static char  pt_fuzz_prefix[PATH_MAX];
static char  pt_fuzz_main[PATH_MAX];


static const struct {
    const char  *name;
    const char  *text;
} pt_fuzz_files[] = {
    { "inc/routes.yaml",
      "routes:\n"
      "  - name: inc-hello\n"
      "    match: { path: \"=/inc\" }\n"
      "    respond: { status: 200, body: \"${host} ${header.X-A}\\n\" }\n" },
    { "inc/upstreams.yaml",
      "upstreams:\n"
      "  inc-up:\n"
      "    targets: [127.0.0.1:9001, { address: 127.0.0.1:9002, "
      "weight: 3 }]\n" },
    { "inc/deep.yaml", "include: inc/more.yaml\n" },
    { "inc/more.yaml", "shm: { inc: 1m }\n" },
    { "empty.yaml", "" },
};


static int
pt_fuzz_put(const char *path, const void *data, size_t len)
{
    FILE  *f;

    f = fopen(path, "wb");
    if (f == NULL) {
        return PT_ERROR;
    }

    if (len && fwrite(data, 1, len, f) != len) {
        fclose(f);
        return PT_ERROR;
    }

    return fclose(f) == 0 ? PT_OK : PT_ERROR;
}


static int
pt_fuzz_init(void)
{
    char    path[PATH_MAX];
    size_t  i;

    pt_fuzz_quiet_log();
    pt_time_update();

    /* The file is rewritten for every input: keep it in memory. */
    snprintf(pt_fuzz_dir, sizeof(pt_fuzz_dir), "%s/pt_fuzz_config.XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");

    if (pt_modules_init() != PT_OK || mkdtemp(pt_fuzz_dir) == NULL) {
        return PT_ERROR;
    }

    snprintf(pt_fuzz_prefix, sizeof(pt_fuzz_prefix), "%s/", pt_fuzz_dir);
    snprintf(pt_fuzz_main, sizeof(pt_fuzz_main), "%s/main.yaml",
             pt_fuzz_dir);
    snprintf(path, sizeof(path), "%s/inc", pt_fuzz_dir);

    if (mkdir(path, 0700) != 0) {
        return PT_ERROR;
    }

    for (i = 0; i < pt_nelems(pt_fuzz_files); i++) {
        snprintf(path, sizeof(path), "%s/%s", pt_fuzz_dir,
                 pt_fuzz_files[i].name);

        if (pt_fuzz_put(path, pt_fuzz_files[i].text,
                        strlen(pt_fuzz_files[i].text)) != PT_OK)
        {
            return PT_ERROR;
        }
    }

    return PT_OK;
}


/* The scratch directory goes when the process ends. */
static void
pt_fuzz_cleanup(void)
{
    char    path[PATH_MAX];
    size_t  i;

    for (i = 0; i < pt_nelems(pt_fuzz_files); i++) {
        snprintf(path, sizeof(path), "%s/%s", pt_fuzz_dir,
                 pt_fuzz_files[i].name);
        (void) unlink(path);
    }

    (void) unlink(pt_fuzz_main);
    snprintf(path, sizeof(path), "%s/inc", pt_fuzz_dir);
    (void) rmdir(path);
    (void) rmdir(pt_fuzz_dir);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pt_cycle_t  *cycle;

    static int  ready;

    if (ready == 0) {
        if (pt_fuzz_init() != PT_OK) {
            fprintf(stderr, "fuzz_config: cannot set up %s: %s\n",
                    pt_fuzz_dir, strerror(errno));
            abort();
        }

        atexit(pt_fuzz_cleanup);
        ready = 1;
    }

    if (pt_fuzz_put(pt_fuzz_main, data, size) != PT_OK) {
        abort();
    }

    cycle = pt_cycle_init(NULL, pt_fuzz_main, pt_fuzz_prefix, 1);

    if (cycle) {
        pt_cycle_free(cycle, NULL);
    }

    return 0;
}
