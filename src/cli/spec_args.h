// The speculative-decoding options shared by `generate` and `bench-spec`: which drafter, k, adaptive.
#pragma once

#include <CLI/CLI.hpp>
#include <memory>
#include <string>

#include "core/status.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/spec/drafter.h"

namespace llmopt::cli {

struct SpecArgs {
  std::string draft;       // --draft MODEL
  std::string draft_self;  // --draft-self TYPE
  int draft_ngram = 0;     // --draft-ngram N
  int k = 4;               // --spec-k
  bool adaptive = false;   // --spec-adaptive
  bool any() const { return !draft.empty() || !draft_self.empty() || draft_ngram > 0; }
};

// with_k: add --spec-k (bench-spec takes a list instead).
void add_spec_args(CLI::App* app, SpecArgs& args, bool with_k = true);
// The drafter the flags ask for (nullptr when none). Errors: several drafters at once, a draft that
// does not load or has another vocabulary, an unknown self-draft type.
Result<std::unique_ptr<Drafter>> make_drafter(const SpecArgs& args, const Model& target, int32_t n_ctx, uint64_t seed,
                                              ThreadPool& pool);

}  // namespace llmopt::cli
