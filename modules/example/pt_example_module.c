/*
 * pt_example_module.c: a complete, small custom module to copy.
 *
 * It owns one route key and adds a response header to the routes that set
 * it, through a header filter:
 *
 *   routes:
 *     - name: hello
 *       match: { path: /hello }
 *       upstream: app
 *       example_header: { name: X-Hello, value: "route ${route}" }
 *
 * Build it in:  ./configure --add-module=modules/example && make
 *
 * What a module is made of, top to bottom: its config struct, its keys
 * (pt_command_t), the pt_module_t that declares them and the hooks, the
 * parse and validate functions, and the request-time handler.
 */

#include "pt_http.h"
#include "pt_string.h"


/* The module's config at route scope. */
typedef struct {
    pt_str_t         name;
    pt_template_t   *value;
} pt_example_conf_t;


static void *pt_example_create_conf(pt_conf_t *cf, pt_conf_level_e level);
static int pt_example_set_header(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf);
static int pt_example_postconfig(pt_conf_t *cf);
static int pt_example_header_filter(pt_http_request_t *r);


static const pt_command_t  pt_example_commands[] = {

    { "example_header", PT_CONF_ROUTE | PT_CONF_MAP, pt_example_set_header,
      0, NULL },

    pt_null_command
};


pt_module_t  pt_example_module = {
    "example",                    /* name                               */
    PT_MODULE_ABI,
    0,                            /* index, set by the core             */
    pt_example_commands,
    NULL,                         /* preconfig: register variables      */
    pt_example_create_conf,
    NULL,                         /* merge_conf                         */
    NULL,                         /* validate                           */
    pt_example_postconfig,        /* register the header filter         */
    NULL,                         /* init_master                        */
    NULL,                         /* init_worker                        */
    NULL,                         /* exit_worker                        */
    NULL                          /* exit_master                        */
};


static void *
pt_example_create_conf(pt_conf_t *cf, pt_conf_level_e level)
{
    pt_example_conf_t  *ecf;

    if (level != PT_CONF_LEVEL_ROUTE) {
        return NULL;                 /* no config at other scopes */
    }

    ecf = pt_pcalloc(cf->pool, sizeof(pt_example_conf_t));

    return ecf ? ecf : PT_CONF_ERROR_PTR;
}


static int
pt_example_set_header(pt_conf_t *cf, const pt_command_t *cmd,
    pt_yaml_node_t *node, void *conf)
{
    size_t              i;
    pt_yaml_node_t     *name, *value;
    pt_example_conf_t  *ecf;

    ecf = conf;
    name = pt_yaml_map_get(node, "name");
    value = pt_yaml_map_get(node, "value");

    for (i = 0; i < node->n; i++) {
        if (node->pairs[i].value != name && node->pairs[i].value != value) {
            return pt_conf_error(cf, node->pairs[i].key, "unknown key \"%s\" "
                                 "in example_header (name, value)",
                                 node->pairs[i].key->scalar.data);
        }
    }

    if (name == NULL || value == NULL) {
        return pt_conf_error(cf, node, "example_header needs a name and a "
                             "value");
    }

    if (pt_conf_expect(cf, name, PT_YAML_SCALAR, "example_header: name")
        != PT_OK)
    {
        return PT_ERROR;
    }

    for (i = 0; i < name->scalar.len; i++) {
        if (!pt_http_is_tchar((unsigned char) name->scalar.data[i])) {
            return pt_conf_error(cf, name, "example_header: invalid header "
                                 "name \"%s\"", name->scalar.data);
        }
    }

    ecf->name = name->scalar;

    /* Templates are compiled once here, never parsed per request. */
    ecf->value = pt_template_compile(cf, value);

    return ecf->value ? PT_OK : PT_ERROR;
}


static int
pt_example_postconfig(pt_conf_t *cf)
{
    /* 800: after the upstream's headers are in, before the head is
     * written (the core does that last). */
    return pt_http_header_filter_add(cf, pt_example_header_filter, 800,
                                     &pt_example_module);
}


static int
pt_example_header_filter(pt_http_request_t *r)
{
    pt_str_t            value;
    pt_example_conf_t  *ecf;

    ecf = pt_http_route_conf(r, pt_example_module);

    if (ecf == NULL || ecf->name.len == 0) {
        return PT_OK;
    }

    if (pt_template_eval(r, ecf->value, &value) != PT_OK) {
        return PT_ERROR;
    }

    return pt_http_header_out_set(r, ecf->name.data, ecf->name.len,
                                  value.data, value.len);
}
