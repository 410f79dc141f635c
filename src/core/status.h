// Status and Result<T>: how untrusted-input errors travel up to the front ends.
// Programmer invariants use LLMOPT_CHECK (check.h) instead; running out of capacity is not an error.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace llmopt {

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status ok_status() { return Status(); }
  static Status error(std::string message) {
    Status s;
    s.message_ = std::move(message);
    s.ok_ = false;
    return s;
  }
  bool ok() const { return ok_; }
  const std::string& message() const { return message_; }
  // Prepends context, e.g. the file name: "model.gguf: tensor offset past end of file".
  Status with_context(const std::string& ctx) const {
    if (ok_) return *this;
    return error(ctx + ": " + message_);
  }

 private:
  bool ok_ = true;
  std::string message_;
};

inline Status ok_status() { return Status(); }
inline Status error(std::string message) { return Status::error(std::move(message)); }

template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return std::holds_alternative<T>(v_); }
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace llmopt

#define LLMOPT_CONCAT_INNER(a, b) a##b
#define LLMOPT_CONCAT(a, b) LLMOPT_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if `expr` is not ok.
#define LLMOPT_RETURN_IF_ERROR(expr)          \
  do {                                        \
    ::llmopt::Status _st = (expr);            \
    if (!_st.ok()) return _st;                \
  } while (0)

// LLMOPT_ASSIGN_OR_RETURN(auto x, make_x()); returns the error Status if make_x() failed.
#define LLMOPT_ASSIGN_OR_RETURN(lhs, expr) \
  LLMOPT_ASSIGN_OR_RETURN_IMPL(LLMOPT_CONCAT(_res_, __LINE__), lhs, expr)
#define LLMOPT_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
