/*
 * Unit tests for the raft core: the public API driven directly (single
 * member, creation and restore checks, persistence rules, allocation
 * failures) and small clusters driven through the simulation harness
 * (elections, PreVote, CheckQuorum, batching, flow control, ReadIndex and
 * lease reads, membership rules).  The long randomized runs live in
 * tests/sim, the protocol stories in tests/raft/scenarios.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "cluster.h"
#include "raft.h"
#include "tu.h"

#include <errno.h>
#include <string.h>

static int setup(void **state)
{
    (void)state;
    tu_alloc_install();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    long leaked = tu_alloc_uninstall();
    if (leaked)
        fail_msg("%ld blocks leaked", leaked);
    return 0;
}

static raft_conf conf_of(int n)
{
    raft_conf c = {0};
    for (int i = 1; i <= n; i++)
        c.voters[c.n_voters++] = (raft_id)i;
    return c;
}

static raft *single(bool async)
{
    raft_config cfg = {.id = 1, .seed = 7, .async_storage = async};
    raft_conf c = conf_of(1);
    raft_restore st;
    raft_restore_bootstrap(&st, &c);
    raft *r = NULL;
    assert_int_equal(raft_create(&cfg, &st, &r), 0);
    return r;
}

/* Drains readies; returns the number of committed entries seen. */
static size_t drain(raft *r)
{
    size_t applied = 0;
    while (raft_has_ready(r)) {
        raft_ready rd;
        assert_int_equal(raft_ready_get(r, &rd), 0);
        applied += rd.n_committed;
        assert_int_equal(raft_advance(r, &rd), 0);
    }
    return applied;
}

static sim_cluster *cluster(int n, bool prevote, bool cq)
{
    sim_opts o = {.n = n, .seed = 42};
    o.cfg.election_ticks = 10;
    o.cfg.heartbeat_ticks = 1;
    o.cfg.async_storage = true;
    o.cfg.pre_vote = prevote;
    o.cfg.check_quorum = cq;
    sim_cluster *c = NULL;
    assert_int_equal(sim_create(&o, &c), 0);
    return c;
}

static raft_status status(sim_cluster *c, int slot)
{
    raft_status s;
    raft_status_get(c->nodes[slot].r, &s);
    return s;
}

static void elect(sim_cluster *c, int slot)
{
    assert_int_equal(raft_campaign(c->nodes[slot].r), 0);
    assert_int_equal(sim_process(c, slot), 0);
    assert_int_equal(sim_settle(c), 0);
    assert_int_equal(status(c, slot).role, RAFT_LEADER);
}

static size_t count_msgs(sim_cluster *c, uint32_t type)
{
    size_t n = 0;
    for (size_t k = 0; k < c->n_net; k++)
        n += c->net[k]->m.type == type;
    return n;
}

/* ---- API basics ---------------------------------------------------------- */

static void test_errors(void **state)
{
    (void)state;
    raft_err_init();
    assert_string_equal(cm_err_name(RAFT_ENOTLEADER), "RAFT_ENOTLEADER");
    assert_string_equal(cm_strerror(RAFT_EBUSY),
                        "a membership change or transfer is pending");
    assert_null(raft_strerror(-1));
}

