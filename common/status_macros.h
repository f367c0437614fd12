// Status propagation macros for absl::Status / absl::StatusOr (Debian's abseil 20220623 ships none).
//
//   absl::Status Load(const std::string& path) {
//     RETURN_IF_ERROR(CheckPath(path));
//     ASSIGN_OR_RETURN(std::string bytes, ReadFile(path));
//     ...
//   }
#ifndef DGSR_COMMON_STATUS_MACROS_H_
#define DGSR_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define DGSR_STATUS_CONCAT_INNER_(a, b) a##b
#define DGSR_STATUS_CONCAT_(a, b) DGSR_STATUS_CONCAT_INNER_(a, b)

// Evaluates `expr` (an absl::Status); returns it from the enclosing function if it is not OK.
#define RETURN_IF_ERROR(expr)                                     \
  do {                                                            \
    ::absl::Status dgsr_status_ = (expr);                         \
    if (!dgsr_status_.ok()) return dgsr_status_;                  \
  } while (0)

// Evaluates `rexpr` (an absl::StatusOr<T>); on error returns its status, otherwise moves the
// value into `lhs`, which may be a declaration (`ASSIGN_OR_RETURN(auto x, F())`).
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  DGSR_ASSIGN_OR_RETURN_IMPL_(DGSR_STATUS_CONCAT_(dgsr_statusor_, __LINE__), lhs, rexpr)

#define DGSR_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                \
  if (!statusor.ok()) return std::move(statusor).status(); \
  lhs = std::move(statusor).value()

#endif  // DGSR_COMMON_STATUS_MACROS_H_
