pt_module_name = router
pt_module_srcs = pt_router_module.c pt_router_table.c pt_router_rewrite.c
pt_module_libs = 