static void test_create_checks(void **state)
{
    (void)state;
    raft *r = NULL;
    raft_conf c = conf_of(3);
    raft_restore st;
    raft_restore_bootstrap(&st, &c);
    raft_config cfg = {.id = 0};
    assert_int_equal(raft_create(&cfg, &st, &r), RAFT_EINVAL);
    cfg = (raft_config){.id = 1, .lease_read = true};
    assert_int_equal(raft_create(&cfg, &st, &r), RAFT_EINVAL);
    cfg = (raft_config){.id = 1, .election_ticks = 2, .heartbeat_ticks = 2};
    assert_int_equal(raft_create(&cfg, &st, &r), RAFT_EINVAL);

    /* Entries must follow the snapshot without gaps. */
    cfg = (raft_config){.id = 1};
    raft_entry e[2] = {{.term = 1, .index = 3}, {.term = 1, .index = 4}};
    st.entries = e;
    st.n_entries = 2;
    assert_int_equal(raft_create(&cfg, &st, &r), RAFT_ECORRUPT);
    e[0].index = 2;
    e[1].index = 3;
    /* A durable commit index beyond the durable log: refuse (the log was
     * truncated) rather than silently move commit back. */
    st.hs.commit = 4;
    assert_int_equal(raft_create(&cfg, &st, &r), RAFT_ECORRUPT);
    st.hs.commit = 3;
    st.applied = 0; /* behind the snapshot */
    assert_int_equal(raft_create(&cfg, &st, &r), RAFT_ECORRUPT);
    st.applied = 2;
    assert_int_equal(raft_create(&cfg, &st, &r), 0);
    raft_status s;
    raft_status_get(r, &s);
    assert_int_equal(s.commit, 3);
    assert_int_equal(s.last_index, 3);
    assert_int_equal(s.applied, 2);
    raft_destroy(r);
}

static void test_single_member_sync(void **state)
{
    (void)state;
    raft *r = single(false);
    assert_int_equal(raft_propose(r, "x", 1, NULL), RAFT_ENOTLEADER);
    assert_int_equal(raft_campaign(r), 0);
    raft_ready rd;
    assert_true(raft_has_ready(r));
    assert_int_equal(raft_ready_get(r, &rd), 0);
    assert_int_equal(rd.role, RAFT_LEADER);
    assert_true(rd.has_hard_state);
    assert_int_equal(rd.hs.term, 2);
    assert_int_equal(rd.hs.vote, 1);
    assert_int_equal(rd.n_entries, 1); /* the no-op */
    assert_int_equal(rd.entries[0].type, RAFT_ENTRY_NOOP);
    /* Not committed before it is durable. */
    assert_int_equal(rd.hs.commit, 1);
    assert_int_equal(rd.n_committed, 0);
    assert_int_equal(raft_advance(r, &rd), 0);
    assert_int_equal(drain(r), 1);
    uint64_t idx;
    assert_int_equal(raft_propose(r, "hello", 5, &idx), 0);
    assert_int_equal(idx, 3);
    assert_int_equal(raft_ready_get(r, &rd), 0);
    assert_int_equal(rd.n_entries, 1);
    assert_memory_equal(rd.entries[0].buf, "hello", 5);
    assert_int_equal(raft_advance(r, &rd), 0);
    assert_int_equal(raft_ready_get(r, &rd), 0);
    assert_int_equal(rd.n_committed, 1);
    assert_int_equal(rd.committed[0].index, 3);
    assert_int_equal(raft_advance(r, &rd), 0);
    raft_destroy(r);
}

static void test_async_persist_gates_commit(void **state)
{
    (void)state;
    raft *r = single(true);
    assert_int_equal(raft_campaign(r), 0);
    assert_int_equal(drain(r), 0);
    raft_status s;
    raft_status_get(r, &s);
    assert_int_equal(s.commit, 1); /* no-op not durable yet */
    /* A stale report (wrong term) is ignored. */
    assert_int_equal(raft_persisted(r, 2, 1), 0);
    raft_status_get(r, &s);
    assert_int_equal(s.stable, 1);
    assert_int_equal(raft_persisted(r, 2, 2), 0);
    raft_status_get(r, &s);
    assert_int_equal(s.commit, 2);
    assert_int_equal(drain(r), 1);
    /* A batch of proposals shares one blob and one ready. */
    const void *d[3] = {"a", "bb", "ccc"};
    size_t l[3] = {1, 2, 3};
    uint64_t first;
    assert_int_equal(raft_propose_batch(r, d, l, 3, &first), 0);
    assert_int_equal(first, 3);
    raft_ready rd;
    assert_int_equal(raft_ready_get(r, &rd), 0);
    assert_int_equal(rd.n_entries, 3);
    assert_memory_equal(rd.entries[2].buf, "ccc", 3);
    assert_ptr_equal(rd.entries[0].blob, rd.entries[2].blob);
    assert_int_equal(raft_advance(r, &rd), 0);
    assert_int_equal(raft_persisted(r, 5, 2), 0);
    assert_int_equal(drain(r), 3);
    /* Compaction: only applied, durable indexes. */
    assert_int_equal(raft_compact(r, 9), RAFT_EUNAVAILABLE);
    assert_int_equal(raft_compact(r, 4), 0);
    assert_int_equal(raft_compact(r, 4), RAFT_ECOMPACTED);
    uint64_t t;
    assert_int_equal(raft_term_at(r, 3, &t), RAFT_ECOMPACTED);
    assert_int_equal(raft_term_at(r, 4, &t), 0);
    assert_int_equal(t, 2);
    raft_snapshot_meta m;
    raft_snapshot_get(r, &m);
    assert_int_equal(m.index, 4);
    assert_int_equal(m.conf.n_voters, 1);
    raft_destroy(r);
}

