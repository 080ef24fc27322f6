/* tests/unit/config/yaml.c - the config file as YAML (config/yaml.c): the
 * scalar helpers, reading one document from memory or a file, and the walk
 * over nested mappings: the dotted keys it hands over, the groups it enters,
 * the key errors it reports with their lines, and the policy section.
 *
 * config.c's own tests load whole files; here the walk's entry is a recorder
 * that knows a few settings and groups, so what the walk does is seen apart
 * from what the option table makes of it.
 */
#include <criterion/criterion.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config.h"
#include "config/yaml.h"
#include "policy/policy.h"

#include "tests/unit/leaks.h"

#define ERRLEN 512
#define LEN(a) (sizeof(a) / sizeof((a)[0]))

TestSuite(yaml, .fini = check_leaks);

/* Reads text as a document named "t.yaml"; fails the test if it does not. */
static void doc_of(yaml_document_t *doc, const char *text)
{
    char err[ERRLEN] = "";
    cr_assert_eq(config_yaml_read_buffer(text, strlen(text), "t.yaml", doc, err, sizeof(err)), 0,
                 "%s", err);
}

/* The value node of the top-level key i of doc. */
static yaml_node_t *value_at(yaml_document_t *doc, size_t i)
{
    yaml_node_t *root = yaml_document_get_root_node(doc);
    cr_assert(root != NULL && root->type == YAML_MAPPING_NODE);
    return yaml_document_get_node(doc, root->data.mapping.pairs.start[i].value);
}

/* ---- scalars ------------------------------------------------------------- */

struct scalar_case {
    const char *yaml; /* "v: ..." */
    bool null;        /* config_yaml_null */
    const char *why;  /* config_yaml_value's reason, NULL when a value */
    const char *text; /* its text when a value */
};

static const struct scalar_case SCALARS[] = {
    {"v:", true, NULL, ""},
    {"v: ~", true, NULL, "~"},
    {"v: null", true, NULL, "null"},
    {"v: Null", true, NULL, "Null"},
    {"v: NULL", true, NULL, "NULL"},
    {"v: nULL", false, NULL, "nULL"},
    {"v: '~'", false, NULL, "~"},
    {"v: \"null\"", false, NULL, "null"},
    {"v: ''", false, NULL, ""},
    {"v: 64mb", false, NULL, "64mb"},
    {"v: \"a\\0b\"", false, "contains a NUL byte", NULL},
    {"v: {a: 1}", false, "expected a value, not a mapping", NULL},
    {"v: [1, 2]", false, "expected a value, not a list", NULL},
    {"v:\n  - 1\n", false, "expected a value, not a list", NULL},
};

Test(yaml, scalars)
{
    for (size_t i = 0; i < LEN(SCALARS); i++) {
        const struct scalar_case *c = &SCALARS[i];
        yaml_document_t doc;
        const char *text = NULL;
        doc_of(&doc, c->yaml);
        yaml_node_t *v = value_at(&doc, 0);
        cr_expect_eq(config_yaml_null(v), c->null, "[%s] null", c->yaml);
        const char *why = config_yaml_value(v, &text);
        if (c->why == NULL) {
            cr_expect_null(why, "[%s]: %s", c->yaml, why);
            cr_expect_str_eq(text != NULL ? text : "(null)", c->text, "[%s] text", c->yaml);
            cr_expect_str_eq(config_yaml_text(v), c->text, "[%s] config_yaml_text", c->yaml);
        } else {
            cr_expect_str_eq(why != NULL ? why : "(null)", c->why, "[%s]", c->yaml);
        }
        yaml_document_delete(&doc);
    }
}

Test(yaml, key_repeated)
{
    yaml_document_t doc;
    doc_of(&doc, "a: 1\nb: 2\nab: 3\nb: 4\n? [x]\n: 5\na: 6\n");
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    const yaml_node_pair_t *pairs = root->data.mapping.pairs.start;
    const bool want[] = {false, false, false, true, false, true};
    for (size_t i = 0; i < LEN(want); i++) {
        if (yaml_document_get_node(&doc, pairs[i].key)->type != YAML_SCALAR_NODE)
            continue; /* the caller checks a key is a scalar first */
        cr_expect_eq(config_yaml_key_repeated(&doc, pairs, i), want[i], "pair %zu", i);
    }
    yaml_document_delete(&doc);
}

/* ---- reading ------------------------------------------------------------- */

struct read_case {
    const char *text;
    const char *want; /* the error, or "" when it reads */
};

