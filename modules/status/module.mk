pt_module_name = status
pt_module_srcs = pt_status_module.c pt_status_dashboard.c
pt_module_libs = 
pt_module_embed = dashboard.html