static void test_msg_copy_and_blobs(void **state)
{
    (void)state;
    raft_blob *b = raft_blob_create(4);
    assert_non_null(b);
    memcpy(raft_blob_bytes(b), "abcd", 4);
    raft_entry e = {
        .term = 1, .index = 2, .len = 4, .buf = raft_blob_bytes(b), .blob = b};
    raft_msg m = {.type = RAFT_MSG_APPEND, .entries = &e, .n_entries = 1};
    raft_msg copy;
    tu_alloc_fail_after(0);
    assert_int_equal(raft_msg_copy(&copy, &m), -ENOMEM);
    tu_alloc_fail_after(-1);
    assert_int_equal(raft_msg_copy(&copy, &m), 0);
    raft_blob_unref(b); /* the copy keeps the bytes alive */
    assert_memory_equal(copy.entries[0].buf, "abcd", 4);
    raft_msg_free(&copy);
    assert_string_equal(raft_msg_type_name(RAFT_MSG_TIMEOUT_NOW),
                        "TIMEOUT_NOW");
}

static void test_msg_codec(void **state)
{
    (void)state;
    raft_blob *b = raft_blob_create(5);
    memcpy(raft_blob_bytes(b), "hello", 5);
    raft_entry e[3] = {
        {.term = 3, .index = 7, .type = RAFT_ENTRY_NOOP},
        {.term = 3, .index = 8, .len = 5, .buf = raft_blob_bytes(b), .blob = b},
        {.term = 3,
         .index = 9,
         .type = RAFT_ENTRY_CONF,
         .len = 2,
         .buf = raft_blob_bytes(b),
         .blob = b}};
    raft_msg m = {.type = RAFT_MSG_APPEND,
                  .from = 1,
                  .to = 2,
                  .term = 3,
                  .log_term = 2,
                  .index = 6,
                  .commit = 5,
                  .hint = 4,
                  .ctx = 99,
                  .reject = 1,
                  .force = 1,
                  .entries = e,
                  .n_entries = 3};
    m.snap.index = 11;
    m.snap.conf.n_voters = 2;
    m.snap.conf.voters[0] = 1;
    m.snap.conf.voters[1] = 2;
    m.snap.conf.n_learners = 1;
    m.snap.conf.learners[0] = 9;
    cm_buf buf = {0};
    assert_int_equal(raft_msg_encode(&m, &buf), 0);
    raft_msg d;
    assert_int_equal(raft_msg_decode(buf.base, buf.len, &d), 0);
    assert_int_equal(d.type, m.type);
    assert_int_equal(d.ctx, 99);
    assert_int_equal(d.hint, 4);
    assert_int_equal(d.reject, 1);
    assert_int_equal(d.force, 1);
    assert_int_equal(d.n_entries, 3);
    assert_int_equal(d.entries[0].len, 0);
    assert_null(d.entries[0].blob);
    assert_memory_equal(d.entries[1].buf, "hello", 5);
    assert_memory_equal(d.entries[2].buf, "he", 2);
    assert_int_equal(d.entries[2].type, RAFT_ENTRY_CONF);
    assert_int_equal(d.snap.index, 11);
    assert_int_equal(d.snap.conf.learners[0], 9);
    raft_msg_free(&d);
    /* Every truncation, and trailing garbage, is rejected cleanly. */
    for (size_t n = 0; n < buf.len; n++)
        assert_int_equal(raft_msg_decode(buf.base, n, &d), CM_ECORRUPT);
    assert_int_equal(cm_buf_put_u8(&buf, 0), 0);
    assert_int_equal(raft_msg_decode(buf.base, buf.len, &d), CM_ECORRUPT);
    buf.len--;
    /* Allocation failures while decoding leak nothing. */
    for (long k = 0; k < 2; k++) {
        tu_alloc_fail_after(k);
        assert_int_equal(raft_msg_decode(buf.base, buf.len, &d), -ENOMEM);
        tu_alloc_fail_after(-1);
    }
    cm_buf_free(&buf);
    raft_blob_unref(b);
}

