/*
 * skiff-controller-manager: runs skiff's controllers as one store client,
 * like kube-controller-manager.  Today that is the garbage collector
 * (controllers/gc.h); --controllers picks which run, with
 * kube-controller-manager's syntax ("*" for all, "foo" to enable,
 * "-foo" to disable).
 *
 * The process holds no state the store does not have: it lists and
 * watches on start, so killing and restarting it at any moment is safe.
 * One blocking client carries the informers, the work queue and the
 * writes: the main loop runs the client's loop for a short while, then
 * lets each controller process what became ready, until SIGTERM or
 * SIGINT.  Logs use the project's format (common/cm.h).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm.h"
#include "gc.h"
#include "skiff.h"

#define MAX_ENDPOINTS 16

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *f)
{
    fputs("usage: skiff-controller-manager [flags]\n"
          "  --endpoints=h:p,...          store endpoints "
          "(default 127.0.0.1:2379)\n"
          "  --cacert=FILE                CA bundle: use TLS\n"
          "  --cert=FILE --key=FILE       client certificate\n"
          "  --token=TOKEN                bearer token (--token-auth-file)\n"
          "  --insecure-skip-tls-verify   do not verify the server\n"
          "  --controllers=LIST           controllers to run: '*' (all, the\n"
          "                               default), 'name' or '-name'; "
          "known:\n"
          "                               garbagecollector\n"
          "  --min-resync-period=SECONDS  re-check every object this often\n"
          "                               (0: never, the default)\n"
          "  --log-level=LEVEL            debug, info, warn, error\n",
          f);
}

/* kube-controller-manager's --controllers rule for one name. */
static int enabled(const char *list, const char *name)
{
    int on = 0;
    char *copy = strdup(list), *save = NULL;
    if (!copy)
        return 0;
    for (char *t = strtok_r(copy, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "*"))
            on = 1;
        else if (t[0] == '-' && !strcmp(t + 1, name)) {
            on = 0;
            break;
        } else if (!strcmp(t, name))
            on = 1;
    }
    free(copy);
    return on;
}

int main(int argc, char **argv)
{
    const char *endpoints = "127.0.0.1:2379", *controllers = "*";
    skiff_config cfg = {0};
    long resync_s = 0;
    enum { O_EP = 1, O_CA, O_CERT, O_KEY, O_TOKEN, O_INSECURE, O_CTL, O_RESYNC,
           O_LOG };
    static const struct option opts[] = {
        {"endpoints", required_argument, NULL, O_EP},
        {"cacert", required_argument, NULL, O_CA},
        {"cert", required_argument, NULL, O_CERT},
        {"key", required_argument, NULL, O_KEY},
        {"token", required_argument, NULL, O_TOKEN},
        {"insecure-skip-tls-verify", no_argument, NULL, O_INSECURE},
        {"controllers", required_argument, NULL, O_CTL},
        {"min-resync-period", required_argument, NULL, O_RESYNC},
        {"log-level", required_argument, NULL, O_LOG},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (ch) {
        case O_EP:
            endpoints = optarg;
            break;
        case O_CA:
            cfg.ca_file = optarg;
            break;
        case O_CERT:
            cfg.cert_file = optarg;
            break;
        case O_KEY:
            cfg.key_file = optarg;
            break;
        case O_TOKEN:
            cfg.token = optarg;
            break;
        case O_INSECURE:
            cfg.insecure_skip_verify = 1;
            break;
        case O_CTL:
            controllers = optarg;
            break;
        case O_RESYNC:
            resync_s = strtol(optarg, NULL, 10);
            break;
        case O_LOG: {
            enum cm_log_level lvl;
            if (cm_log_level_parse(optarg, &lvl)) {
                fprintf(stderr, "error: bad --log-level %s\n", optarg);
                return 2;
            }
            cm_log_set_level(lvl);
            break;
        }
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    char *eps_buf = strdup(endpoints), *save = NULL;
    const char *eps[MAX_ENDPOINTS];
    size_t n_eps = 0;
    for (char *t = eps_buf ? strtok_r(eps_buf, ",", &save) : NULL;
         t && n_eps < MAX_ENDPOINTS; t = strtok_r(NULL, ",", &save))
        eps[n_eps++] = t;
    cfg.endpoints = eps;
    cfg.n_endpoints = n_eps;
    cm_log_set_member("controller-manager");
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    skiff_client *c = NULL;
    int rc = skiff_client_create(&c, &cfg);
    if (rc) {
        CM_ERROR("cannot create client", "err=\"%s\"", skiff_strerror(rc));
        free(eps_buf);
        return 1;
    }
    ctl_gc *gc = NULL;
    if (enabled(controllers, "garbagecollector")) {
        ctl_gc_config gcfg = {.client = c, .resync_ms = resync_s * 1000};
        if ((rc = ctl_gc_create(&gcfg, &gc)) || (rc = ctl_gc_start(gc))) {
            CM_ERROR("cannot start the garbage collector", "err=\"%s\"",
                     skiff_strerror(rc));
            ctl_gc_destroy(gc);
            skiff_client_destroy(c);
            free(eps_buf);
            return 1;
        }
        CM_INFO("started controller",
                "controller=garbagecollector "
                "endpoints=%s",
                endpoints);
    } else {
        CM_WARN("no controller enabled", "controllers=%s", controllers);
    }
    int synced = 0;
    while (!stop_requested) {
        skiff_client_poll(c, 10);
        if (!gc)
            continue;
        if (!synced && ctl_gc_synced(gc)) {
            synced = 1;
            CM_INFO("caches synced", "controller=garbagecollector");
        }
        ctl_gc_process(gc, 0);
    }
    CM_INFO("shutting down", "signal=1");
    if (gc) {
        ctl_gc_stats st = ctl_gc_get_stats(gc);
        CM_INFO("garbage collector stopped",
                "deleted=%llu updated=%llu failures=%llu",
                (unsigned long long)st.deleted, (unsigned long long)st.updated,
                (unsigned long long)st.failures);
    }
    ctl_gc_destroy(gc);
    skiff_client_destroy(c);
    free(eps_buf);
    return 0;
}
