/*
 * A pod's STATUS, READY and RESTARTS as kubectl's printPod computes them
 * (pkg/printers/internalversion): the phase, replaced by status.reason
 * (Evicted), by the first init container that has not succeeded
 * (Init:N/M, Init:<reason>, Init:ExitCode:N), else by the last container
 * with a waiting or terminated reason, scanning from the last container
 * to the first so the first container's state wins; "Completed" turns
 * back into Running (or NotReady) while a container still runs, and a
 * deletion timestamp makes it Terminating (Unknown on a lost node).
 * Kept apart from the table code so tests can call it directly.
 */
#include "obj_int.h"

#include <stdio.h>
#include <string.h>

static bool has_ready_condition(const Skiffpb__V1__PodStatus *st)
{
    for (size_t i = 0; st && i < st->n_conditions; i++)
        if (st->conditions[i]->type &&
            !strcmp(st->conditions[i]->type, "Ready") &&
            st->conditions[i]->status &&
            !strcmp(st->conditions[i]->status, "True"))
            return true;
    return false;
}

void octl_pod_status(const Skiffpb__V1__Pod *p, char *status, size_t scap,
                     int *ready, int *total, int *restarts,
                     const char **last_restart)
{
    const Skiffpb__V1__PodStatus *st = p->status;
    const Skiffpb__V1__PodSpec *sp = p->spec;
    *restarts = 0;
    *ready = 0;
    *total = sp ? (int)sp->n_containers : 0;
    *last_restart = NULL;
    snprintf(status, scap, "%s", st && st->phase ? st->phase : "");
    if (st && st->reason && st->reason[0])
        snprintf(status, scap, "%s", st->reason);
    bool initializing = false;
    for (size_t i = 0; st && i < st->n_init_container_statuses; i++) {
        const Skiffpb__V1__ContainerStatus *c = st->init_container_statuses[i];
        const Skiffpb__V1__ContainerState *s = c->state;
        *restarts += c->restart_count;
        if (s && s->terminated && s->terminated->exit_code == 0)
            continue;
        if (s && s->terminated) {
            if (s->terminated->reason && s->terminated->reason[0])
                snprintf(status, scap, "Init:%s", s->terminated->reason);
            else if (s->terminated->signal)
                snprintf(status, scap, "Init:Signal:%d", s->terminated->signal);
            else
                snprintf(status, scap, "Init:ExitCode:%d",
                         s->terminated->exit_code);
        } else if (s && s->waiting && s->waiting->reason &&
                   s->waiting->reason[0] &&
                   strcmp(s->waiting->reason, "PodInitializing")) {
            snprintf(status, scap, "Init:%s", s->waiting->reason);
        } else {
            snprintf(status, scap, "Init:%zu/%zu", i,
                     sp ? sp->n_init_containers : 0);
        }
        initializing = true;
        break;
    }
    if (!initializing) {
        *restarts = 0;
        bool running = false;
        for (size_t j = st ? st->n_container_statuses : 0; j-- > 0;) {
            const Skiffpb__V1__ContainerStatus *c = st->container_statuses[j];
            const Skiffpb__V1__ContainerState *s = c->state;
            *restarts += c->restart_count;
            if (c->last_state && c->last_state->terminated &&
                c->last_state->terminated->finished_at)
                *last_restart = c->last_state->terminated->finished_at;
            if (s && s->waiting && s->waiting->reason && s->waiting->reason[0])
                snprintf(status, scap, "%s", s->waiting->reason);
            else if (s && s->terminated && s->terminated->reason &&
                     s->terminated->reason[0])
                snprintf(status, scap, "%s", s->terminated->reason);
            else if (s && s->terminated && s->terminated->signal)
                snprintf(status, scap, "Signal:%d", s->terminated->signal);
            else if (s && s->terminated)
                snprintf(status, scap, "ExitCode:%d", s->terminated->exit_code);
            else if (c->ready && s && s->running) {
                running = true;
                (*ready)++;
            }
        }
        if (!strcmp(status, "Completed") && running)
            snprintf(status, scap, "%s",
                     has_ready_condition(st) ? "Running" : "NotReady");
    }
    const Skiffpb__V1__ObjectMeta *md = p->metadata;
    if (md && md->deletion_timestamp && st && st->reason &&
        !strcmp(st->reason, "NodeLost"))
        snprintf(status, scap, "Unknown");
    else if (md && md->deletion_timestamp)
        snprintf(status, scap, "Terminating");
}