static void test_conf_codec(void **state)
{
    (void)state;
    uint8_t buf[RAFT_CONF_CHANGE_LEN];
    raft_conf_change_encode(buf, RAFT_CONF_ADD_LEARNER, 77);
    enum raft_conf_op op;
    raft_id id;
    assert_int_equal(raft_conf_change_decode(buf, sizeof(buf), &op, &id), 0);
    assert_int_equal(op, RAFT_CONF_ADD_LEARNER);
    assert_int_equal(id, 77);
    assert_int_equal(raft_conf_change_decode(buf, 3, &op, &id), RAFT_EINVAL);
    raft_conf c = conf_of(1);
    assert_int_equal(raft_conf_apply(&c, RAFT_CONF_REMOVE, 1), RAFT_EINVAL);
    assert_int_equal(raft_conf_apply(&c, RAFT_CONF_ADD_LEARNER, 2), 0);
    assert_int_equal(raft_conf_apply(&c, RAFT_CONF_ADD_LEARNER, 2),
                     RAFT_EINVAL);
    assert_int_equal(raft_conf_apply(&c, RAFT_CONF_ADD_VOTER, 2), 0);
    assert_true(raft_conf_is_voter(&c, 2));
    assert_false(raft_conf_is_learner(&c, 2));
    for (raft_id i = 3; i <= RAFT_MAX_MEMBERS; i++)
        assert_int_equal(raft_conf_apply(&c, RAFT_CONF_ADD_VOTER, i), 0);
    assert_int_equal(raft_conf_apply(&c, RAFT_CONF_ADD_VOTER, 99),
                     RAFT_ETOOMANY);
}

/* Every allocation in create, campaign, propose and ready may fail: the
 * call returns -ENOMEM (or the core is marked failed) and nothing leaks. */
static void test_out_of_memory(void **state)
{
    (void)state;
    for (long n = 0;; n++) {
        raft_config cfg = {.id = 1, .seed = 1};
        raft_conf c = conf_of(1);
        raft_restore st;
        raft_restore_bootstrap(&st, &c);
        raft *r = NULL;
        long before = tu_alloc_failures();
        tu_alloc_fail_after(n);
        int rc = raft_create(&cfg, &st, &r);
        if (rc == 0)
            rc = raft_campaign(r);
        for (int i = 0; rc == 0 && i < 40; i++)
            rc = raft_propose(r, "payload", 7, NULL);
        raft_ready rd;
        if (rc == 0)
            rc = raft_ready_get(r, &rd);
        if (rc == 0 && r)
            rc = raft_advance(r, &rd);
        long failures = tu_alloc_failures() - before;
        tu_alloc_fail_after(-1);
        if (rc)
            assert_true(rc == -ENOMEM || rc == RAFT_EFAILED);
        if (rc && r) {
            /* Either the failure was clean (propose) or the core is
             * failed and refuses further input. */
            int t = raft_tick(r);
            assert_true(t == 0 || t == RAFT_EFAILED);
        }
        raft_destroy(r);
        assert_int_equal(tu_alloc_outstanding(), 0);
        if (rc == 0 && failures == 0)
            break;
        assert_true(n < 1000);
    }
}

