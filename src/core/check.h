// LLMOPT_CHECK: programmer invariants. Failing one is a bug: print file:line and abort.
// Never use it for anything read from a file, a flag or a network request (use Status).
#pragma once

#include <cstdio>
#include <cstdlib>

#define LLMOPT_CHECK(cond)                                                          \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

#define LLMOPT_CHECK_MSG(cond, msg)                                                          \
  do {                                                                                       \
    if (!(cond)) {                                                                           \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s (%s)\n", __FILE__, __LINE__, #cond, msg); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)
