// <immintrin.h> for kiln's per-ISA kernel files (included only by them). GCC 12's AVX-512
// headers trip -Wmaybe-uninitialized (and, once inlined deeper, -Wuninitialized) on their
// own `__Y = __Y` idiom (GCC bug 105593), so the warnings are silenced for the header alone.
#pragma once

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif
#include <immintrin.h>
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
