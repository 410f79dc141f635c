// Default log sink: stderr, "warning: " prefix for warnings.
#include "core/log.h"

#include <cstdio>
#include <mutex>

namespace llmopt {
namespace {
LogLevel g_level = LogLevel::kInfo;
std::function<void(LogLevel, const std::string&)> g_sink;
std::mutex g_mu;
}  // namespace

void set_log_level(LogLevel level) { g_level = level; }
void set_log_sink(std::function<void(LogLevel, const std::string&)> sink) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_sink = std::move(sink);
}

void log_message(LogLevel level, const std::string& msg) {
  if (level < g_level) return;
  std::lock_guard<std::mutex> lock(g_mu);
  if (g_sink) {
    g_sink(level, msg);
    return;
  }
  const char* prefix = level == LogLevel::kWarn ? "warning: " : level == LogLevel::kError ? "error: " : "";
  std::fprintf(stderr, "%s%s\n", prefix, msg.c_str());
}

}  // namespace llmopt
