// What happens to each generated token, shared by plain and speculative generation: EOS, stop
// strings (text that could still become a stop string is held back from the stream), UTF-8-safe
// streaming to a callback, and the length limit.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "core/status.h"
#include "model/model.h"
#include "runtime/generate.h"

namespace llmopt {

// Checks a generation request against the model; returns max_total (prompt + the most tokens that
// may be generated) or an error (empty prompt, ids out of range, prompt too long, bad sampling).
Result<int32_t> check_generate_request(const Model& model, std::span<const int32_t> prompt,
                                       const GenerateOptions& opts);

class TokenSink {
 public:
  TokenSink(const Model& model, const GenerateOptions& opts, int32_t n_prompt, int32_t max_total,
            const TextCallback& on_text, GenerateResult& res);
  // True when no more tokens may be generated (res.stop_reason set).
  bool done() const { return !res_.stop_reason.empty(); }
  // Adds a generated token. Returns false when generation must stop (then res.stop_reason is set).
  bool push(int32_t token);
  // Flushes the stream and fills res.text; call once at the end.
  void finish();

 private:
  size_t holdback(const std::string& t) const;

  const Model& model_;
  const GenerateOptions& opts_;
  int32_t n_total_;
  int32_t max_total_;
  const char* limit_reason_;
  const TextCallback& on_text_;
  GenerateResult& res_;
  Utf8Streamer streamer_;
  std::string text_;
  size_t emitted_ = 0;
};

}  // namespace llmopt
