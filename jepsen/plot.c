/*
 * Plots with gnuplot, as Jepsen draws them: latency of every operation
 * over time (points per f, coloured ok / fail / info) and throughput per
 * second, with every nemesis period shaded.  Input: ops.dat (history.c)
 * and nemesis.dat (nemesis.c); the data is reduced here to rate.dat.
 */
#include "jepsen_int.h"

#include <string.h>

int jr_plot(jr_run *r)
{
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/ops.dat", r->dir);
    FILE *in = fopen(p, "r");
    if (!in)
        return -1;
    enum { MAXS = 3600 };
    static int cnt[MAXS][3];
    memset(cnt, 0, sizeof cnt);
    double t, lat;
    int type, maxs = 0;
    char f[64];
    while (fscanf(in, "%lf %lf %d %63s", &t, &lat, &type, f) == 4) {
        int s = (int)t;
        if (s >= 0 && s < MAXS && type >= 0 && type < 3) {
            cnt[s][type]++;
            if (s > maxs)
                maxs = s;
        }
    }
    fclose(in);
    snprintf(p, sizeof p, "%s/rate.dat", r->dir);
    FILE *out = fopen(p, "w");
    if (!out)
        return -1;
    for (int s = 0; s <= maxs; s++)
        fprintf(out, "%d %d %d %d\n", s, cnt[s][0], cnt[s][1], cnt[s][2]);
    fclose(out);

    snprintf(p, sizeof p, "%s/plot.gp", r->dir);
    FILE *gp = fopen(p, "w");
    if (!gp)
        return -1;
    fprintf(gp, "set terminal png size 1200,600\n"
                "set key outside right\nset xlabel 'time (s)'\n");
    /* Nemesis periods: translucent rectangles behind the data. */
    snprintf(p, sizeof p, "%s/nemesis.dat", r->dir);
    FILE *nd = fopen(p, "r");
    double a, b;
    char name[64];
    int k = 1;
    while (nd && fscanf(nd, "%lf %lf %63s", &a, &b, name) == 3) {
        fprintf(gp,
                "set object %d rect from %f, graph 0 to %f, graph 1 behind "
                "fc rgb '#f0c0c0' fs solid 0.4 noborder\n"
                "set label %d '%s' at %f, graph 0.97 font ',8'\n",
                k, a, b > a + 0.05 ? b : a + 0.05, k, name, a);
        k++;
    }
    if (nd)
        fclose(nd);
    fprintf(gp,
            "set output '%s/latency.png'\nset logscale y\n"
            "set ylabel 'latency (ms)'\nset title '%s: latency'\n"
            "plot '%s/ops.dat' using 1:($3==0?$2:1/0) with points pt 7 ps 0.3 "
            "lc rgb '#2060c0' title 'ok', "
            "'' using 1:($3==1?$2:1/0) with points pt 7 ps 0.4 "
            "lc rgb '#e08000' title 'fail', "
            "'' using 1:($3==2?$2:1/0) with points pt 7 ps 0.5 "
            "lc rgb '#d00000' title 'info'\n"
            "unset logscale y\nset output '%s/rate.png'\n"
            "set ylabel 'ops/s'\nset title '%s: throughput'\n"
            "plot '%s/rate.dat' using 1:2 with lines lw 2 lc rgb '#2060c0' "
            "title 'ok', '' using 1:3 with lines lc rgb '#e08000' "
            "title 'fail', '' using 1:4 with lines lc rgb '#d00000' "
            "title 'info'\n",
            r->dir, r->workload, r->dir, r->dir, r->workload, r->dir);
    fclose(gp);
    return jr_sh(r, "gnuplot '%s/plot.gp'", r->dir);
}
