// ChatML formatting, the default system prompt from a chat template, and history trimming (no model).
#include <gtest/gtest.h>

#include "runtime/chat.h"

namespace llmopt {
namespace {

// SmolLM2-135M-Instruct's tokenizer.chat_template, as its GGUF stores it.
const char* kSmolLM2Template =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

TEST(ChatTest, FormatsChatML) {
  const std::vector<ChatMessage> msgs = {{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello!"},
                                         {"user", "What is 2+2?"}};
  EXPECT_EQ(format_chatml(msgs, true),
            "<|im_start|>system\nBe brief.<|im_end|>\n"
            "<|im_start|>user\nHi<|im_end|>\n"
            "<|im_start|>assistant\nHello!<|im_end|>\n"
            "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
            "<|im_start|>assistant\n");
  EXPECT_EQ(format_chatml(std::span<const ChatMessage>(msgs.data(), 1), false),
            "<|im_start|>system\nBe brief.<|im_end|>\n");
  EXPECT_EQ(format_chatml({}, true), "<|im_start|>assistant\n");
}

TEST(ChatTest, DefaultSystemPromptFromTemplate) {
  EXPECT_EQ(default_system_prompt(kSmolLM2Template),
            "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  EXPECT_EQ(default_system_prompt(""), "");
  EXPECT_EQ(default_system_prompt("{% for m in messages %}{{ m['content'] }}{% endfor %}"), "");
}

TEST(ChatTest, HistoryPromptWithAndWithoutSystem) {
  ChatHistory h("sys");
  h.add("user", "q1");
  EXPECT_EQ(h.prompt(), "<|im_start|>system\nsys<|im_end|>\n<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\n");
  ChatHistory bare;
  bare.add("user", "q1");
  EXPECT_EQ(bare.prompt(), "<|im_start|>user\nq1<|im_end|>\n<|im_start|>assistant\n");
  h.clear();
  EXPECT_EQ(h.n_turns(), 0u);
  EXPECT_EQ(h.messages().size(), 1u);  // the system message stays
}

TEST(ChatTest, TrimDropsOldestTurnPairsKeepsSystemAndLast) {
  ChatHistory h("sys");
  for (int i = 0; i < 3; ++i) {
    h.add("user", "question " + std::to_string(i));
    h.add("assistant", "answer " + std::to_string(i));
  }
  h.add("user", "last question");
  auto bytes = [](const std::string& s) { return s.size(); };
  EXPECT_EQ(h.trim_to_fit(bytes, 1 << 20), 0u);
  EXPECT_EQ(h.n_turns(), 7u);
  // Room for the system message, one old pair and the last question.
  ChatHistory want("sys");
  want.add("user", "question 2");
  want.add("assistant", "answer 2");
  want.add("user", "last question");
  EXPECT_EQ(h.trim_to_fit(bytes, want.prompt().size()), 4u);
  EXPECT_EQ(h.prompt(), want.prompt());
  // Never drops the last message, even when it alone is too long.
  EXPECT_EQ(h.trim_to_fit(bytes, 1), 2u);
  ASSERT_EQ(h.n_turns(), 1u);
  EXPECT_EQ(h.messages().back().content, "last question");
}

}  // namespace
}  // namespace llmopt