/* A follower with a stale tail must not commit past what the current
 * append proved to match, whatever the leader's commit index says
 * (paper Figure 2: min(leaderCommit, index of last new entry)). */
static void test_follower_commit_bounded(void **state)
{
    (void)state;
    raft_conf c = conf_of(3);
    raft_restore st;
    raft_restore_bootstrap(&st, &c);
    raft_entry e[3] = {{.term = 1, .index = 2},
                       {.term = 1, .index = 3},
                       {.term = 1, .index = 4}};
    st.entries = e;
    st.n_entries = 3;
    raft_config cfg = {.id = 2, .async_storage = false};
    raft *r;
    assert_int_equal(raft_create(&cfg, &st, &r), 0);
    raft_msg m = {.type = RAFT_MSG_APPEND,
                  .from = 1,
                  .to = 2,
                  .term = 2,
                  .index = 2,
                  .log_term = 1,
                  .commit = 4};
    assert_int_equal(raft_step(r, &m), 0);
    raft_status s;
    raft_status_get(r, &s);
    assert_int_equal(s.commit, 2);
    assert_int_equal(s.last_index, 4); /* the tail stays until it conflicts */
    raft_ready rd;
    assert_int_equal(raft_ready_get(r, &rd), 0);
    assert_int_equal(rd.n_msgs, 1);
    assert_int_equal(rd.msgs[0].type, RAFT_MSG_APPEND_RESP);
    assert_int_equal(rd.msgs[0].index, 2);
    assert_true(rd.msgs[0].after_persist);
    assert_int_equal(raft_advance(r, &rd), 0);
    /* A conflicting entry truncates the tail; commit follows the match. */
    raft_entry ne = {.term = 2, .index = 3, .type = RAFT_ENTRY_NOOP};
    m.entries = &ne;
    m.n_entries = 1;
    assert_int_equal(raft_step(r, &m), 0);
    raft_status_get(r, &s);
    assert_int_equal(s.last_index, 3);
    assert_int_equal(s.commit, 3);
    uint64_t t;
    assert_int_equal(raft_term_at(r, 3, &t), 0);
    assert_int_equal(t, 2);
    /* A heartbeat's commit is capped by the log as well. */
    raft_msg hb = {
        .type = RAFT_MSG_HEARTBEAT, .from = 1, .to = 2, .term = 2, .commit = 9};
    assert_int_equal(raft_ready_get(r, &rd), 0);
    assert_int_equal(raft_advance(r, &rd), 0);
    assert_int_equal(raft_step(r, &hb), 0);
    raft_status_get(r, &s);
    assert_int_equal(s.commit, 3);
    raft_destroy(r);
}

/* ---- clusters ------------------------------------------------------------ */

static void test_election_and_replication(void **state)
{
    (void)state;
    sim_cluster *c = cluster(3, false, false);
    for (int i = 0; i < 40 && sim_leader(c) < 0; i++) {
        for (int k = 0; k < 3; k++) {
            raft_tick(c->nodes[k].r);
            sim_process(c, k);
        }
        assert_int_equal(sim_settle(c), 0);
        assert_int_equal(sim_check(c), 0);
    }
    int l = sim_leader(c);
    assert_true(l >= 0);
    uint64_t idx;
    assert_int_equal(sim_propose(c, l, &idx), 0);
    assert_int_equal(sim_settle(c), 0);
    for (int k = 0; k < 3; k++)
        assert_true(status(c, k).commit >= idx);
    sim_destroy(c);
}

/* Like sim_settle, but appends to `slot` without entries are lost, so
 * that follower acknowledges entries without learning they committed. */
