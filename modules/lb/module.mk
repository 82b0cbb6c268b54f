pt_module_name = lb
pt_module_srcs = pt_lb_module.c pt_lb_hash.c pt_lb_health.c
pt_module_libs =
