/* tests/fuzz/config.c - libFuzzer target for the YAML config loader.
 *
 * Input: a config file, policy section included. It is loaded over the
 * defaults from memory (config_load_buffer, the code config_load_file runs)
 * and, when it loads, validated and its policy (if any) built; then loaded
 * and built again over the first policy, whose state the second takes over,
 * as a reload does. A failed load reports one line naming the file. Leaks
 * and sanitizer reports are the other checks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "policy/policy.h"
#include "tests/fuzz/fuzz.h"

#define NAME   "fuzz.yaml"
#define ERRLEN 512

/* An error: one non-empty line (the config's errors are "file:line: key:
 * reason"; only the load names the file). */
static void check_error(const char *err, bool named)
{
    if (err[0] == '\0' || strchr(err, '\n') != NULL)
        fprintf(stderr, "error: [%s]\n", err);
    CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
    if (named)
        CHECK(strncmp(err, NAME ":", strlen(NAME ":")) == 0);
}

/* Loads text over the defaults into cfg and builds its policy over prev
 * (NULL: a first load), which it takes over; prev is destroyed either way.
 * Returns the built policy, taken from cfg, or NULL. */
static struct policy *load_and_build(struct config *cfg, const char *text, size_t len,
                                     struct policy *prev)
{
    char err[ERRLEN] = "";
    struct policy *p = NULL;

    config_init(cfg);
    if (config_load_buffer(cfg, text, len, NAME, err, sizeof(err)) != 0) {
        check_error(err, true);
    } else {
        if (config_validate(cfg, err, sizeof(err)) != 0)
            check_error(err, false);
        p = cfg->policy;
        cfg->policy = NULL;
    }
    if (p != NULL && policy_build(p, prev, err, sizeof(err)) != 0) {
        check_error(err, false);
        policy_destroy(&p);
    }
    if (p != NULL)
        policy_take_over(p, prev);
    policy_destroy(&prev);
    return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config first, again;
    struct policy *p = load_and_build(&first, (const char *)data, size, NULL);

    if (p != NULL) {
        p = load_and_build(&again, (const char *)data, size, p);
        CHECK(p != NULL); /* the same text builds again */
        policy_destroy(&p);
        config_deinit(&again);
    }
    config_deinit(&first);
    return 0;
}
