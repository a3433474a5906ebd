#ifndef SNNMEM_CZLIB_SHIM_H
#define SNNMEM_CZLIB_SHIM_H

// zlib's gzip file reader, used to read the bundled digits data set (Foundation cannot gunzip).
#include <zlib.h>

#endif