static void settle_without_commit_to(sim_cluster *c, int slot)
{
    for (int guard = 0; guard < 100000; guard++) {
        bool did = false;
        for (int i = 0; i < SIM_MAX_NODES; i++)
            if (c->nodes[i].r && c->nodes[i].n_wq) {
                assert_int_equal(sim_persist(c, i, SIZE_MAX), 0);
                assert_int_equal(sim_process(c, i), 0);
                did = true;
            }
        if (c->n_net) {
            const raft_msg *m = &c->net[0]->m;
            if (sim_slot(c, m->to) == slot &&
                (m->type == RAFT_MSG_HEARTBEAT ||
                 (m->type == RAFT_MSG_APPEND && !m->n_entries)))
                sim_drop(c, 0);
            else
                assert_int_equal(sim_deliver(c, 0, false), 0);
            did = true;
        }
        if (!did)
            return;
    }
    fail_msg("network does not settle");
}

/* A follower restarts without entries it had acknowledged (its WAL's
 * tail was damaged and cut).  The leader still counts them as matched,
 * so a plain "rejection at or below match is stale" rule would never
 * send them again and the follower would stay behind for good. */
static void test_follower_lost_acked_tail(void **state)
{
    (void)state;
    sim_cluster *c = cluster(3, true, false);
    elect(c, 0);
    uint64_t idx = 0;
    assert_int_equal(sim_propose(c, 0, &idx), 0);
    assert_int_equal(sim_settle(c), 0);
    uint64_t before = status(c, 1).commit;
    assert_true(before >= idx);
    for (int i = 0; i < 3; i++)
        assert_int_equal(sim_propose_nowait(c, 0, &idx), 0);
    assert_int_equal(sim_process(c, 0), 0);
    settle_without_commit_to(c, 1);
    assert_int_equal(status(c, 1).last_index, idx);
    assert_int_equal(status(c, 1).commit, before);
    assert_true(status(c, 0).commit >= idx);

    sim_crash(c, 1);
    sim_node *n = &c->nodes[1];
    size_t keep = 0;
    while (keep < n->n_log && n->log[keep].index <= before)
        keep++;
    for (size_t i = keep; i < n->n_log; i++)
        raft_blob_unref(n->log[i].blob);
    n->n_log = keep;
    assert_int_equal(sim_restart(c, 1), 0);
    assert_int_equal(status(c, 1).last_index, before);

    uint64_t after = 0;
    assert_int_equal(sim_propose(c, 0, &after), 0);
    assert_int_equal(sim_settle(c), 0);
    assert_int_equal(status(c, 1).last_index, after);
    assert_true(status(c, 1).commit >= after);
    assert_int_equal(sim_check(c), 0);
    sim_destroy(c);
}

static void test_prevote_keeps_term(void **state)
{
    (void)state;
    sim_cluster *c = cluster(3, true, true);
    elect(c, 0);
    uint64_t term = status(c, 0).term;
    /* 3 is cut off and times out again and again; with PreVote its term
     * stays put, so it cannot disrupt the leader when it comes back. */
    for (int a = 0; a < 3; a++)
        if (a != 2) {
            sim_block(c, a, 2, true);
            sim_block(c, 2, a, true);
        }
    for (int i = 0; i < 100; i++) {
        raft_tick(c->nodes[2].r);
        sim_process(c, 2);
        assert_int_equal(sim_settle(c), 0);
    }
    assert_int_equal(status(c, 2).term, term);
    sim_heal(c);
    for (int i = 0; i < 5; i++) {
        for (int k = 0; k < 3; k++) {
            raft_tick(c->nodes[k].r);
            sim_process(c, k);
        }
        assert_int_equal(sim_settle(c), 0);
    }
    assert_int_equal(status(c, 0).role, RAFT_LEADER);
    assert_int_equal(status(c, 0).term, term);
    sim_destroy(c);
}

static void test_check_quorum_steps_down(void **state)
{
    (void)state;
    sim_cluster *c = cluster(3, false, true);
    elect(c, 0);
    for (int a = 1; a < 3; a++) {
        sim_block(c, a, 0, true);
        sim_block(c, 0, a, true);
    }
    int ticks = 0;
    while (status(c, 0).role == RAFT_LEADER && ticks < 100) {
        raft_tick(c->nodes[0].r);
        sim_process(c, 0);
        assert_int_equal(sim_settle(c), 0);
        ticks++;
    }
    assert_int_equal(status(c, 0).role, RAFT_FOLLOWER);
    assert_true(ticks <= 2 * 10);
    assert_int_equal(raft_propose(c->nodes[0].r, "x", 1, NULL),
                     RAFT_ENOTLEADER);
    sim_destroy(c);
}

