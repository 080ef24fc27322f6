/* yaml_file.h - loading a config from YAML text in the config unit tests.
 *
 * config_load_file reads a path, and its errors name it: the text is written
 * to a file in a fresh temp dir, loaded and removed. */
#ifndef NEARCACHE_TESTS_YAML_FILE_H
#define NEARCACHE_TESTS_YAML_FILE_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "config/config.h"

/* Loads text over cfg as config_load_file does; path receives the file's
 * name, for building the expected error in err (errlen bytes). */
static inline int load_text_file(struct config *cfg, const char *text, char *path, size_t pathlen,
                                 char *err, size_t errlen)
{
    char dir[] = "/tmp/nearcache-config-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, pathlen, "%s/nc.yaml", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    int rc = config_load_file(cfg, path, err, errlen);
    unlink(path);
    rmdir(dir);
    return rc;
}

#endif
