pt_module_name = metrics
pt_module_srcs = pt_metrics_module.c pt_metrics_shm.c pt_metrics_text.c
pt_module_libs =
pt_module_cflags =
