#pragma once

// Fuzz targets assert invariants, not only "does not crash": a broken one aborts, and
// libFuzzer saves the input that did it (build-fuzz/artifacts/).

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)
