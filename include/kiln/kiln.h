/* kiln C API — run TorchScript models traced from Hugging Face BERT-family models.
 *
 * Load a traced model once, then run it many times, from any number of threads, with
 * tensors in and tensors out. Plain C99, usable through any FFI (Python ctypes, Rust,
 * Go, C#): opaque handles, fixed-width integers, status codes, no exceptions.
 *
 *   kiln_model *model = NULL;
 *   if (kiln_model_load("traced_bert.pt", NULL, &model) != KILN_OK) {
 *     fprintf(stderr, "%s\n", kiln_last_error());
 *     return 1;
 *   }
 *   int64_t ids[8] = {101, 7592, 2088, 102, 0, 0, 0, 0}, mask[8] = {1, 1, 1, 1, 0, 0, 0, 0};
 *   int64_t shape[2] = {1, 8};
 *   kiln_tensor *in[2] = {NULL, NULL}, *out[4];
 *   size_t n_out = 0;
 *   kiln_tensor_create_view(KILN_INT64, shape, 2, ids, sizeof ids, &in[0]);
 *   kiln_tensor_create_view(KILN_INT64, shape, 2, mask, sizeof mask, &in[1]);
 *   if (kiln_run(model, in, 2, NULL, out, 4, &n_out) == KILN_OK) {
 *     const float *hidden = (const float *)kiln_tensor_data(out[0]);   // [1, 8, hidden]
 *     ...
 *     for (size_t i = 0; i < n_out; ++i) kiln_tensor_destroy(out[i]);
 *   }
 *   kiln_tensor_destroy(in[0]);
 *   kiln_tensor_destroy(in[1]);
 *   kiln_model_destroy(model);
 *
 * ERRORS
 *   Functions that can fail return a kiln_status; KILN_OK is 0. After every call (except
 *   kiln_version, kiln_dtype_size, kiln_dtype_name and kiln_last_error itself),
 *   kiln_last_error() describes what went wrong on this thread, or is "" when the call
 *   succeeded. Nothing aborts and no C++ exception crosses the API: a NULL handle or
 *   pointer, a count or size that does not fit, and a tensor the model does not take are
 *   all a status and a message. On failure nothing is created that you must destroy: a
 *   handle out-parameter (`kiln_... **out`) is set to NULL, and other out-parameters are
 *   left as they were unless the function says otherwise.
 *     KILN_ERROR_BAD_INPUT    the data is wrong: a file kiln cannot read or run, a tensor
 *                             of the wrong count, dtype or shape, a negative size, a byte
 *                             count that does not match, a buffer too small.
 *     KILN_ERROR_USAGE        the call is wrong: a NULL handle or pointer, an index out
 *                             of range, an unknown dtype or provider, a bad option value.
 *     KILN_ERROR_INTERNAL     a bug in kiln; please report it with the message.
 *     KILN_ERROR_OUT_OF_MEMORY  an allocation failed. (A tensor's memory that cannot be
 *                             had, like a run over its memory limit, is BAD_INPUT.)
 *
 * OWNERSHIP
 *   Every handle that a *_create or *_load function gives you is yours and is released
 *   by exactly one call to the matching *_destroy (which accepts NULL):
 *     kiln_options_create            -> kiln_options_destroy
 *     kiln_run_options_create        -> kiln_run_options_destroy
 *     kiln_model_load, _from_memory  -> kiln_model_destroy
 *     kiln_tensor_create_copy, _view -> kiln_tensor_destroy
 *     each tensor kiln_run and kiln_run_named write into outputs[] -> kiln_tensor_destroy
 *   Handles are independent: options may be destroyed right after the load or run they
 *   were passed to, and output tensors outlive the model that made them. Strings and
 *   arrays returned as `const` pointers belong to the handle they came from and live as
 *   long as it does; never free them. The exceptions that borrow caller memory:
 *     - kiln_tensor_create_view uses `data` in place: keep it valid and unchanged while
 *       the tensor exists and while any run it was passed to is running.
 *     - kiln_model_load_from_memory uses the archive bytes in place (weights are not
 *       copied): keep them valid and unchanged until kiln_model_destroy, and, should
 *       the model return a weight as it is, while that output tensor exists.
 *
 * THREADS
 *   A kiln_model is immutable once loaded: any number of threads may call kiln_run on the
 *   same model at once (each run may itself use several kernel threads, see
 *   kiln_options_set_threads). Tensors are immutable after creation: share them freely,
 *   as inputs of concurrent runs too. Options objects may be read by concurrent loads and
 *   runs, but must not be changed (kiln_*_set_*) while another thread uses them. Error
 *   messages are per thread. kiln_*_destroy must not race with other uses of the handle.
 */
