// ChatML formatting, the default system prompt from a chat template, and history trimming.
#include "runtime/chat.h"

namespace llmopt {

std::string format_chatml(std::span<const ChatMessage> messages, bool add_generation_prompt) {
  std::string out;
  for (const ChatMessage& m : messages) {
    out += kChatImStart;
    out += m.role;
    out += '\n';
    out += m.content;
    out += kChatImEnd;
    out += '\n';
  }
  if (add_generation_prompt) {
    out += kChatImStart;
    out += "assistant\n";
  }
  return out;
}

std::string default_system_prompt(std::string_view chat_template) {
  // NOTE: no Jinja interpreter here; the one default we know of is recognized by its text.
  constexpr std::string_view kSmolLM = "You are a helpful AI assistant named SmolLM";
  const size_t begin = chat_template.find(kSmolLM);
  if (begin == std::string_view::npos) return {};
  size_t end = chat_template.find(kChatImEnd, begin);
  if (end == std::string_view::npos) end = chat_template.find('\'', begin);
  if (end == std::string_view::npos) return std::string(kSmolLM);
  return std::string(chat_template.substr(begin, end - begin));
}

std::vector<ChatMessage> ChatHistory::messages() const {
  std::vector<ChatMessage> all;
  all.reserve(turns_.size() + 1);
  if (!system_.empty()) all.push_back({"system", system_});
  all.insert(all.end(), turns_.begin(), turns_.end());
  return all;
}

std::string ChatHistory::prompt() const {
  const std::vector<ChatMessage> all = messages();
  return format_chatml(all, /*add_generation_prompt=*/true);
}

size_t ChatHistory::trim_to_fit(const std::function<size_t(const std::string&)>& count_tokens,
                                size_t max_tokens) {
  size_t dropped = 0;
  while (turns_.size() > 1 && count_tokens(prompt()) > max_tokens) {
    // A user message goes with the reply that follows it, so the history stays user-first.
    size_t n = 1;
    if (turns_[0].role == "user" && turns_.size() > 2 && turns_[1].role == "assistant") n = 2;
    turns_.erase(turns_.begin(), turns_.begin() + static_cast<std::ptrdiff_t>(n));
    dropped += n;
  }
  return dropped;
}

}  // namespace llmopt
