// Logging sink. Libraries below the front ends never print directly; they call log_*,
// and the front end decides where it goes (stderr by default) and how verbose it is.
#pragma once

#include <functional>
#include <string>

namespace llmopt {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void set_log_level(LogLevel level);
void set_log_sink(std::function<void(LogLevel, const std::string&)> sink);
void log_message(LogLevel level, const std::string& msg);
inline void log_info(const std::string& msg) { log_message(LogLevel::kInfo, msg); }
inline void log_warn(const std::string& msg) { log_message(LogLevel::kWarn, msg); }
inline void log_debug(const std::string& msg) { log_message(LogLevel::kDebug, msg); }

}  // namespace llmopt
