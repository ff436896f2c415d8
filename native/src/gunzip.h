/* gzip decompression with ISA-L (gunzip.c), registered by berth_native.c. */
#ifndef BERTH_GUNZIP_H
#define BERTH_GUNZIP_H
#include <node_api.h>

napi_value GunzipCreate(napi_env env, napi_callback_info info);
napi_value GunzipRun(napi_env env, napi_callback_info info);
napi_value GunzipClose(napi_env env, napi_callback_info info);

#endif
