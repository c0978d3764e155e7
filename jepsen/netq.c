/*
 * jepsen-netq: tc-netem's delay, jitter, reordering, duplication and loss
 * done in userspace, for kernels without sch_netem.  One process per
 * network namespace; the netem nemesis starts one in each member it
 * disturbs and stops it when the fault ends (contract: netq.h).
 *
 * The kernel hands over every packet that the namespace's iptables rule
 * sends to NFQUEUE, and holds it until it gets a verdict.  The program
 * speaks the nfnetlink_queue protocol itself over a NETLINK_NETFILTER
 * socket: bind the queue, ask for whole packets (NFQNL_COPY_PACKET, which
 * a duplicate needs) and cap the kernel's queue at JR_NETQ_MAXLEN.  For
 * each packet, in netem's order: decide duplication and loss (a lost
 * packet that was not duplicated gets NF_DROP at once), draw a delay (the
 * fixed delay plus uniform or normal jitter, clamped at zero; a packet
 * picked for reordering gets none), and either accept it at once or keep
 * its id in a min-heap ordered by release time.  Jitter thus reorders
 * packets just as netem's time-sorted queue does.  A duplicate is a copy
 * of the payload with its own delay, sent when due through a raw
 * IPPROTO_RAW socket (IP_HDRINCL) of the same namespace; the copy carries
 * JR_NETQ_MARK so that the queueing rule lets it through.
 *
 * One thread, nothing blocks: ppoll() waits on the netlink socket and a
 * signalfd with the time to the heap's earliest release as its timeout,
 * and sockets are non-blocking.  Randomness is a seeded splitmix64, with
 * netem's correlation (each draw leans towards the previous one).  On
 * SIGTERM or SIGINT (also sent when the parent dies) every held packet is
 * accepted, the queue is unbound and the counters are printed.
 */
#include "netq.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RECV_BUF (128 * 1024) /* one packet message: payload <= 64 KiB */
#define SOCK_BUF (8 * 1024 * 1024)
#define ACK_TIMEOUT_MS 2000

typedef struct spec {
    uint64_t delay_ns, jitter_ns;
    int normal; /* jitter distribution: 0 uniform, 1 normal */
    double delay_corr;
    double loss, loss_corr;
    double dup, dup_corr;
    double reorder, reorder_corr;
} spec;

/* A packet waiting for its release time: a kernel packet id, or (copy !=
 * NULL) a duplicate to send through the raw socket. */
typedef struct held {
    uint64_t when; /* CLOCK_MONOTONIC ns */
    uint64_t seq;  /* arrival order: equal times keep it */
    uint32_t id;
    uint32_t len;
    unsigned char *copy;
} held;

typedef struct stats {
    unsigned long long packets, delayed, early, dropped, duplicated, overflow,
        errors;
    size_t max_held;
} stats;

/* netem's correlated random source: last value and correlation. */
typedef struct crand {
    double last, corr;
} crand;

