/*
 * pt_auth_module.c: authentication and authorization (the ACCESS phase).
 */

#include "pt_http.h"


pt_module_t  pt_auth_module = {
    .name = "auth",
    .abi = PT_MODULE_ABI,
};