#ifndef KILN_KILN_H
#define KILN_KILN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status and errors ------------------------------------------------------------- */

typedef enum kiln_status {
  KILN_OK = 0,
  KILN_ERROR_BAD_INPUT = 1,
  KILN_ERROR_USAGE = 2,
  KILN_ERROR_INTERNAL = 3,
  KILN_ERROR_OUT_OF_MEMORY = 4
} kiln_status;

/* What the last failed call on this thread went wrong on, for people: names the file, the
 * place in it or the input, and the problem, e.g.
 *   "bert.pt:input_ids: expected an integer tensor (int64 or int32), got float32"
 *   "kiln_tensor_create_copy: data_bytes is 40, but an int64 tensor of shape [1, 8] takes 64 bytes"
 * "" (never NULL) when the last call succeeded. The string belongs to kiln and stays valid
 * until the next kiln call on the same thread; copy it to keep it. */
const char *kiln_last_error(void);

/* The library version, e.g. "0.1.0". The string is static: do not free it. */
const char *kiln_version(void);

/* ---- Element types ----------------------------------------------------------------- */

/* The values are fixed: they are part of the ABI. Names match PyTorch's dtypes. */
typedef enum kiln_dtype {
  KILN_DTYPE_UNKNOWN = -1, /* not a dtype: loading could not tell, or a NULL tensor */
  KILN_FLOAT32 = 0,
  KILN_FLOAT64 = 1,
  KILN_FLOAT16 = 2,
  KILN_BFLOAT16 = 3,
  KILN_INT8 = 4,
  KILN_INT16 = 5,
  KILN_INT32 = 6,
  KILN_INT64 = 7,
  KILN_UINT8 = 8,
  KILN_BOOL = 9,
  KILN_DTYPE_FORCE_INT32 = 0x7fffffff /* not a dtype: keeps the type 32 bits wide */
} kiln_dtype;

/* Bytes per element (4 for KILN_FLOAT32); 0 for a value that is not a dtype. */
size_t kiln_dtype_size(kiln_dtype dtype);
/* "float32", "int64", "bool", ...; "unknown" for anything else. Static: do not free. */
const char *kiln_dtype_name(kiln_dtype dtype);

/* ---- Opaque handles ---------------------------------------------------------------- */

typedef struct kiln_options kiln_options;         /* how to load a model */
typedef struct kiln_run_options kiln_run_options; /* how to run it */
typedef struct kiln_model kiln_model;             /* a loaded model */
typedef struct kiln_tensor kiln_tensor;           /* a dense, immutable tensor in C order */

/* ---- Load options ------------------------------------------------------------------ */

/* New load options with the defaults: provider "cpu", every CPU, no memory limit, prepared. */
kiln_status kiln_options_create(kiln_options **out);
void kiln_options_destroy(kiln_options *options);
/* Kernel threads for the model's runs (a run may override it): 0 (the default) is every
 * CPU the process may use. Results are bitwise the same for every count. */
kiln_status kiln_options_set_threads(kiln_options *options, int32_t threads);
/* Refuse runs whose planned memory (intermediates + outputs) exceeds this many bytes,
 * before allocating anything: 0 (the default) is no limit. */
kiln_status kiln_options_set_max_memory(kiln_options *options, int64_t bytes);
/* Providers by name, tried in order for every op: "cpu" (the default: fast kernels where
 * they apply, reference kernels for the rest) or "cpu-reference" (reference kernels only).
 * Names are copied; an unknown name is refused when the model loads (KILN_ERROR_USAGE). */
kiln_status kiln_options_set_providers(kiln_options *options, const char *const *names,
                                       size_t count);
