pt_module_name = cache
pt_module_srcs = pt_cache_store.c