static const struct read_case READS[] = {
    {"", ""},
    {"# only a comment\n", ""},
    {"a: 1\n", ""},
    {"---\na: 1\n...\n", ""},
    {"a: 1\n---\nb: 2\n", "t.yaml:3: yaml: expected a single document"},
    {"a: 1\n---\n", "t.yaml:3: yaml: expected a single document"}, /* "---" begins one */
    {"a:\n  b: 1\n c: 2\n", "t.yaml:3: yaml: did not find expected key"},
    {"a: [1\n", "t.yaml:2: yaml: did not find expected ',' or ']'"},
    {"a: \"\xff\"\n", "t.yaml: yaml: invalid leading UTF-8 octet at byte 4"},
};

Test(yaml, read_buffer)
{
    for (size_t i = 0; i < LEN(READS); i++) {
        yaml_document_t doc;
        char err[ERRLEN] = "";
        const char *text = READS[i].text;
        int rc = config_yaml_read_buffer(text, strlen(text), "t.yaml", &doc, err, sizeof(err));
        if (READS[i].want[0] == '\0') {
            cr_expect_eq(rc, 0, "[%s]: %s", text, err);
            if (rc == 0)
                yaml_document_delete(&doc);
        } else {
            cr_expect_eq(rc, -1, "[%s] read", text);
            cr_expect_str_eq(err, READS[i].want, "[%s]", text);
        }
    }
}