typedef struct netq {
    spec sp;
    uint16_t queue;
    uint32_t maxlen, mark;
    uint64_t rng;
    crand c_delay, c_loss, c_dup, c_reorder;
    int nl, raw, sig;
    uint32_t nlseq;
    uint32_t acked; /* seq of the last ack seen */
    int ack_err;    /* its error, 0 or -errno */
    held *heap;
    size_t n, cap;
    uint64_t arrivals;
    int closing; /* ending: every packet goes out at once */
    stats st;
    unsigned char *buf;
} netq;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* ---- randomness --------------------------------------------------------- */
static uint64_t next_u64(netq *q)
{
    uint64_t z = (q->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double next_unit(netq *q)
{
    return (double)(next_u64(q) >> 11) / 9007199254740992.0;
}

static double draw_corr(netq *q, crand *c)
{
    double u = next_unit(q);
    if (c->corr > 0)
        u = c->corr * c->last + (1 - c->corr) * u;
    c->last = u;
    return u;
}

static int chance(netq *q, double p, crand *c)
{
    return p > 0 && draw_corr(q, c) < p;
}

static uint64_t draw_delay(netq *q)
{
    const spec *sp = &q->sp;
    double d = (double)sp->delay_ns;
    if (sp->jitter_ns && sp->normal) {
        /* Box-Muller; netem's normal table also ends near 4 sigma. */
        double u1 = next_unit(q), u2 = next_unit(q);
        double z = sqrt(-2 * log(1 - u1)) * cos(2 * M_PI * u2);
        z = z < -4 ? -4 : z > 4 ? 4 : z;
        d += z * (double)sp->jitter_ns;
    } else if (sp->jitter_ns) {
        d += (2 * draw_corr(q, &q->c_delay) - 1) * (double)sp->jitter_ns;
    }
    return d > 0 ? (uint64_t)d : 0;
}

/* ---- the spec ----------------------------------------------------------- */
static int parse_time(const char *s, uint64_t *ns)
{
    char *end;
    double v = strtod(s, &end);
    double unit;
    if (end == s || v < 0)
        return -1;
    if (!strcmp(end, "s") || !strcmp(end, "sec"))
        unit = 1e9;
    else if (!strcmp(end, "ms") || !strcmp(end, "msec"))
        unit = 1e6;
    else if (!strcmp(end, "us") || !strcmp(end, "usec"))
        unit = 1e3;
    else
        return -1;
    if (v * unit > 60e9) /* a minute per packet is not a delay */
        return -1;
    *ns = (uint64_t)(v * unit);
    return 0;
}

static int parse_pct(const char *s, double *p)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || (strcmp(end, "%") && *end) || v < 0 || v > 100)
        return -1;
    *p = v / 100;
    return 0;
}

/* An optional percentage (a correlation) at argv[*i + 1]. */
static int opt_pct(int argc, char **argv, int *i, double *p)
{
    if (*i + 1 < argc && !parse_pct(argv[*i + 1], p)) {
        ++*i;
        return 1;
    }
    return 0;
}

static int parse_spec(int argc, char **argv, spec *sp)
{
    memset(sp, 0, sizeof *sp);
    for (int i = 0; i < argc; i++) {
        const char *k = argv[i];
        int more = i + 1 < argc;
        if (!strcmp(k, "delay")) {
            if (!more || parse_time(argv[++i], &sp->delay_ns))
                goto bad;
            if (i + 1 < argc && !parse_time(argv[i + 1], &sp->jitter_ns)) {
                i++;
                opt_pct(argc, argv, &i, &sp->delay_corr);
            }
        } else if (!strcmp(k, "distribution")) {
            if (!more)
                goto bad;
            k = argv[++i];
            if (!strcmp(k, "normal"))
                sp->normal = 1;
            else if (strcmp(k, "uniform"))
                goto bad;
        } else if (!strcmp(k, "loss") || !strcmp(k, "duplicate") ||
                   !strcmp(k, "reorder")) {
            double *p = k[0] == 'l'   ? &sp->loss
                        : k[0] == 'd' ? &sp->dup
                                      : &sp->reorder;
            if (!more || parse_pct(argv[++i], p))
                goto bad;
            opt_pct(argc, argv, &i,
                    p == &sp->loss  ? &sp->loss_corr
                    : p == &sp->dup ? &sp->dup_corr
                                    : &sp->reorder_corr);
        } else {
            goto bad;
        }
        continue;
    bad:
        fprintf(stderr, "jepsen-netq: bad spec at '%s'\n", k);
        return -1;
    }
    if (sp->reorder > 0 && !sp->delay_ns) {
        fprintf(stderr, "jepsen-netq: reorder needs a delay (as in netem)\n");
        return -1;
    }
    return 0;
}