static void test_proposal_batching(void **state)
{
    (void)state;
    sim_cluster *c = cluster(3, false, false);
    elect(c, 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(sim_propose_nowait(c, 0, NULL), 0);
    assert_int_equal(sim_process(c, 0), 0);
    /* One append per follower carries all 100 entries. */
    assert_int_equal(count_msgs(c, RAFT_MSG_APPEND), 2);
    assert_int_equal(c->net[0]->m.n_entries, 100);
    assert_int_equal(sim_settle(c), 0);
    assert_int_equal(status(c, 1).commit, 102);
    sim_destroy(c);
}

static void test_inflight_window(void **state)
{
    (void)state;
    sim_opts o = {.n = 2, .seed = 3};
    o.cfg.async_storage = true;
    o.cfg.max_inflight = 3;
    o.cfg.max_msg_bytes = 8; /* one 8-byte entry per message */
    sim_cluster *c;
    assert_int_equal(sim_create(&o, &c), 0);
    elect(c, 0);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(sim_propose_nowait(c, 0, NULL), 0);
        assert_int_equal(sim_process(c, 0), 0);
    }
    /* Three appends in flight, the window is full. */
    assert_int_equal(count_msgs(c, RAFT_MSG_APPEND), 3);
    uint64_t match, next;
    int st;
    assert_int_equal(raft_progress_get(c->nodes[0].r, 2, &match, &next, &st),
                     0);
    assert_int_equal(st, 1);
    assert_int_equal(next, 6);
    assert_int_equal(sim_settle(c), 0);
    assert_int_equal(status(c, 1).commit, 12);
    /* By bytes: a 16-byte budget also stops after two messages. */
    sim_destroy(c);
    o.cfg.max_inflight = 100;
    o.cfg.max_inflight_bytes = 16;
    assert_int_equal(sim_create(&o, &c), 0);
    elect(c, 0);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(sim_propose_nowait(c, 0, NULL), 0);
        assert_int_equal(sim_process(c, 0), 0);
    }
    assert_int_equal(count_msgs(c, RAFT_MSG_APPEND), 2);
    assert_int_equal(sim_settle(c), 0);
    assert_int_equal(status(c, 1).commit, 12);
    sim_destroy(c);
}

static void test_read_index_batching(void **state)
{
    (void)state;
    sim_cluster *c = cluster(3, false, false);
    elect(c, 0);
    uint64_t ctx;
    for (int i = 0; i < 50; i++)
        assert_int_equal(raft_read_index(c->nodes[0].r, 1000 + i), 0);
    assert_int_equal(sim_process(c, 0), 0);
    /* 50 reads, one heartbeat round. */
    assert_int_equal(count_msgs(c, RAFT_MSG_HEARTBEAT), 2);
    c->n_answers = 0;
    assert_int_equal(sim_settle(c), 0);
    assert_int_equal(c->n_answers, 50);
    assert_int_equal(c->answers[49].ctx, 1049);
    assert_int_equal(c->answers[0].index, status(c, 0).commit);
    assert_int_equal(sim_read(c, 1, &ctx), RAFT_ENOTLEADER);
    sim_destroy(c);
}

static void test_lease_read(void **state)
{
    (void)state;
    sim_opts o = {.n = 3, .seed = 5};
    o.cfg.async_storage = true;
    o.cfg.check_quorum = true;
    o.cfg.lease_read = true;
    sim_cluster *c;
    assert_int_equal(sim_create(&o, &c), 0);
    elect(c, 0);
    c->n_answers = 0;
    uint64_t ctx;
    assert_int_equal(sim_read(c, 0, &ctx), 0);
    /* Answered at once, without a heartbeat round. */
    assert_int_equal(count_msgs(c, RAFT_MSG_HEARTBEAT), 0);
    assert_int_equal(c->n_answers, 1);
    assert_int_equal(c->answers[0].ctx, ctx);
    sim_destroy(c);
}

