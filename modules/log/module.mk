pt_module_name = log
pt_module_srcs = pt_log_module.c
pt_module_libs = 