/* ---- the heap ----------------------------------------------------------- */
static int before(const held *a, const held *b)
{
    return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void heap_push(netq *q, held h)
{
    size_t i = q->n++;
    while (i > 0 && before(&h, &q->heap[(i - 1) / 2])) {
        q->heap[i] = q->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    q->heap[i] = h;
    if (q->n > q->st.max_held)
        q->st.max_held = q->n;
}

static held heap_pop(netq *q)
{
    held top = q->heap[0], last = q->heap[--q->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->n)
            break;
        if (c + 1 < q->n && before(&q->heap[c + 1], &q->heap[c]))
            c++;
        if (!before(&q->heap[c], &last))
            break;
        q->heap[i] = q->heap[c];
        i = c;
    }
    if (q->n)
        q->heap[i] = last;
    return top;
}

/* ---- netlink messages --------------------------------------------------- */
typedef union msg {
    struct nlmsghdr h;
    unsigned char b[256];
} msg;

static void msg_init(netq *q, msg *m, uint8_t type, uint16_t flags)
{
    memset(m, 0, sizeof *m);
    m->h.nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg));
    m->h.nlmsg_type = (uint16_t)((NFNL_SUBSYS_QUEUE << 8) | type);
    m->h.nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
    m->h.nlmsg_seq = ++q->nlseq;
    struct nfgenmsg *g = NLMSG_DATA(&m->h);
    g->nfgen_family = AF_UNSPEC;
    g->version = NFNETLINK_V0;
    g->res_id = htons(q->queue);
}

static void msg_attr(msg *m, uint16_t type, const void *data, size_t len)
{
    struct nlattr *a = (struct nlattr *)(m->b + NLMSG_ALIGN(m->h.nlmsg_len));
    size_t total = NLA_HDRLEN + len;
    assert(NLMSG_ALIGN(m->h.nlmsg_len) + NLA_ALIGN(total) <= sizeof m->b);
    a->nla_type = type;
    a->nla_len = (uint16_t)total;
    memcpy((unsigned char *)a + NLA_HDRLEN, data, len);
    m->h.nlmsg_len = (uint32_t)(NLMSG_ALIGN(m->h.nlmsg_len) + NLA_ALIGN(total));
}

static int msg_send(netq *q, msg *m)
{
    struct sockaddr_nl to = {.nl_family = AF_NETLINK};
    for (;;) {
        ssize_t k = sendto(q->nl, m, m->h.nlmsg_len, 0, (struct sockaddr *)&to,
                           sizeof to);
        if (k == (ssize_t)m->h.nlmsg_len)
            return 0;
        if (k < 0 && errno == EINTR)
            continue;
        return k < 0 ? -errno : -EIO;
    }
}

static int send_verdict(netq *q, uint32_t id, uint32_t verdict)
{
    msg m;
    msg_init(q, &m, NFQNL_MSG_VERDICT, 0);
    struct nfqnl_msg_verdict_hdr v = {.verdict = htonl(verdict),
                                      .id = htonl(id)};
    msg_attr(&m, NFQA_VERDICT_HDR, &v, sizeof v);
    int rc = msg_send(q, &m);
    if (rc)
        q->st.errors++;
    return rc;
}

static void send_copy(netq *q, const unsigned char *pkt, uint32_t len)
{
    const struct iphdr *ip = (const struct iphdr *)pkt;
    struct sockaddr_in to = {.sin_family = AF_INET};
    to.sin_addr.s_addr = ip->daddr;
    if (sendto(q->raw, pkt, len, MSG_DONTWAIT, (struct sockaddr *)&to,
               sizeof to) == (ssize_t)len)
        q->st.duplicated++;
    else
        q->st.errors++;
}

/* Lets one held entry go. */
static void release(netq *q, held *h, int send_copies)
{
    if (h->copy) {
        if (send_copies)
            send_copy(q, h->copy, h->len);
        free(h->copy);
    } else {
        send_verdict(q, h->id, NF_ACCEPT);
    }
}

/* ---- packets ------------------------------------------------------------ */
static void hold(netq *q, uint64_t when, uint32_t id, const unsigned char *pkt,
                 uint32_t len)
{
    held h = {.when = when, .seq = q->arrivals++, .id = id, .len = len};
    if (q->n == q->cap) {
        /* The kernel caps what it queues, so this needs duplicates of
         * nearly every packet of a full queue: send now rather than
         * grow without bound. */
        q->st.overflow++;
        if (!pkt)
            send_verdict(q, id, NF_ACCEPT);
        return;
    }
    if (pkt) {
        h.copy = malloc(len);
        if (!h.copy) {
            q->st.errors++;
            return;
        }
        memcpy(h.copy, pkt, len);
    }
    heap_push(q, h);
}

