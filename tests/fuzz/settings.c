/* tests/fuzz/settings.c - libFuzzer target for --set and the environment.
 *
 * Input: lines. All of them, as environment entries ("NEARCACHE_X=value"),
 * go through config_load_env; then each goes through config_set as --set
 * KEY=VALUE does (split at the first '='; a line without one sets the key to
 * null). Each config is then validated. Errors are one line, and
 * config_validate's verdict on cache.tracking_prefixes must agree with a
 * plain quadratic check of the items. Leaks and sanitizer reports are the
 * other checks.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "tests/fuzz/fuzz.h"

#define ERRLEN        512
#define PREFIXES      "cache.tracking_prefixes: "
#define OUT_OF_MEMORY "out of memory"

/* An error: one non-empty line. */
static void check_error(const char *err)
{
    if (err[0] == '\0' || strchr(err, '\n') != NULL)
        fprintf(stderr, "error: [%s]\n", err);
    CHECK(err[0] != '\0' && strchr(err, '\n') == NULL);
}

/* Whether the comma-separated text has an empty item, or an item that is a
 * prefix of another (a repeat included), compared pair by pair. */
static bool prefixes_bad(const char *text)
{
    size_t max = strlen(text) + 1, n = 0;
    const char **start = malloc(max * sizeof(*start));
    size_t *len = malloc(max * sizeof(*len));
    bool bad = false;

    CHECK(start != NULL && len != NULL);
    for (const char *p = text;; p += len[n++] + 1) {
        start[n] = p;
        len[n] = strcspn(p, ",");
        bad = bad || len[n] == 0;
        if (p[len[n]] == '\0') {
            n++;
            break;
        }
    }
    for (size_t i = 0; i < n && !bad; i++) {
        for (size_t j = 0; j < n && !bad; j++)
            bad = i != j && len[i] <= len[j] && memcmp(start[i], start[j], len[i]) == 0;
    }
    free(start);
    free(len);
    return bad;
}

/* Validates cfg; a verdict on the prefixes must be the quadratic check's. */
static void check_validate(const struct config *cfg)
{
    char err[ERRLEN] = "";
    const char *prefixes = cfg->cache_tracking_prefixes;

    if (config_validate(cfg, err, sizeof(err)) == 0) {
        CHECK(prefixes == NULL || !prefixes_bad(prefixes));
        return;
    }
    check_error(err);
    if (strncmp(err, PREFIXES, strlen(PREFIXES)) == 0 &&
        strcmp(err + strlen(PREFIXES), OUT_OF_MEMORY) != 0)
        CHECK(prefixes != NULL && prefixes_bad(prefixes));
}

/* Applies each line as --set KEY=VALUE, splitting it in place. */
static void apply_sets(struct config *cfg, char **lines)
{
    char err[ERRLEN];

    for (size_t i = 0; lines[i] != NULL; i++) {
        char *eq = strchr(lines[i], '=');
        if (eq != NULL)
            *eq = '\0';
        err[0] = '\0';
        if (config_set(cfg, lines[i], eq != NULL ? eq + 1 : NULL, err, sizeof(err)) != 0)
            check_error(err);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    char **lines = calloc(size + 2, sizeof(*lines));
    struct config cfg;
    char err[ERRLEN] = "";
    size_t n = 0;

    CHECK(text != NULL && lines != NULL);
    memcpy(text, data, size);
    text[size] = '\0';
    for (char *p = text; p != NULL; n++) {
        lines[n] = p;
        p = memchr(p, '\n', (size_t)(text + size - p));
        if (p != NULL)
            *p++ = '\0';
    }

    config_init(&cfg);
    if (config_load_env(&cfg, lines, err, sizeof(err)) != 0)
        check_error(err);
    check_validate(&cfg);
    config_deinit(&cfg);

    config_init(&cfg);
    apply_sets(&cfg, lines);
    check_validate(&cfg);
    config_deinit(&cfg);

    free(lines);
    free(text);
    return 0;
}
