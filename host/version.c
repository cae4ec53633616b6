/* version.c: version strings baked in at build time. */
#include "stacl.h"

const char *stacl_version(void) { return STACL_VERSION_STRING; }
const char *stacl_git_revision(void) { return STACL_GIT_REV; }
