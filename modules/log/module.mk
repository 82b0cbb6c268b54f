pt_module_name = log
pt_module_srcs = pt_log_module.c pt_log_writer.c
pt_module_libs = 
