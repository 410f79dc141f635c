// Chat conversations in ChatML (SmolLM2, Qwen, ...): message formatting, the default system prompt
// a model's chat template carries, and trimming the history to fit the context. No model needed:
// token counting is passed in, so this is testable on its own.
#pragma once

#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llmopt {

struct ChatMessage {
  std::string role;     // "system", "user", "assistant"
  std::string content;
};

inline constexpr std::string_view kChatImStart = "<|im_start|>";
inline constexpr std::string_view kChatImEnd = "<|im_end|>";

// "<|im_start|>role\ncontent<|im_end|>\n" per message, then "<|im_start|>assistant\n" when
// add_generation_prompt. The markup must be encoded with special-token parsing.
std::string format_chatml(std::span<const ChatMessage> messages, bool add_generation_prompt);

// The system prompt a GGUF tokenizer.chat_template injects when the conversation has none: SmolLM2's
// "You are a helpful AI assistant named SmolLM, trained by Hugging Face" (the text up to the
// following <|im_end|>); empty when the template has no such default.
std::string default_system_prompt(std::string_view chat_template);

// A conversation: an optional system message, then user/assistant turns.
class ChatHistory {
 public:
  explicit ChatHistory(std::string system = {}) : system_(std::move(system)) {}
  void add(std::string role, std::string content) { turns_.push_back({std::move(role), std::move(content)}); }
  void clear() { turns_.clear(); }
  // All messages (the system one first, if any).
  std::vector<ChatMessage> messages() const;
  // The ChatML prompt for the assistant's next reply.
  std::string prompt() const;
  // Drops the oldest turns (a user message and the reply after it together) until
  // count_tokens(prompt()) <= max_tokens, always keeping the system message and the last turn.
  // Returns the number of messages dropped.
  size_t trim_to_fit(const std::function<size_t(const std::string&)>& count_tokens, size_t max_tokens);
  size_t n_turns() const { return turns_.size(); }
  const std::string& system() const { return system_; }

 private:
  std::string system_;
  std::vector<ChatMessage> turns_;
};

}  // namespace llmopt
