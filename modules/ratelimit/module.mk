pt_module_name = ratelimit
pt_module_srcs = pt_ratelimit_module.c pt_ratelimit_shm.c pt_ratelimit_redis.c pt_ratelimit_concurrency.c
pt_module_libs = -lhiredis