static void on_packet(netq *q, const struct nlmsghdr *nh)
{
    const struct nfqnl_msg_packet_hdr *ph = NULL;
    const unsigned char *payload = NULL;
    uint32_t plen = 0;
    size_t off = NLMSG_LENGTH(sizeof(struct nfgenmsg));
    off = NLMSG_ALIGN(off);
    while (off + NLA_HDRLEN <= nh->nlmsg_len) {
        const struct nlattr *a =
            (const struct nlattr *)((const unsigned char *)nh + off);
        if (a->nla_len < NLA_HDRLEN || off + a->nla_len > nh->nlmsg_len)
            break;
        const unsigned char *d = (const unsigned char *)a + NLA_HDRLEN;
        uint32_t dl = a->nla_len - NLA_HDRLEN;
        switch (a->nla_type & NLA_TYPE_MASK) {
        case NFQA_PACKET_HDR:
            if (dl >= sizeof *ph)
                ph = (const struct nfqnl_msg_packet_hdr *)d;
            break;
        case NFQA_PAYLOAD:
            payload = d;
            plen = dl;
            break;
        }
        off += NLA_ALIGN(a->nla_len);
    }
    if (!ph)
        return;
    uint32_t id = ntohl(ph->packet_id);
    uint64_t now = now_ns();
    q->st.packets++;
    if (q->closing) {
        send_verdict(q, id, NF_ACCEPT);
        return;
    }
    /* netem's order: duplicate, then loss takes one of the copies. */
    int dup = chance(q, q->sp.dup, &q->c_dup);
    int lost = chance(q, q->sp.loss, &q->c_loss);
    if (lost && !dup) {
        q->st.dropped++;
        send_verdict(q, id, NF_DROP);
        return;
    }
    if (dup && !lost && payload && plen >= sizeof(struct iphdr) &&
        (payload[0] >> 4) == 4)
        hold(q, now + draw_delay(q), 0, payload, plen);
    uint64_t d = draw_delay(q);
    if (q->sp.reorder > 0 && chance(q, q->sp.reorder, &q->c_reorder)) {
        q->st.early++;
        d = 0;
    }
    if (!d) {
        send_verdict(q, id, NF_ACCEPT);
        return;
    }
    q->st.delayed++;
    hold(q, now + d, id, NULL, 0);
}

/* Reads every message waiting on the netlink socket.  Returns 0, or a
 * negative errno when the socket failed. */
static int drain(netq *q)
{
    for (;;) {
        ssize_t k = recv(q->nl, q->buf, RECV_BUF, MSG_DONTWAIT);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno == ENOBUFS) {
                /* Messages were lost; their packets stay queued in the
                 * kernel until the queue is unbound. */
                q->st.errors++;
                continue;
            }
            return -errno;
        }
        /* NLMSG_NEXT's count must be signed: the last message's padding
         * may reach past what recv returned. */
        int left = (int)k;
        for (struct nlmsghdr *h = (struct nlmsghdr *)q->buf; NLMSG_OK(h, left);
             h = NLMSG_NEXT(h, left)) {
            if (h->nlmsg_type == NLMSG_ERROR) {
                const struct nlmsgerr *e = NLMSG_DATA(h);
                if (h->nlmsg_len >= NLMSG_LENGTH(sizeof *e)) {
                    q->acked = h->nlmsg_seq;
                    q->ack_err = e->error;
                }
            } else if (h->nlmsg_type ==
                       ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)) {
                on_packet(q, h);
            }
        }
    }
}

/* Sends a config message and waits for its ack (packets that arrive
 * meanwhile are handled as usual). */
