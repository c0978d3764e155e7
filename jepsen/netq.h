/*
 * jepsen/netq.h -- the contract between jepsen-netq (netq.c), the
 * userspace netem of the netem nemesis, and the programs that start it
 * (the runner's net.c and the jepsen_netq test).
 *
 * jepsen-netq runs inside one network namespace and takes the packets
 * that an iptables rule of that namespace hands to NFQUEUE queue
 * JR_NETQ_QUEUE:
 *
 *   iptables -I OUTPUT -o eth0 -m mark ! --mark JR_NETQ_MARK
 *            -j NFQUEUE --queue-num JR_NETQ_QUEUE --queue-bypass
 *
 * Duplicates it sends itself carry JR_NETQ_MARK, so the rule lets them
 * pass instead of queueing them a second time; --queue-bypass lets all
 * traffic pass while no jepsen-netq is bound to the queue.
 *
 *   jepsen-netq [--queue N] [--maxlen N] [--seed N] [--mark M] SPEC...
 *
 * SPEC is a subset of tc-netem's syntax (units: s, ms, us; percentages
 * with or without '%'):
 *   delay TIME [JITTER [CORR%]] [distribution uniform|normal]
 *   loss P% [CORR%]   duplicate P% [CORR%]   reorder P% [CORR%]
 * As in netem, reorder needs a delay: that fraction of packets goes out
 * at once while the others wait.  A delay's correlation applies to
 * uniform jitter only.
 *
 * Its standard output carries two lines for the program that started it:
 * JR_NETQ_READY once the queue is bound (traffic may be queued from then
 * on), and, when it ends on SIGTERM/SIGINT (every held packet is let go
 * first), JR_NETQ_STATS followed by "key=value" counters.  Diagnostics go
 * to standard error.  Exit status: 0 after a signal, 1 when the queue
 * could not be set up or failed, 2 on a usage or SPEC error.
 */
#ifndef SKIFF_JEPSEN_NETQ_H
#define SKIFF_JEPSEN_NETQ_H

#define JR_NETQ_QUEUE 7
#define JR_NETQ_MARK 0x4e51 /* "NQ" */
#define JR_NETQ_MAXLEN 1024 /* held by the kernel; more are dropped */
#define JR_NETQ_READY "ready"
#define JR_NETQ_STATS "stats"

#endif
