pt_module_name = example
pt_module_srcs = pt_example_module.c
pt_module_libs = 
pt_module_cflags = 