/* Prepare the model while loading it (nonzero, the default): pack each linear layer's
 * weight into the GEMM's preferred layout and make the traced shape's kernels, so the
 * first run is as fast as the ones after it. 0 keeps loading cheap (no weight is read) and
 * leaves preparation to kiln_model_prepare, or to never: runs are then correct, slower. */
kiln_status kiln_options_set_prepare(kiln_options *options, int32_t prepare);

/* ---- Models ------------------------------------------------------------------------ */

/* Loads, checks and optimizes a TorchScript archive (torch.jit.trace + save). Loading
 * never executes anything from the file; ops kiln cannot run are refused here with their
 * source line (KILN_ERROR_BAD_INPUT). `options` may be NULL for the defaults. */
kiln_status kiln_model_load(const char *path, const kiln_options *options, kiln_model **out);
/* The same from an archive in memory, without copying it: the `size` bytes at `data` must
 * stay valid and unchanged until kiln_model_destroy. Messages call the archive "<memory>". */
kiln_status kiln_model_load_from_memory(const void *data, size_t size, const kiln_options *options,
                                        kiln_model **out);
void kiln_model_destroy(kiln_model *model);
/* Prepares a model loaded with preparation off (see kiln_options_set_prepare). Idempotent
 * and thread-safe: later calls return at once, and runs may go on from other threads
 * meanwhile. Results stay the same up to float rounding. */
kiln_status kiln_model_prepare(const kiln_model *model);

/* What the model takes and returns: inputs in forward-argument order ("input_ids",
 * "attention_mask", ...), outputs flattened in order ("output_0", ...). Counts are 0 and
 * names NULL for a NULL model or an index out of range (with a message). */
size_t kiln_model_input_count(const kiln_model *model);
size_t kiln_model_output_count(const kiln_model *model);
const char *kiln_model_input_name(const kiln_model *model, size_t index);
const char *kiln_model_output_name(const kiln_model *model, size_t index);

/* The dtype of input/output `index`, KILN_DTYPE_UNKNOWN when loading could not tell. An
 * integer input reported as KILN_INT64 also takes KILN_INT32. */
kiln_status kiln_model_input_dtype(const kiln_model *model, size_t index, kiln_dtype *dtype);
kiln_status kiln_model_output_dtype(const kiln_model *model, size_t index, kiln_dtype *dtype);
/* Its number of dimensions, -1 when loading could not tell. */
kiln_status kiln_model_input_rank(const kiln_model *model, size_t index, int32_t *rank);
kiln_status kiln_model_output_rank(const kiln_model *model, size_t index, int32_t *rank);
/* Its size along dimension `dim` (< rank): `*size` >= 0 when the size is fixed; -1 when it
 * varies, then `*symbol` names it ("batch", "seq", or one derived such as "seq+1"; the same
 * name means the same size across inputs and outputs). `*symbol` is "" for a fixed size;
 * it lives as long as the model. `symbol` may be NULL when not wanted. KILN_ERROR_USAGE
 * when the rank is unknown or `dim` is not below it. */
kiln_status kiln_model_input_dim(const kiln_model *model, size_t index, size_t dim, int64_t *size,
                                 const char **symbol);
kiln_status kiln_model_output_dim(const kiln_model *model, size_t index, size_t dim, int64_t *size,
                                  const char **symbol);

/* ---- Tensors ----------------------------------------------------------------------- */

/* A tensor of `dtype` and `shape` (`rank` sizes, each >= 0; `shape` may be NULL when rank
 * is 0, a scalar) holding a copy of `data`. `data_bytes` must be exactly the tensor's size,
 * kiln_dtype_size(dtype) times the product of the sizes, else KILN_ERROR_BAD_INPUT with a
 * message giving the expected size. `data` may be NULL when that size is 0. */
kiln_status kiln_tensor_create_copy(kiln_dtype dtype, const int64_t *shape, size_t rank,
                                    const void *data, size_t data_bytes, kiln_tensor **out);
/* The same without copying: the tensor reads `data` in place, so it must stay valid and
 * unchanged while the tensor exists and while any run it was given to is running. kiln
 * never writes to it. `data` must be aligned to kiln_dtype_size(dtype) (malloc'd memory
 * and arrays of the element type are), else KILN_ERROR_BAD_INPUT. */
