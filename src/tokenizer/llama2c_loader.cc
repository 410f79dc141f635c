// Loader for llama2.c's tokenizer.bin. Layout (little endian):
//   u32 max_token_length
//   then, until end of file, per token: f32 score, i32 len, len bytes of the piece.
// The file does not store the vocabulary size; every byte must belong to a complete entry.
// Ids 0/1/2 are <unk>/<s>/</s>; "<0xNN>" pieces are byte tokens; pieces spell spaces as ' ', which we
// turn into SentencePiece's U+2581 so one SentencePiece tokenizer serves every source.
#include <cmath>
#include <cstring>

#include "core/mmap_file.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

namespace llmopt {

namespace {

bool is_byte_piece(const std::string& p) {
  auto hex = [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
  };
  return p.size() == 6 && p.compare(0, 3, "<0x") == 0 && hex(p[3]) && hex(p[4]) && p[5] == '>';
}

}  // namespace

Result<TokenizerSpec> tokenizer_spec_from_llama2c(const std::string& tokenizer_bin_path) {
  const std::string& path = tokenizer_bin_path;
  LLMOPT_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::open(path));
  const uint8_t* data = file->data();
  const size_t size = file->size();
  if (size < 4)
    return error(path + ": too short for a llama2.c tokenizer (" + std::to_string(size) + " bytes)");
  uint32_t max_token_length;
  std::memcpy(&max_token_length, data, 4);

  TokenizerSpec spec;
  spec.model = "llama";
  spec.pre = "default";
  size_t off = 4;
  while (off < size) {
    const size_t id = spec.tokens.size();
    if (size - off < 8) {
      return error(path + ": truncated entry for token " + std::to_string(id) + " at offset " +
                   std::to_string(off) + " (file is " + std::to_string(size) + " bytes)");
    }
    float score;
    int32_t len;
    std::memcpy(&score, data + off, 4);
    std::memcpy(&len, data + off + 4, 4);
    off += 8;
    if (len < 0)
      return error(path + ": token " + std::to_string(id) + " has negative length " + std::to_string(len));
    if (static_cast<size_t>(len) > size - off) {
      return error(path + ": token " + std::to_string(id) + " of length " + std::to_string(len) +
                   " runs past the end of the file (offset " + std::to_string(off) + ", file is " +
                   std::to_string(size) + " bytes)");
    }
    std::string piece(reinterpret_cast<const char*>(data + off), static_cast<size_t>(len));
    off += static_cast<size_t>(len);
    if (!std::isfinite(score))
      return error(path + ": token " + std::to_string(id) + " has a non-finite score");
    TokenType type = TokenType::kNormal;
    if (id <= 2) {
      type = TokenType::kControl;  // <unk>, <s>, </s>
    } else if (is_byte_piece(piece)) {
      type = TokenType::kByte;
    } else {
      std::string norm;
      norm.reserve(piece.size() + 8);
      for (char c : piece) {
        if (c == ' ') {
          norm += "\xE2\x96\x81";
        } else {
          norm.push_back(c);
        }
      }
      piece = std::move(norm);
    }
    spec.tokens.push_back(std::move(piece));
    spec.scores.push_back(score);
    spec.token_types.push_back(static_cast<int32_t>(type));
  }
  if (spec.tokens.size() < 3) {
    return error(path + ": has " + std::to_string(spec.tokens.size()) +
                 " tokens; needs at least <unk>, <s>, </s>");
  }
  spec.unk_id = 0;
  spec.bos_id = 1;
  spec.eos_id = 2;
  spec.add_bos = true;
  spec.add_eos = false;
  // llama2.c's encoder: dummy prefix, spaces kept as they are.
  spec.add_space_prefix = true;
  spec.remove_extra_whitespaces = false;
  (void)max_token_length;  // informational: the longest piece, in bytes
  return spec;
}

}  // namespace llmopt
