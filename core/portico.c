/*
 * portico.c: the command line: start, -t, -s, -V.
 */

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>

#include "pt_core.h"
#include "pt_core_module.h"
#include "pt_cycle.h"
#include "pt_http.h"
#include "pt_log.h"
#include "pt_module.h"
#include "pt_process.h"
#include "pt_string.h"
#include "pt_time.h"


static void
pt_usage(FILE *out)
{
    fprintf(out,
        "usage: portico [-c FILE] [-p PREFIX] [-t] [-s SIGNAL] [-V] [-h]\n"
        "\n"
        "  -c FILE     configuration file (default: conf/portico.yaml)\n"
        "  -p PREFIX   base for relative paths (default: the parent of the\n"
        "              configuration file's folder)\n"
        "  -t          test the configuration and exit\n"
        "  -s SIGNAL   send reload, quit, stop or reopen to the master\n"
        "  -V          show version, configure arguments and modules\n"
        "  -h          this help\n");
}


/* Absolute form of path, relative to the working directory. */
static char *
pt_absolute(const char *path, char *buf, size_t size)
{
    char  cwd[PATH_MAX];

    if (path[0] == '/') {
        snprintf(buf, size, "%s", path);
        return buf;
    }

    if (getcwd(cwd, sizeof(cwd)) == NULL) {
        return NULL;
    }

    if (strlen(cwd) + 1 + strlen(path) + 1 > size) {
        errno = ENAMETOOLONG;
        return NULL;
    }

    strcpy(buf, cwd);
    strcat(buf, "/");
    strcat(buf, path);

    return buf;
}


/* The prefix is the parent of the config file's folder, as with nginx:
 * conf/portico.yaml resolves logs/... against the project root. */
static void
pt_default_prefix(const char *conf, char *buf, size_t size)
{
    char  *slash;

    snprintf(buf, size, "%s", conf);

    slash = strrchr(buf, '/');
    if (slash) {
        *slash = '\0';
    }

    slash = strrchr(buf, '/');
    if (slash) {
        slash[1] = '\0';
    } else {
        snprintf(buf, size, "/");
    }
}


static int
pt_signal_master(pt_cycle_t *cycle, const char *name)
{
    int     signo;
    pid_t   pid;
    char   *path;

    if (strcmp(name, "reload") == 0) {
        signo = SIGHUP;
    } else if (strcmp(name, "quit") == 0) {
        signo = SIGQUIT;
    } else if (strcmp(name, "stop") == 0) {
        signo = SIGTERM;
    } else if (strcmp(name, "reopen") == 0) {
        signo = SIGUSR1;
    } else {
        fprintf(stderr, "portico: unknown signal \"%s\" (reload, quit, "
                "stop, reopen)\n", name);
        return 1;
    }

    path = pt_core_conf(cycle)->pid_file.data;
    pid = pt_pid_file_read(path);

    if (pid <= 0) {
        fprintf(stderr, "portico: cannot read a pid from \"%s\"\n", path);
        return 1;
    }

    if (kill(pid, signo) < 0) {
        fprintf(stderr, "portico: kill(%d, %s): %s\n", (int) pid, name,
                strerror(errno));
        return 1;
    }

    return 0;
}


static void
pt_show_version(const char *conf_file, const char *prefix)
{
    pt_uint_t    i;
    pt_cycle_t  *cycle;

    fprintf(stderr, "portico version %s\n", PT_VERSION);
    fprintf(stderr, "configure arguments: %s\n", pt_configure_args);
    fprintf(stderr, "modules:");

    for (i = 0; pt_modules[i]; i++) {
        fprintf(stderr, " %s", pt_modules[i]->name);
    }

    fprintf(stderr, "\n");

    /* The phase order depends on the modules only, but it is built from
     * a configuration: use the default one if it loads. */
    if (access(conf_file, R_OK) != 0) {
        return;
    }

    pt_log_default()->level = PT_LOG_STDERR;
    cycle = pt_cycle_init(NULL, conf_file, prefix, 1);

    if (cycle) {
        pt_http_print_phases(cycle, stderr);
        pt_cycle_free(cycle, NULL);
    }
}


