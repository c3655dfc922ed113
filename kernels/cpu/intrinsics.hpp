// <immintrin.h> for kiln's per-ISA kernel files (included only by them). GCC 12's AVX-512
// headers trip -Wmaybe-uninitialized on their own `__Y = __Y` idiom (GCC bug 105593), so the
// warning is silenced for the header alone.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