/* Only len bytes are read; a NUL byte within them is the reader's error. */
Test(yaml, read_buffer_length)
{
    yaml_document_t doc;
    char err[ERRLEN] = "";
    cr_assert_eq(config_yaml_read_buffer("a: 1\nb: [", 5, "m", &doc, err, sizeof(err)), 0, "%s",
                 err);
    yaml_document_delete(&doc);
    cr_expect_eq(config_yaml_read_buffer("a: 1\0\n", 6, "m", &doc, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "m: yaml: control characters are not allowed at byte 4");
}

Test(yaml, read_file)
{
    char dir[] = "/tmp/nearcache-yaml-XXXXXX", path[64], want[128], err[ERRLEN] = "";
    yaml_document_t doc;
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/nc.yaml", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("a: 1\nb:\n  c: [\n", f);
    fclose(f);
    cr_expect_eq(config_yaml_read_file(path, &doc, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:4: yaml: did not find expected node content", path);
    cr_expect_str_eq(err, want);

    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("a: 1\n", f);
    fclose(f);
    cr_expect_eq(config_yaml_read_file(path, &doc, err, sizeof(err)), 0, "%s", err);
    cr_expect_str_eq(config_yaml_text(value_at(&doc, 0)), "1");
    yaml_document_delete(&doc);
    unlink(path);

    cr_expect_eq(config_yaml_read_file(path, &doc, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: No such file or directory", path);
    cr_expect_str_eq(err, want);
    cr_expect_eq(config_yaml_read_file(dir, &doc, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: Is a directory", dir);
    cr_expect_str_eq(err, want);
    rmdir(dir);
}

/* ---- the walk ------------------------------------------------------------ */

/* The walk's entry: "a", "g.x" and "g.h.y" are settings, "g" and "g.h"
 * groups, anything else unknown. Each setting's "key=text" is appended to
 * seen; the value "fail" is refused. */
static char seen[256];

static int record(const struct config_yaml *y, const char *key, yaml_node_t *knode,
                  yaml_node_t *value, struct config *cfg)
{
    static const char *const SETTINGS[] = {"a", "g.x", "g.h.y"};
    const char *text;
    (void)cfg;
    if (strcmp(key, "g") == 0 || strcmp(key, "g.h") == 0)
        return CONFIG_YAML_GROUP;
    for (size_t i = 0; i < LEN(SETTINGS); i++) {
        if (strcmp(key, SETTINGS[i]) != 0)
            continue;
        const char *why = config_yaml_value(value, &text);
        if (why != NULL)
            return config_yaml_fail(y, value, key, "%s", why);
        if (strcmp(text, "fail") == 0)
            return config_yaml_fail(y, value, key, "refused %s", text);
        snprintf(seen + strlen(seen), sizeof(seen) - strlen(seen), "%s=%s ", key, text);
        return 0;
    }
    return config_yaml_fail(y, knode, key, "unknown key");
}

struct walk_case {
    const char *text;
    const char *seen; /* the settings applied, in order */
    const char *want; /* the error after "t.yaml:", or "" */
};

static const struct walk_case WALKS[] = {
    {"a: 1\n", "a=1 ", ""},
    {"g:\n  x: 2\n  h:\n    y: 3\na: 4\n", "g.x=2 g.h.y=3 a=4 ", ""},
    {"g: {h: {y: 5}, x: 6}\n", "g.h.y=5 g.x=6 ", ""},
    {"g:\na: 1\n", "a=1 ", ""},
    {"g: ~\n", "", ""},
    {"a: 1\ng: 2\n", "a=1 ", "2: g: expected a mapping"},
    {"g:\n  h: [y]\n", "", "2: g.h: expected a mapping"},
    {"g:\n  x: 1\n  z: 2\n", "g.x=1 ", "3: g.z: unknown key"},
    {"a: 1\n\n\ng.x: 2\n", "a=1 ", "4: g.x: unknown key"},
    {"\"\": 1\n", "", "1: : unknown key"},
    {"g:\n  \"\": 1\n", "", "2: g.: unknown key"},
    {"a: 1\na: 2\n", "a=1 ", "2: a: duplicate key"},
    {"g:\n  x: 1\n  h: ~\n  x: 2\n", "g.x=1 ", "4: g.x: duplicate key"},
    {"? [a]\n: 1\n", "", "1: (top): keys must be plain names"},
    {"g:\n  ? {x: 1}\n  : 1\n", "", "2: g: keys must be plain names"},
    {"g:\n  \"x\\0\": 1\n", "", "2: g: keys must be plain names"},
    {"a: fail\n", "", "1: a: refused fail"},
    {"g:\n  h:\n    y:\n      - 1\n", "", "4: g.h.y: expected a value, not a list"},
    {"\"a\\nb\": 1\n", "", "1: a\nb: unknown key"}, /* config.c makes it one line */
};

/* Walks text with record; returns its result, the error in err. */
static int walk_text(const char *text, struct config *cfg, char *err, size_t errlen)
{
    yaml_document_t doc;
    doc_of(&doc, text);
    struct config_yaml y = {"t.yaml", &doc, err, errlen};
    int rc = config_yaml_walk(&y, yaml_document_get_root_node(&doc), record, cfg);
    yaml_document_delete(&doc);
    return rc;
}

Test(yaml, walk)
{
    for (size_t i = 0; i < LEN(WALKS); i++) {
        const struct walk_case *c = &WALKS[i];
        char err[ERRLEN] = "", want[ERRLEN];
        struct config cfg;
        config_init(&cfg);
        seen[0] = '\0';
        int rc = walk_text(c->text, &cfg, err, sizeof(err));
        cr_expect_str_eq(seen, c->seen, "[%s] applied", c->text);
        if (c->want[0] == '\0') {
            cr_expect_eq(rc, 0, "[%s]: %s", c->text, err);
        } else {
            snprintf(want, sizeof(want), "t.yaml:%s", c->want);
            cr_expect_eq(rc, -1, "[%s] walked", c->text);
            cr_expect_str_eq(err, want, "[%s]", c->text);
        }
        config_deinit(&cfg);
    }
}

/* A dotted key longer than the walk keeps is cut, not overrun. */
Test(yaml, walk_long_key)
{
    char text[400], err[ERRLEN] = "";
    struct config cfg;
    memset(text, 'k', 300);
    strcpy(text + 300, ": 1\n");
    config_init(&cfg);
    cr_expect_eq(walk_text(text, &cfg, err, sizeof(err)), -1);
    cr_expect_eq(strlen(err), strlen("t.yaml:1: ") + 127 + strlen(": unknown key"), "%s", err);
    config_deinit(&cfg);
}

/* Errors go nowhere when there is nowhere to write them. */
Test(yaml, walk_without_err)
{
    struct config cfg;
    config_init(&cfg);
    seen[0] = '\0';
    cr_expect_eq(walk_text("a: 1\nb: 2\n", &cfg, NULL, 0), -1);
    cr_expect_str_eq(seen, "a=1 ");
    config_deinit(&cfg);
}

/* The top-level policy section goes to its loader, not to the entry, and
 * replaces cfg->policy; its errors name the file and line. Anywhere else,
 * "policy" is a key like any other. */
Test(yaml, walk_policy_section)
{
    char err[ERRLEN] = "";
    struct config cfg;
    config_init(&cfg);
    seen[0] = '\0';
    cr_assert_eq(walk_text("a: 1\npolicy:\n  cache:\n    - name: c\n      keys: \"a:*\"\n", &cfg,
                           err, sizeof(err)),
                 0, "%s", err);
    cr_expect_str_eq(seen, "a=1 ");
    cr_assert_not_null(cfg.policy);
    cr_expect_eq(policy_rule_count(cfg.policy), 3, "validate default, c, cache default");
    policy_destroy(&cfg.policy);

    cr_expect_eq(walk_text("policy: ~\n", &cfg, err, sizeof(err)), 0, "%s", err);
    cr_expect_null(cfg.policy, "a null section is no policy");

    cr_expect_eq(walk_text("a: 1\npolicy:\n  cache: 3\n", &cfg, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "t.yaml:3: policy.cache: expected a list");
    cr_expect_null(cfg.policy);

    cr_expect_eq(walk_text("g:\n  policy: 1\n", &cfg, err, sizeof(err)), -1);
    cr_expect_str_eq(err, "t.yaml:2: g.policy: unknown key");
    config_deinit(&cfg);
}
