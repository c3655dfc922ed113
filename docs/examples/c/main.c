/* kiln from C: load a TorchScript model, run it once, print what it takes and returns.
 *
 *   make && ./kiln-example model.pt
 *
 * Every input gets batch 1, sequence 8, int64: "attention_mask" all ones, "token_type_ids"
 * all zeros, anything else token ids ([CLS] 5 6 7 8 9 10 [SEP] in BERT's vocabulary).
 * C99, kiln.h only; build it against an installed kiln with the Makefile beside it.
 */
#include <kiln/kiln.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SEQ 8
#define MAX_INPUTS 16
#define MAX_OUTPUTS 16

static int fail(const char *what) {
  fprintf(stderr, "kiln-example: %s: %s\n", what, kiln_last_error());
  return 1;
}

/* "  0: input_ids [batch, seq] int64": the sizes and dtype as far as loading could tell. */
static void print_input(const kiln_model *model, size_t index) {
  int32_t rank = -1;
  kiln_dtype dtype = KILN_DTYPE_UNKNOWN;
  kiln_model_input_rank(model, index, &rank);
  kiln_model_input_dtype(model, index, &dtype);
  printf("  %zu: %s ", index, kiln_model_input_name(model, index));
  if (rank < 0) {
    printf("?");
  } else {
    printf("[");
    for (int32_t d = 0; d < rank; ++d) {
      int64_t size = -1;
      const char *symbol = "";
      kiln_model_input_dim(model, index, (size_t)d, &size, &symbol);
      if (d) printf(", ");
      if (size >= 0) printf("%lld", (long long)size);
      else printf("%s", symbol);
    }
    printf("]");
  }
  printf(" %s\n", kiln_dtype_name(dtype));
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s MODEL.pt\n", argv[0]);
    return 2;
  }
  printf("kiln %s\n", kiln_version());

  kiln_model *model = NULL;
  if (kiln_model_load(argv[1], NULL, &model) != KILN_OK) return fail("load");

  size_t n_inputs = kiln_model_input_count(model);
  if (n_inputs > MAX_INPUTS) {
    fprintf(stderr, "kiln-example: %zu inputs, at most %d here\n", n_inputs, MAX_INPUTS);
    kiln_model_destroy(model);
    return 1;
  }
  printf("inputs: %zu\n", n_inputs);

  const int64_t shape[2] = {1, SEQ};
  const int64_t ids[SEQ] = {101, 5, 6, 7, 8, 9, 10, 102};
  const int64_t ones[SEQ] = {1, 1, 1, 1, 1, 1, 1, 1};
  const int64_t zeros[SEQ] = {0};

  kiln_tensor *inputs[MAX_INPUTS] = {NULL};
  kiln_tensor *outputs[MAX_OUTPUTS] = {NULL};
  size_t n_outputs = 0;
  int rc = 1;

  for (size_t i = 0; i < n_inputs; ++i) {
    const char *name = kiln_model_input_name(model, i);
    const int64_t *data = ids;
    if (strcmp(name, "attention_mask") == 0) data = ones;
    else if (strcmp(name, "token_type_ids") == 0) data = zeros;
    print_input(model, i);
    if (kiln_tensor_create_copy(KILN_INT64, shape, 2, data, sizeof ids, &inputs[i]) != KILN_OK) {
      fail("input");
      goto done;
    }
  }

  if (kiln_run(model, inputs, n_inputs, NULL, outputs, MAX_OUTPUTS, &n_outputs) != KILN_OK) {
    fail("run");
    goto done;
  }

  printf("outputs: %zu\n", n_outputs);
  for (size_t i = 0; i < n_outputs; ++i) {
    size_t rank = kiln_tensor_rank(outputs[i]);
    const int64_t *dims = kiln_tensor_shape(outputs[i]);
    printf("  %zu: [", i);
    for (size_t d = 0; d < rank; ++d) printf(d ? ", %lld" : "%lld", (long long)dims[d]);
    printf("] %s\n", kiln_dtype_name(kiln_tensor_dtype(outputs[i])));
  }
  rc = 0;

done:
  for (size_t i = 0; i < n_outputs; ++i) kiln_tensor_destroy(outputs[i]);
  for (size_t i = 0; i < n_inputs; ++i) kiln_tensor_destroy(inputs[i]);
  kiln_model_destroy(model);
  return rc;
}
