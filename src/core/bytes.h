// Byte counts for people and for files: "1.13 MiB", and the size of a model file or directory.
#pragma once

#include <cstdint>
#include <string>

namespace llmopt {

// "512 B", "1.13 MiB", "2.00 GiB" (binary units).
std::string human_bytes(double bytes);
// Size of a file, or the sum over the regular files directly in a directory; 0 when neither.
uint64_t path_bytes(const std::string& path);

}  // namespace llmopt