static void test_membership_rules(void **state)
{
    (void)state;
    sim_cluster *c = cluster(3, false, false);
    raft *r = c->nodes[0].r;
    assert_int_equal(raft_propose_conf(r, RAFT_CONF_ADD_LEARNER, 4, NULL),
                     RAFT_ENOTLEADER);
    elect(c, 0);
    assert_int_equal(raft_propose_conf(r, RAFT_CONF_REMOVE, 9, NULL),
                     RAFT_EINVAL);
    assert_int_equal(raft_propose_conf(r, RAFT_CONF_ADD_VOTER, 2, NULL),
                     RAFT_EINVAL);
    int s4 = sim_add_node(c);
    assert_true(s4 >= 0);
    uint64_t idx;
    assert_int_equal(raft_propose_conf(r, RAFT_CONF_ADD_LEARNER, 4, &idx), 0);
    /* One change at a time. */
    assert_int_equal(raft_propose_conf(r, RAFT_CONF_REMOVE, 3, NULL),
                     RAFT_EBUSY);
    assert_int_equal(sim_process(c, 0), 0);
    assert_int_equal(sim_settle(c), 0);
    raft_status st4 = status(c, s4);
    assert_true(st4.commit >= idx);
    assert_true(raft_conf_is_learner(&st4.conf, 4));
    /* Learners never campaign. */
    for (int i = 0; i < 100; i++)
        raft_tick(c->nodes[s4].r);
    assert_int_equal(status(c, s4).role, RAFT_FOLLOWER);
    assert_int_equal(raft_transfer_leader(r, 4), RAFT_ENOTVOTER);
    /* Removing the leader: it steps down once the change commits. */
    assert_int_equal(raft_propose_conf(r, RAFT_CONF_REMOVE, 1, NULL), 0);
    assert_int_equal(sim_process(c, 0), 0);
    assert_int_equal(sim_settle(c), 0);
    assert_int_equal(status(c, 0).role, RAFT_FOLLOWER);
    raft_status st2 = status(c, 1);
    assert_false(raft_conf_is_voter(&st2.conf, 1));
    sim_destroy(c);
}

/* A short randomized run through the same driver as tests/sim, so the
 * unit suite alone already exercises faults. */
static void test_replay_is_deterministic(void **state)
{
    (void)state;
    uint64_t commits[2];
    for (int round = 0; round < 2; round++) {
        sim_cluster *c = cluster(5, true, true);
        cm_rand rng;
        cm_rand_seed(&rng, 99);
        for (int step = 0; step < 3000; step++) {
            uint64_t x = cm_rand_below(&rng, 10);
            int k = (int)cm_rand_below(&rng, 5);
            if (x < 4) {
                raft_tick(c->nodes[k].r);
                sim_process(c, k);
            } else if (x < 9 && c->n_net) {
                size_t m = (size_t)cm_rand_below(&rng, c->n_net);
                if (x == 8)
                    sim_drop(c, m);
                else
                    assert_int_equal(sim_deliver(c, m, false), 0);
            } else if (sim_leader(c) >= 0) {
                sim_propose(c, sim_leader(c), NULL);
            }
            assert_int_equal(sim_check(c), 0);
        }
        commits[round] = c->max_commit;
        sim_destroy(c);
    }
    assert_true(commits[0] > 10);
    assert_int_equal(commits[0], commits[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_single_member_sync, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_async_persist_gates_commit, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_msg_copy_and_blobs, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_msg_codec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conf_codec, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follower_commit_bounded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_election_and_replication, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_follower_lost_acked_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prevote_keeps_term, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_check_quorum_steps_down, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_proposal_batching, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_inflight_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_index_batching, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_lease_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_membership_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_replay_is_deterministic, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