static int configure(netq *q, msg *m)
{
    uint32_t seq = m->h.nlmsg_seq;
    int rc = msg_send(q, m);
    if (rc)
        return rc;
    uint64_t end = now_ns() + ACK_TIMEOUT_MS * 1000000ULL;
    while (q->acked != seq) {
        uint64_t now = now_ns();
        if (now >= end)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = q->nl, .events = POLLIN};
        if (poll(&p, 1, (int)((end - now) / 1000000) + 1) < 0 && errno != EINTR)
            return -errno;
        if ((rc = drain(q)))
            return rc;
    }
    return q->ack_err;
}

static int bind_queue(netq *q)
{
    msg m;
    struct nfqnl_msg_config_cmd cmd = {.command = NFQNL_CFG_CMD_BIND};
    msg_init(q, &m, NFQNL_MSG_CONFIG, NLM_F_ACK);
    msg_attr(&m, NFQA_CFG_CMD, &cmd, sizeof cmd);
    int rc = configure(q, &m);
    if (rc) {
        fprintf(stderr, "jepsen-netq: bind queue %u: %s\n", q->queue,
                strerror(-rc));
        return rc;
    }
    struct nfqnl_msg_config_params p = {.copy_range = htonl(0xffff),
                                        .copy_mode = NFQNL_COPY_PACKET};
    uint32_t maxlen = htonl(q->maxlen);
    msg_init(q, &m, NFQNL_MSG_CONFIG, NLM_F_ACK);
    msg_attr(&m, NFQA_CFG_PARAMS, &p, sizeof p);
    msg_attr(&m, NFQA_CFG_QUEUE_MAXLEN, &maxlen, sizeof maxlen);
    if ((rc = configure(q, &m)))
        fprintf(stderr, "jepsen-netq: queue %u parameters: %s\n", q->queue,
                strerror(-rc));
    return rc;
}

static void unbind_queue(netq *q)
{
    msg m;
    struct nfqnl_msg_config_cmd cmd = {.command = NFQNL_CFG_CMD_UNBIND};
    msg_init(q, &m, NFQNL_MSG_CONFIG, 0);
    msg_attr(&m, NFQA_CFG_CMD, &cmd, sizeof cmd);
    msg_send(q, &m);
}

/* ---- setup and the loop ------------------------------------------------- */
static int open_sockets(netq *q)
{
    int one = 1, size = SOCK_BUF;
    q->nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
                   NETLINK_NETFILTER);
    if (q->nl < 0)
        goto err;
    struct sockaddr_nl me = {.nl_family = AF_NETLINK};
    if (bind(q->nl, (struct sockaddr *)&me, sizeof me))
        goto err;
    /* Room for a full kernel queue of messages, so none is lost. */
    if (setsockopt(q->nl, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size))
        setsockopt(q->nl, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    q->raw =
        socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_RAW);
    if (q->raw < 0 ||
        setsockopt(q->raw, IPPROTO_IP, IP_HDRINCL, &one, sizeof one) ||
        setsockopt(q->raw, SOL_SOCKET, SO_MARK, &q->mark, sizeof q->mark))
        goto err;
    return 0;
err:
    one = errno;
    fprintf(stderr, "jepsen-netq: sockets: %s\n", strerror(one));
    return -one;
}

static void print_stats(netq *q)
{
    const stats *s = &q->st;
    printf("%s packets=%llu delayed=%llu early=%llu dropped=%llu "
           "duplicated=%llu overflow=%llu errors=%llu max_held=%zu\n",
           JR_NETQ_STATS, s->packets, s->delayed, s->early, s->dropped,
           s->duplicated, s->overflow, s->errors, s->max_held);
    fflush(stdout);
}

