/* lib/machine/vcpus.c with stand-in vCPU threads: real threads whose "guest" is a sleep a
 * kick ends (as KVM_RUN or emu's halt wait would) after a little CPU work. Checked for 1, 2,
 * 8 and 64 vCPUs: start, a pause that returns only once every vCPU parked, resume, an exit
 * recorded by one vCPU and posted once, after the last thread is done, CPU time that only
 * grows; the end before start, during a pause, and a start that fails part way. */
#include "vt.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "machine/vcpus.h"

#define MAXV 64

struct fake {
    struct vcpus set;
    pthread_mutex_t lock;
    pthread_cond_t cond;          /* kicks, and guest entries the test waits for */
    bool kicked[MAXV];            /* under lock */
    unsigned entries[MAXV];       /* guest entries per vCPU (under lock) */
    atomic_int exit_from;         /* this vCPU records an exit at its next entry (-1: none) */
    atomic_int leave_from;        /* this vCPU's body returns at its next entry (-1: none) */
    atomic_bool park_seen[MAXV];  /* ops.parking was called */
    atomic_uint kicks;
    atomic_uint returned;         /* thread bodies that returned */
    /* the posted exit */
    atomic_uint posts;
    vmcore_exit_kind kind;
    int status;
    char reason[64];
    bool all_done_at_post;
};

static void burn(void)
{
    volatile unsigned x = 0;
    for (unsigned i = 0; i < 20000; i++)
        x += i;
}

static void fake_run(void *opaque, unsigned idx)
{
    struct fake *f = opaque;
    enum vcpus_next next;
    while ((next = vcpus_next(&f->set, idx)) != VCPUS_STOP) {
        if (next == VCPUS_PARKED)
            continue;
        if (atomic_load(&f->leave_from) == (int)idx)
            break;
        if (atomic_load(&f->exit_from) == (int)idx) {
            vcpus_record_exit(&f->set, VMCORE_EXIT_STATUS, 7, "vCPU said so");
            continue; /* the record stops every vCPU: the next look says so */
        }
        burn();
        /* the guest: runs until kicked */
        pthread_mutex_lock(&f->lock);
        f->entries[idx]++;
        pthread_cond_broadcast(&f->cond);
        while (!f->kicked[idx])
            pthread_cond_wait(&f->cond, &f->lock);
        f->kicked[idx] = false;
        pthread_mutex_unlock(&f->lock);
    }
    atomic_fetch_add(&f->returned, 1);
}

