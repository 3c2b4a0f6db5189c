/*
 * web_assets: the web page's files, compiled in from src/web_assets/ by
 * src/web_assets/embed.cmake.
 */
#ifndef GFE_WEB_ASSETS_H
#define GFE_WEB_ASSETS_H

#include <stddef.h>

extern const unsigned char web_asset_index[];
extern const size_t web_asset_index_len;

#endif
