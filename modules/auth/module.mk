pt_module_name = auth
pt_module_srcs = pt_auth_module.c pt_auth_conf.c pt_auth_method.c pt_auth_cache.c pt_auth_forward.c pt_auth_jwks.c pt_jwt.c pt_jwk.c
pt_module_libs = -ljansson -lcrypt