static int
pt_daemonize(void)
{
    int  fd;

    switch (fork()) {
    case -1:
        pt_log_error(PT_LOG_EMERG, NULL, errno, "fork() failed");
        return PT_ERROR;
    case 0:
        break;
    default:
        _exit(0);
    }

    if (setsid() < 0) {
        return PT_ERROR;
    }

    fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        (void) dup2(fd, STDIN_FILENO);
        (void) dup2(fd, STDOUT_FILENO);
        if (fd > STDERR_FILENO) {
            close(fd);
        }
    }

    return PT_OK;
}


int
main(int argc, char **argv)
{
    int              opt, test, version;
    char             conf[PATH_MAX], prefix[PATH_MAX];
    const char      *conf_arg, *prefix_arg, *signal_arg;
    pt_cycle_t      *cycle;
    pt_core_conf_t  *ccf;

    conf_arg = "conf/portico.yaml";
    prefix_arg = NULL;
    signal_arg = NULL;
    test = 0;
    version = 0;

    while ((opt = getopt(argc, argv, "c:p:ts:Vh")) != -1) {
        switch (opt) {
        case 'c': conf_arg = optarg; break;
        case 'p': prefix_arg = optarg; break;
        case 't': test = 1; break;
        case 's': signal_arg = optarg; break;
        case 'V': version = 1; break;
        case 'h': pt_usage(stdout); return 0;
        default:  pt_usage(stderr); return 1;
        }
    }

    if (optind < argc) {
        pt_usage(stderr);
        return 1;
    }

    pt_time_update();
    pt_pid = getpid();

    if (pt_modules_init() != PT_OK) {
        return 1;
    }

    if (pt_absolute(conf_arg, conf, sizeof(conf)) == NULL) {
        fprintf(stderr, "portico: getcwd() failed: %s\n", strerror(errno));
        return 1;
    }

    if (prefix_arg) {
        if (pt_absolute(prefix_arg, prefix, sizeof(prefix)) == NULL) {
            return 1;
        }
        if (prefix[strlen(prefix) - 1] != '/'
            && strlen(prefix) + 1 < sizeof(prefix))
        {
            strcat(prefix, "/");
        }
    } else {
        pt_default_prefix(conf, prefix, sizeof(prefix));
    }

    if (version) {
        pt_show_version(conf, prefix);
        return 0;
    }

    if (test || signal_arg) {
        cycle = pt_cycle_init(NULL, conf, prefix, 1);

        if (cycle == NULL) {
            if (test) {
                fprintf(stderr, "portico: configuration %s test failed\n",
                        conf);
            }
            return 1;
        }

        if (signal_arg) {
            opt = pt_signal_master(cycle, signal_arg);
            pt_cycle_free(cycle, NULL);
            return opt;
        }

        pt_cycle_free(cycle, NULL);
        fprintf(stderr, "portico: configuration %s test is successful\n",
                conf);
        return 0;
    }

    cycle = pt_cycle_init(NULL, conf, prefix, 0);
    if (cycle == NULL) {
        return 1;
    }

    pt_cycle = cycle;
    ccf = pt_core_conf(cycle);

    if (ccf->daemon && pt_daemonize() != PT_OK) {
        return 1;
    }

    pt_pid = getpid();
    pt_shmtx_set_pid(pt_pid);

    if (pt_pid_file_write(ccf->pid_file.data) != PT_OK) {
        return 1;
    }

    pt_log_current = cycle->log;

    if (pt_core_shm) {
        pt_core_shm->generation = cycle->generation;
        pt_core_shm->loaded_at_ms = cycle->loaded_at;
    }

    return pt_master_run(conf, prefix);
}