kiln_status kiln_tensor_create_view(kiln_dtype dtype, const int64_t *shape, size_t rank,
                                    const void *data, size_t data_bytes, kiln_tensor **out);
void kiln_tensor_destroy(kiln_tensor *tensor);

/* What a tensor is. For a NULL tensor: KILN_DTYPE_UNKNOWN, 0, NULL, NULL, 0. */
kiln_dtype kiln_tensor_dtype(const kiln_tensor *tensor);
size_t kiln_tensor_rank(const kiln_tensor *tensor);
/* `rank` sizes, owned by the tensor (may be NULL when the rank is 0). */
const int64_t *kiln_tensor_shape(const kiln_tensor *tensor);
/* The elements in C order, owned by the tensor (or the caller's, for a view). Never write
 * through it. May be NULL when the tensor has no elements. */
const void *kiln_tensor_data(const kiln_tensor *tensor);
size_t kiln_tensor_nbytes(const kiln_tensor *tensor);
/* Copies the tensor's kiln_tensor_nbytes() bytes to `dst`. KILN_ERROR_BAD_INPUT when
 * `dst_bytes` is smaller (nothing is written); a larger buffer keeps its remaining bytes. */
kiln_status kiln_tensor_copy_to(const kiln_tensor *tensor, void *dst, size_t dst_bytes);

/* ---- Run options ------------------------------------------------------------------- */

/* New run options with the defaults: the model's threads and memory limit, not strict. */
kiln_status kiln_run_options_create(kiln_run_options **out);
void kiln_run_options_destroy(kiln_run_options *options);
/* Kernel threads for this run: -1 (the default) takes the model's; 0 is every CPU. */
kiln_status kiln_run_options_set_threads(kiln_run_options *options, int32_t threads);
/* The memory limit for this run in bytes: -1 (the default) takes the model's; 0 is none. */
kiln_status kiln_run_options_set_max_memory(kiln_run_options *options, int64_t bytes);
/* Non-zero: refuse inputs whose sizes the trace fixed silently (a literal slice bound)
 * instead of computing what PyTorch computes. 0 (the default) allows them. */
kiln_status kiln_run_options_set_strict_shapes(kiln_run_options *options, int32_t strict);

/* ---- Running ----------------------------------------------------------------------- */

/* Runs the model on `n_inputs` tensors in forward-argument order (see
 * kiln_model_input_name); `options` may be NULL for the defaults. Integer ids may be
 * KILN_INT64 or KILN_INT32. Inputs of the wrong count, dtype, rank or size, or ids out of
 * range, are refused before anything is computed, with a message naming the input
 * (KILN_ERROR_BAD_INPUT). Runs never change their inputs; the array's elements are not
 * `const kiln_tensor *` only so that C callers need no cast.
 *
 * On success, writes the outputs (kiln_model_output_count() of them) as new tensors to
 * outputs[0..], their count to `*n_outputs`, and each output is the caller's to destroy.
 * When `outputs_capacity` is smaller than the count, returns KILN_ERROR_BAD_INPUT with the
 * count needed in `*n_outputs`, before running anything: no tensors are created and
 * outputs[] is untouched. On any other failure `*n_outputs` is 0. `outputs` may be NULL
 * when `outputs_capacity` is 0. */
kiln_status kiln_run(const kiln_model *model, kiln_tensor *const *inputs, size_t n_inputs,
                     const kiln_run_options *options, kiln_tensor **outputs,
                     size_t outputs_capacity, size_t *n_outputs);
/* The same with inputs by name, in any order: names[i] names inputs[i]. Every input of the
 * model must be given once; an unknown name is KILN_ERROR_BAD_INPUT with the model's
 * input names in the message. */
kiln_status kiln_run_named(const kiln_model *model, const char *const *names,
                           kiln_tensor *const *inputs, size_t n_inputs,
                           const kiln_run_options *options, kiln_tensor **outputs,
                           size_t outputs_capacity, size_t *n_outputs);

#ifdef __cplusplus
}
#endif

#endif /* KILN_KILN_H */
