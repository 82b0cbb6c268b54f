pt_module_name = cache
pt_module_srcs = pt_cache_module.c pt_cache_rfc.c pt_cache_serve.c pt_cache_store_filter.c pt_cache_fetch.c pt_cache_purge.c pt_cache_store.c
pt_module_libs = -ljansson
