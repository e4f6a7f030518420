/* The TAP runner behind TEST(); see runner.h. */
#include "tests/runner.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_MAX           512
#define TEST_TIMEOUT_S_DEF 30

static struct {
    const char *name;
    test_fn fn;
} tests[TEST_MAX];
static int n_tests;

void test_register(const char *name, test_fn fn)
{
    if (n_tests == TEST_MAX) {
        fprintf(stderr, "too many tests\n");
        abort();
    }
    tests[n_tests].name = name;
    tests[n_tests].fn = fn;
    n_tests++;
}

static int cmp_tests(const void *a, const void *b)
{
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    return strcmp(x, y);
}

static int selected(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strncmp(name, argv[i], strlen(argv[i])) == 0)
            return 1;
    return 0;
}

/* Runs one test in a child; returns 0 on pass. */
static int run_one(int idx, int timeout_s)
{
    pid_t pid = fork();
    if (pid < 0) {
        perror("fork");
        return -1;
    }
    if (pid == 0) {
        alarm((unsigned)timeout_s);
        tests[idx].fn();
        fflush(NULL);
        _exit(0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        printf("# %s: timed out after %d s\n", tests[idx].name, timeout_s);
    else if (WIFSIGNALED(status))
        printf("# %s: killed by signal %d\n", tests[idx].name, WTERMSIG(status));
    else
        printf("# %s: exit status %d\n", tests[idx].name, WEXITSTATUS(status));
    return -1;
}

int main(int argc, char **argv)
{
    int timeout_s = TEST_TIMEOUT_S_DEF;
    const char *t = getenv("TEST_TIMEOUT_S");
    if (t && atoi(t) > 0)
        timeout_s = atoi(t);
    qsort(tests, (size_t)n_tests, sizeof(tests[0]), cmp_tests);

    int planned = 0;
    for (int i = 0; i < n_tests; i++)
        planned += selected(tests[i].name, argc, argv);
    printf("1..%d\n", planned);
    fflush(stdout);

    int failed = 0, num = 0;
    for (int i = 0; i < n_tests; i++) {
        if (!selected(tests[i].name, argc, argv))
            continue;
        num++;
        int rc = run_one(i, timeout_s);
        printf("%s %d - %s\n", rc == 0 ? "ok" : "not ok", num, tests[i].name);
        fflush(stdout);
        failed += rc != 0;
    }
    if (failed)
        printf("# %d of %d tests failed\n", failed, planned);
    return failed ? 1 : 0;
}
