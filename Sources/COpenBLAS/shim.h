#ifndef SNNMEM_COPENBLAS_SHIM_H
#define SNNMEM_COPENBLAS_SHIM_H

// OpenBLAS's CBLAS interface (Debian libopenblas-dev; pkg-config "openblas" adds the include path).
#include <cblas.h>

#endif
