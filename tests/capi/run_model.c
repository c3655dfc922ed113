/* A C99 user of kiln's C API: loads the model named on the command line, gives each of
 * its inputs an int64 [1, 8] tensor (ids 101.. for input_ids, ones for attention_mask,
 * zeros for the rest, by the names introspection reports), runs it, and prints each
 * output's name, dtype and shape. Built with -std=c99 -pedantic -Werror (tests/meson.build)
 * so that the header stays C99-clean.
 *
 * usage: run_model MODEL.pt                exit 0 when the run succeeded (and a run without
 *        run_model FIXTURES_ROOT RELATIVE  inputs was refused), 1 otherwise. The second form
 *                                          takes the fixture under $KILN_FIXTURES when set. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kiln/kiln.h"

#define SEQ 8
#define MAX_IO 16

static int fail(const char *what) {
  fprintf(stderr, "run_model: %s: %s\n", what, kiln_last_error());
  return 1;
}

int main(int argc, char **argv) {
  kiln_model *model = NULL;
  kiln_tensor *inputs[MAX_IO] = {NULL};
  kiln_tensor *outputs[MAX_IO] = {NULL};
  int64_t values[MAX_IO][SEQ];
  const int64_t shape[2] = {1, SEQ};
  size_t n_inputs, n_outputs = 0, i, d;
  int status = 1;

  char path[4096];
  if (argc == 2) {
    snprintf(path, sizeof path, "%s", argv[1]);
  } else if (argc == 3) {
    const char *root = getenv("KILN_FIXTURES");
    snprintf(path, sizeof path, "%s/%s", root && *root ? root : argv[1], argv[2]);
  } else {
    fprintf(stderr, "usage: run_model MODEL.pt | run_model FIXTURES_ROOT RELATIVE_PATH\n");
    return 2;
  }
  printf("kiln %s\n", kiln_version());
  if (kiln_model_load(path, NULL, &model) != KILN_OK) return fail("load");

  n_inputs = kiln_model_input_count(model);
  if (n_inputs > MAX_IO) {
    fprintf(stderr, "run_model: the model has %lu inputs\n", (unsigned long)n_inputs);
    goto done;
  }
  for (i = 0; i < n_inputs; ++i) {
    const char *name = kiln_model_input_name(model, i);
    int64_t j;
    for (j = 0; j < SEQ; ++j) {
      if (strcmp(name, "input_ids") == 0 || (i == 0 && strstr(name, "mask") == NULL))
        values[i][j] = 101 + j;
      else if (strstr(name, "mask") != NULL)
        values[i][j] = 1;
      else
        values[i][j] = 0;
    }
    if (kiln_tensor_create_view(KILN_INT64, shape, 2, values[i], sizeof values[i], &inputs[i]) != KILN_OK) {
      fail("tensor");
      goto done;
    }
    printf("input %s: int64 [1, %d]\n", name, SEQ);
  }

  if (kiln_run(model, inputs, n_inputs, NULL, outputs, MAX_IO, &n_outputs) != KILN_OK) {
    fail("run");
    goto done;
  }
  for (i = 0; i < n_outputs; ++i) {
    const int64_t *sizes = kiln_tensor_shape(outputs[i]);
    size_t rank = kiln_tensor_rank(outputs[i]);
    printf("%s: %s [", kiln_model_output_name(model, i), kiln_dtype_name(kiln_tensor_dtype(outputs[i])));
    for (d = 0; d < rank; ++d) printf(d ? ", %lld" : "%lld", (long long)sizes[d]);
    printf("] %lu bytes\n", (unsigned long)kiln_tensor_nbytes(outputs[i]));
  }

  /* A wrong call is a status and a message, not a crash. */
  {
    size_t n = 0;
    kiln_tensor *spare[MAX_IO];
    if (kiln_run(model, NULL, 0, NULL, spare, MAX_IO, &n) != KILN_ERROR_BAD_INPUT || kiln_last_error()[0] == '\0') {
      fprintf(stderr, "run_model: a run without inputs was not refused\n");
      goto done;
    }
    printf("without inputs: %s\n", kiln_last_error());
  }
  status = n_outputs > 0 ? 0 : 1;

done:
  for (i = 0; i < MAX_IO; ++i) {
    kiln_tensor_destroy(outputs[i]);
    kiln_tensor_destroy(inputs[i]);
  }
  kiln_model_destroy(model);
  return status;
}
