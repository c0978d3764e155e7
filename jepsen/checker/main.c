/*
 * jepsen-check: runs one libchecker checker on a history file.
 *
 *   jepsen-check --workload register|append|watch|lease FILE.jsonl
 *                [--budget-ms N] [--out FILE]
 *
 * Prints one summary line on stderr (so stdout can carry the JSON result)
 * and the result JSON on stdout or into --out.  Exit status: 0 valid,
 * 1 invalid, 2 unknown, 3 usage or input errors.
 */
#include "checker.h"
#include "cm.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int usage(void)
{
    fprintf(stderr, "usage: jepsen-check --workload register|append|watch|"
                    "lease FILE.jsonl [--budget-ms N] [--out FILE]\n");
    return 3;
}

int main(int argc, char **argv)
{
    const char *workload = NULL, *file = NULL, *outpath = NULL;
    jc_opts opts = {0};
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--workload") && i + 1 < argc)
            workload = argv[++i];
        else if (!strcmp(argv[i], "--budget-ms") && i + 1 < argc)
            opts.budget_ms = strtoll(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            outpath = argv[++i];
        else if (argv[i][0] != '-' && !file)
            file = argv[i];
        else
            return usage();
    }
    int (*check)(const jc_history *, const jc_opts *, jc_result *) = NULL;
    if (!workload || !file)
        return usage();
    if (!strcmp(workload, "register"))
        check = jc_check_register;
    else if (!strcmp(workload, "append"))
        check = jc_check_append;
    else if (!strcmp(workload, "watch"))
        check = jc_check_watch;
    else if (!strcmp(workload, "lease"))
        check = jc_check_lease;
    else
        return usage();

    char err[512] = "";
    jc_history *h = NULL;
    int rc = jc_history_load(file, &h, err, sizeof err);
    if (rc) {
        fprintf(stderr, "jepsen-check: %s\n", err[0] ? err : jc_strerror(rc));
        return 3;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    jc_result res = {0};
    rc = check(h, &opts, &res);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
                (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    if (rc) {
        fprintf(stderr, "jepsen-check: out of memory while checking\n");
        jc_result_free(&res);
        jc_history_destroy(h);
        return 3;
    }
    static const char *const verdict[] = {"valid", "INVALID", "unknown"};
    fprintf(stderr, "%s %s: %s, %zu ops, %zu anomalies%s%s, %.1f ms\n",
            workload, file, verdict[res.valid], jc_history_count(h),
            res.nanomalies, res.note ? ", " : "", res.note ? res.note : "", ms);
    char *json = NULL;
    int code = (int)res.valid;
    if (jc_result_json(&res, &json)) {
        code = 3;
    } else {
        FILE *out = outpath ? fopen(outpath, "w") : stdout;
        if (!out) {
            fprintf(stderr, "jepsen-check: %s: %s\n", outpath, strerror(errno));
            code = 3;
        } else {
            fprintf(out, "%s\n", json);
            if (out != stdout && fclose(out) != 0)
                code = 3;
        }
    }
    cm_free(json);
    jc_result_free(&res);
    jc_history_destroy(h);
    return code;
}
