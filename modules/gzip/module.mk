pt_module_name = gzip
pt_module_srcs = pt_gzip_module.c pt_gzip_filter.c
pt_module_libs = -lz
pt_module_cflags =
