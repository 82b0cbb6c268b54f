/*
 * pt_module.c: the module registry (see pt_module.h).
 */

#include "pt_module.h"
#include "pt_log.h"


pt_uint_t  pt_modules_n;


int
pt_modules_init(void)
{
    pt_uint_t  i;

    for (i = 0; pt_modules[i]; i++) {
        if (pt_modules[i]->abi != PT_MODULE_ABI) {
            pt_log_error(PT_LOG_EMERG, NULL, 0,
                         "module \"%s\" was built for module ABI %u, this binary has %u",
                         pt_modules[i]->name,
                         (unsigned) pt_modules[i]->abi, PT_MODULE_ABI);
            return PT_ERROR;
        }

        pt_modules[i]->index = i;
    }

    pt_modules_n = i;

    return PT_OK;
}


pt_module_t *
pt_module_find(const char *name)
{
    pt_uint_t  i;

    for (i = 0; pt_modules[i]; i++) {
        if (strcmp(pt_modules[i]->name, name) == 0) {
            return pt_modules[i];
        }
    }

    return NULL;
}