static int loop(netq *q)
{
    for (;;) {
        uint64_t now = now_ns();
        while (q->n && q->heap[0].when <= now) {
            held h = heap_pop(q);
            release(q, &h, 1);
        }
        struct timespec ts, *tp = NULL;
        if (q->n) {
            uint64_t wait = q->heap[0].when - now;
            ts.tv_sec = (time_t)(wait / 1000000000ULL);
            ts.tv_nsec = (long)(wait % 1000000000ULL);
            tp = &ts;
        }
        struct pollfd p[2] = {{.fd = q->nl, .events = POLLIN},
                              {.fd = q->sig, .events = POLLIN}};
        if (ppoll(p, 2, tp, NULL) < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (p[1].revents)
            return 0;
        if (p[0].revents & POLLNVAL)
            return -EBADF;
        if (p[0].revents) { /* POLLERR too: recv reports ENOBUFS */
            int rc = drain(q);
            if (rc)
                return rc;
        }
    }
}

static void usage(void)
{
    fprintf(stderr, "usage: jepsen-netq [--queue N] [--maxlen N] "
                    "[--seed N] [--mark M] SPEC...\n"
                    "  SPEC: delay TIME [JITTER [CORR%%]] "
                    "[distribution uniform|normal]\n"
                    "        loss P%% [CORR%%]  duplicate P%% [CORR%%]  "
                    "reorder P%% [CORR%%]\n");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"queue", 1, 0, 'q'}, {"maxlen", 1, 0, 'm'}, {"seed", 1, 0, 's'},
        {"mark", 1, 0, 'k'},  {"help", 0, 0, 'h'},   {0, 0, 0, 0}};
    netq q = {.queue = JR_NETQ_QUEUE,
              .maxlen = JR_NETQ_MAXLEN,
              .mark = JR_NETQ_MARK,
              .rng = 1,
              .nl = -1,
              .raw = -1,
              .sig = -1};
    int ch, rc = 1;
    while ((ch = getopt_long(argc, argv, "+", lo, NULL)) != -1) {
        unsigned long v = 0;
        if (optarg)
            v = strtoul(optarg, NULL, 0);
        switch (ch) {
        case 'q':
            if (v > 65535)
                goto usage;
            q.queue = (uint16_t)v;
            break;
        case 'm':
            if (v < 1 || v > 65536)
                goto usage;
            q.maxlen = (uint32_t)v;
            break;
        case 's':
            q.rng = strtoull(optarg, NULL, 0);
            break;
        case 'k':
            q.mark = (uint32_t)v;
            break;
        default:
            goto usage;
        }
    }
    if (optind >= argc || parse_spec(argc - optind, argv + optind, &q.sp))
        goto usage;
    q.c_delay.corr = q.sp.delay_corr;
    q.c_loss.corr = q.sp.loss_corr;
    q.c_dup.corr = q.sp.dup_corr;
    q.c_reorder.corr = q.sp.reorder_corr;

    /* Signals arrive through the poll loop; the parent's death too, so a
     * runner killed hard leaves no queue program behind. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    q.sig = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    if (q.sig < 0 || prctl(PR_SET_PDEATHSIG, SIGTERM) || getppid() == 1) {
        fprintf(stderr, "jepsen-netq: signals or parent: %s\n",
                strerror(errno));
        goto out;
    }
    q.cap = 2 * (size_t)q.maxlen + 16;
    q.heap = calloc(q.cap, sizeof *q.heap);
    q.buf = malloc(RECV_BUF);
    if (!q.heap || !q.buf) {
        fprintf(stderr, "jepsen-netq: out of memory\n");
        goto out;
    }
    if (open_sockets(&q) || bind_queue(&q))
        goto out;
    printf("%s queue=%u\n", JR_NETQ_READY, q.queue);
    fflush(stdout);
    int lrc = loop(&q);
    if (lrc)
        fprintf(stderr, "jepsen-netq: queue %u failed: %s\n", q.queue,
                strerror(-lrc));
    /* Let everything held or still queued go before the queue
     * disappears: unbinding would drop the packets left in the kernel. */
    q.closing = 1;
    drain(&q);
    while (q.n) {
        held h = heap_pop(&q);
        release(&q, &h, 0);
    }
    unbind_queue(&q);
    print_stats(&q);
    rc = lrc ? 1 : 0;
out:
    while (q.n) {
        held h = heap_pop(&q);
        free(h.copy);
    }
    free(q.heap);
    free(q.buf);
    if (q.nl >= 0)
        close(q.nl);
    if (q.raw >= 0)
        close(q.raw);
    if (q.sig >= 0)
        close(q.sig);
    return rc;
usage:
    usage();
    return 2;
}