static void fake_kick(void *opaque, unsigned idx, pthread_t thread)
{
    struct fake *f = opaque;
    assert_false(pthread_equal(thread, pthread_self()));
    atomic_fetch_add(&f->kicks, 1);
    pthread_mutex_lock(&f->lock);
    f->kicked[idx] = true;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

static void fake_parking(void *opaque, unsigned idx)
{
    struct fake *f = opaque;
    atomic_store(&f->park_seen[idx], true);
}

static void fake_post(void *opaque, vmcore_exit_kind kind, int status, const char *reason)
{
    struct fake *f = opaque;
    bool all_done = true;
    pthread_mutex_lock(&f->set.lock);
    for (unsigned i = 0; i < f->set.n; i++)
        if (f->set.slot[i].started && !f->set.slot[i].done)
            all_done = false;
    pthread_mutex_unlock(&f->set.lock);
    f->all_done_at_post = all_done;
    f->kind = kind;
    f->status = status;
    snprintf(f->reason, sizeof f->reason, "%s", reason);
    pthread_mutex_lock(&f->lock);
    atomic_fetch_add(&f->posts, 1);
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

/* The last thread posts after it left the set's lock: wait for the post itself. */
static void wait_posted(struct fake *f)
{
    pthread_mutex_lock(&f->lock);
    while (!atomic_load(&f->posts))
        pthread_cond_wait(&f->cond, &f->lock);
    pthread_mutex_unlock(&f->lock);
}

static const struct vcpus_ops fake_ops = {
    .run = fake_run, .kick = fake_kick, .parking = fake_parking, .post_exit = fake_post,
};

static struct fake *fake_new(unsigned n)
{
    struct fake *f = calloc(1, sizeof *f);
    assert_non_null(f);
    pthread_mutex_init(&f->lock, NULL);
    pthread_cond_init(&f->cond, NULL);
    atomic_init(&f->exit_from, -1);
    atomic_init(&f->leave_from, -1);
    struct vmcore_err err = { 0 };
    assert_int_equal(vcpus_init(&f->set, n, &fake_ops, f, NULL, &err), 0);
    return f;
}

static void fake_free(struct fake *f)
{
    vcpus_destroy(&f->set);
    assert_null(f->set.slot);
    pthread_cond_destroy(&f->cond);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

/* Wait until every vCPU entered the guest more than @since[i] times, kicking it out each
 * time so that it enters again (a kick without a request: back into the guest). */
static void wait_entries(struct fake *f, const unsigned *since)
{
    pthread_mutex_lock(&f->lock);
    for (unsigned i = 0; i < f->set.n; i++) {
        while (f->entries[i] <= since[i]) {
            f->kicked[i] = true;
            pthread_cond_broadcast(&f->cond);
            pthread_cond_wait(&f->cond, &f->lock);
        }
    }
    pthread_mutex_unlock(&f->lock);
}

/* A set of @n vCPUs started, each of them in the guest at least once. */
static struct fake *fake_started(unsigned n)
{
    struct fake *f = fake_new(n);
    struct vmcore_err err = { 0 };
    unsigned zero[MAXV] = { 0 };
    assert_int_equal(vcpus_start(&f->set, &err), 0);
    wait_entries(f, zero);
    return f;
}

static unsigned nparked(struct fake *f)
{
    pthread_mutex_lock(&f->set.lock);
    unsigned n = f->set.nparked;
    pthread_mutex_unlock(&f->set.lock);
    return n;
}

static void lifecycle(unsigned n)
{
    struct fake *f = fake_started(n);
    unsigned snap[MAXV];
    uint64_t t0 = vcpus_cpu_ns(&f->set);
    assert_true(t0 > 0);

    for (int round = 0; round < 3; round++) {
        vcpus_pause(&f->set);
        /* returned: every vCPU parked, each through ops.parking, none in the guest */
        assert_int_equal(nparked(f), n);
        assert_true(vcpus_pending(&f->set));
        assert_true(vcpus_console_stop(&f->set));
        assert_false(vcpus_stopping(&f->set));
        pthread_mutex_lock(&f->lock);
        memcpy(snap, f->entries, sizeof snap);
        pthread_mutex_unlock(&f->lock);
        for (unsigned i = 0; i < n; i++)
            assert_true(atomic_load(&f->park_seen[i]));
        vcpus_pause(&f->set); /* again: already parked */
        pthread_mutex_lock(&f->lock);
        assert_memory_equal(snap, f->entries, sizeof snap);
        pthread_mutex_unlock(&f->lock);
        vcpus_resume(&f->set);
        assert_false(vcpus_pending(&f->set));
        wait_entries(f, snap);
    }
    uint64_t t1 = vcpus_cpu_ns(&f->set);
    assert_true(t1 >= t0);

    /* the last vCPU ends the machine: every thread stops, the exit is posted once, after
     * the last of them is done */
    assert_int_equal(atomic_load(&f->posts), 0);
    atomic_store(&f->exit_from, (int)n - 1);
    fake_kick(f, n - 1, (pthread_t)0);
    wait_posted(f);
    assert_int_equal(atomic_load(&f->posts), 1);
    assert_true(f->all_done_at_post);
    assert_int_equal(f->kind, VMCORE_EXIT_STATUS);
    assert_int_equal(f->status, 7);
    assert_string_equal(f->reason, "vCPU said so");
    assert_true(vcpus_stopping(&f->set));
    /* only the first record counts; a pause after the end returns at once */
    vcpus_record_exit(&f->set, VMCORE_EXIT_CRASH, 1, "late");
    vcpus_pause(&f->set);
    assert_int_equal(atomic_load(&f->posts), 1);
    assert_string_equal(f->set.exit_reason, "vCPU said so");
    uint64_t t2 = vcpus_cpu_ns(&f->set);
    assert_true(t2 >= t1);
    assert_int_equal(vcpus_cpu_ns(&f->set), t2); /* final once every thread is done */
    fake_free(f);
}

static void test_one(void **state) { lifecycle(1); }
static void test_two(void **state) { lifecycle(2); }
static void test_eight(void **state) { lifecycle(8); }
static void test_sixty_four(void **state) { lifecycle(64); }

/* Ended before any thread ran: nothing to wait for, posted at once. */
static void test_exit_before_start(void **state)
{
    struct fake *f = fake_new(4);
    assert_int_equal(vcpus_cpu_ns(&f->set), 0);
    vcpus_record_exit(&f->set, VMCORE_EXIT_SIGNAL, 9, "killed");
    assert_int_equal(atomic_load(&f->posts), 1);
    assert_true(f->all_done_at_post);
    assert_string_equal(f->reason, "killed");
    fake_free(f);
}

/* Ended while paused (a kill of a paused VM): the parked vCPUs leave, posted once. */
static void test_exit_while_paused(void **state)
{
    struct fake *f = fake_started(8);
    vcpus_pause(&f->set);
    vcpus_record_exit(&f->set, VMCORE_EXIT_SIGNAL, 9, "killed");
    wait_posted(f);
    assert_int_equal(atomic_load(&f->posts), 1);
    assert_true(f->all_done_at_post);
    fake_free(f);
}

/* One vCPU's loop ends without a record (the machine ended some other way): the others
 * stop too; nothing is posted, destroy joins them all. */
static void test_one_leaves_all_stop(void **state)
{
    struct fake *f = fake_started(8);
    atomic_store(&f->leave_from, 3);
    fake_kick(f, 3, (pthread_t)0);
    pthread_mutex_lock(&f->set.lock);
    while (f->set.nalive)
        pthread_cond_wait(&f->set.cond, &f->set.lock);
    pthread_mutex_unlock(&f->set.lock);
    assert_true(vcpus_stopping(&f->set));
    vcpus_pause(&f->set); /* nobody left to park: returns */
    vcpus_destroy(&f->set);
    assert_int_equal(atomic_load(&f->posts), 0);
    fake_free(f);
}

/* Destroyed while running (a domain closed without an end): stopped, joined, no post. */
static void test_destroy_running(void **state)
{
    struct fake *f = fake_started(2);
    assert_int_equal(atomic_load(&f->returned), 0);
    vcpus_destroy(&f->set);
    /* joined: both bodies returned (a thread count from /proc could still show a thread
     * pthread_join() has seen exit) */
    assert_int_equal(atomic_load(&f->returned), 2);
    assert_int_equal(atomic_load(&f->posts), 0);
    vcpus_destroy(&f->set); /* zeroed now: harmless */
    fake_free(f);
}

static void test_bad_init(void **state)
{
    struct vcpus set;
    struct vmcore_err err = { 0 };
    assert_int_equal(vcpus_init(&set, 0, &fake_ops, NULL, NULL, &err), VMCORE_EINVAL);
    assert_non_null(strstr(err.msg, "no vCPU"));
    vcpus_destroy(&set);
    struct vcpus_ops no_kick = { .run = fake_run };
    assert_int_equal(vcpus_init(&set, 1, &no_kick, NULL, NULL, &err), VMCORE_EINVAL);
    vcpus_destroy(&set);
}

/* A start that fails part way (the address space too small for every thread's stack): the
 * started threads are stopped and joined, no exit is posted, the error names the vCPU.
 * In a child process, whose address-space limit cannot hurt the other tests. */
static void test_partial_start(void **state)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    skip(); /* the sanitizers' shadow memory does not fit any useful address-space limit */
#else
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct fake *f = fake_new(MAXV);
        long pages = 0;
        FILE *st = fopen("/proc/self/statm", "r");
        if (!st || fscanf(st, "%ld", &pages) != 1)
            _exit(10);
        fclose(st);
        /* room for a few 8 MiB default stacks, not 64 */
        struct rlimit rl = { .rlim_cur = (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) +
                                         (32u << 20) };
        rl.rlim_max = rl.rlim_cur;
        if (setrlimit(RLIMIT_AS, &rl) != 0)
            _exit(11);
        struct vmcore_err err = { 0 };
        int rc = vcpus_start(&f->set, &err);
        if (rc != VMCORE_ESYS)
            _exit(12);
        if (!strstr(err.msg, "cannot start the thread of vCPU"))
            _exit(13);
        if (f->set.nalive != 0 || atomic_load(&f->posts) != 0)
            _exit(14);
        unsigned started = 0;
        for (unsigned i = 0; i < MAXV; i++) {
            if (f->set.slot[i].started && !(f->set.slot[i].joined && f->set.slot[i].done))
                _exit(15);
            started += f->set.slot[i].started;
        }
        if (started == 0 || started == MAXV)
            _exit(17); /* not a failure part way */
        vcpus_destroy(&f->set);
        _exit(atomic_load(&f->posts) == 0 ? 0 : 16);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one),
        cmocka_unit_test(test_two),
        cmocka_unit_test(test_eight),
        cmocka_unit_test(test_sixty_four),
        cmocka_unit_test(test_exit_before_start),
        cmocka_unit_test(test_exit_while_paused),
        cmocka_unit_test(test_one_leaves_all_stop),
        cmocka_unit_test(test_destroy_running),
        cmocka_unit_test(test_bad_init),
        cmocka_unit_test(test_partial_start),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
