/* kiln C API — run TorchScript models traced from Hugging Face BERT-family models.
 *
 * Usable from C99 and through FFI. Functions return status codes and never let a C++
 * exception escape. Today it answers what kiln is; models arrive with the engine.
 *
 *   printf("kiln %s\n", kiln_version());
 */
#ifndef KILN_KILN_H
#define KILN_KILN_H

#ifdef __cplusplus
extern "C" {
#endif

/* The library version, e.g. "0.1.0". The string is static: do not free it. */
const char *kiln_version(void);

#ifdef __cplusplus
}
#endif

#endif /* KILN_KILN_H */
