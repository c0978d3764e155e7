/*
 * A member never serves a damaged store: a byte flipped inside a stored
 * value in data.mdb (found by searching the file for the value written)
 * makes skiffd refuse to start, naming the damaged revision, instead of
 * serving the bad bytes.  The same store, undamaged, starts and serves.
 *
 * Usage: server_damaged_store <skiffd>
 */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "srv.h"

static const char *skiffd;
static const char *VALUE = "value-that-appears-once-7f3a9c";

static Skiffpb__Response *put(int fd, const char *k, const char *v)
{
    Skiffpb__Request r = SKIFFPB__REQUEST__INIT;
    Skiffpb__PutRequest p = SKIFFPB__PUT_REQUEST__INIT;
    p.key = bin_of(k);
    p.value = bin_of(v);
    r.body_case = SKIFFPB__REQUEST__BODY_PUT;
    r.put = &p;
    return cli_call(fd, &r);
}

/* Flips one bit in the middle of every copy of VALUE in the file (LMDB
 * copies pages on write, so a freed older page may hold one too).
 * Returns how many copies were found. */
static int flip_value(const char *path)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    char *buf = malloc((size_t)st.st_size);
    assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
    size_t n = strlen(VALUE);
    int found = 0;
    for (off_t i = 0; i + (off_t)n <= st.st_size; i++)
        if (!memcmp(buf + i, VALUE, n)) {
            found++;
            char c = (char)(buf[i + (off_t)n / 2] ^ 0x04);
            assert_int_equal(pwrite(fd, &c, 1, i + (off_t)n / 2), 1);
        }
    free(buf);
    close(fd);
    return found;
}

static void test_damaged_value(void **state)
{
    (void)state;
    srv s;
    memset(&s, 0, sizeof s);
    assert_int_equal(srv_spawn(&s, skiffd, 0, NULL), 0);
    int fd = cli_connect(s.port);
    assert_true(fd >= 0);
    Skiffpb__Response *r = put(fd, "/k/damaged", VALUE);
    assert_null(r->error);
    skiffpb__response__free_unpacked(r, NULL);
    r = put(fd, "/k/other", "fine");
    assert_null(r->error);
    skiffpb__response__free_unpacked(r, NULL);
    close(fd);
    srv_kill(&s, SIGKILL);

    /* Undamaged, it starts again (the check passes on a good store). */
    assert_int_equal(srv_spawn(&s, skiffd, 1, NULL), 0);
    srv_kill(&s, SIGKILL);

    char path[400];
    snprintf(path, sizeof path, "%s/data/data.mdb", s.dir);
    assert_true(flip_value(path) >= 1);
    /* Damaged: skiffd exits before listening, naming what it found. */
    char log[400];
    snprintf(log, sizeof log, "%s/refused.log", s.dir);
    fflush(stderr);
    int saved = dup(2), lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(lf, 2);
    int rc = srv_spawn(&s, skiffd, 1, NULL);
    dup2(saved, 2);
    close(saved);
    close(lf);
    assert_int_equal(rc, -1);
    FILE *f = fopen(log, "r");
    assert_non_null(f);
    char text[8192];
    size_t len = fread(text, 1, sizeof text - 1, f);
    text[len] = 0;
    fclose(f);
    if (!strstr(text, "checksum mismatch"))
        fprintf(stderr, "skiffd said:\n%s\n", text);
    assert_non_null(strstr(text, "is damaged"));
    assert_non_null(strstr(text, "checksum mismatch"));
    srv_cleanup(&s);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <skiffd>\n", argv[0]);
        return 2;
    }
    skiffd = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_damaged_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
