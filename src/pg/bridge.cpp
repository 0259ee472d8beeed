// src/pg/bridge.cpp: the out-of-line halves of the C++/Postgres error boundary (see bridge.h).
#include "pg/bridge.h"

#include <cstring>

namespace ducto::pg {

int errcode_of(Errc code) noexcept {
  switch (code) {
    case Errc::invalid_value: return ERRCODE_INVALID_PARAMETER_VALUE;
    case Errc::null_value: return ERRCODE_NULL_VALUE_NOT_ALLOWED;
    case Errc::out_of_range: return ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE;
    case Errc::not_ready: return ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE;
  }
  return ERRCODE_INTERNAL_ERROR;
}

void raise_error(Errc code, const char* message) {
  ereport(ERROR, (errcode(errcode_of(code)), errmsg_internal("%s", message)));
  pg_unreachable();
}

namespace detail {

const char* copy_message(const char* message) noexcept {
  // Messages are short; the cap keeps palloc_extended clear of its size check, which would raise.
  constexpr std::size_t kMaxMessage = 64 * 1024;
  const std::size_t length = strnlen(message, kMaxMessage);
  auto* copy = static_cast<char*>(palloc_extended(length + 1, MCXT_ALLOC_NO_OOM));
  if (copy == nullptr) return "out of memory while reporting an error";
  std::memcpy(copy, message, length);
  copy[length] = '\0';
  return copy;
}

void raise(const Failure& failure) {
  switch (failure.kind) {
    case Failure::Kind::postgres:
      ReThrowError(failure.postgres);
    case Failure::Kind::core:
      raise_error(failure.code, failure.message);
    case Failure::Kind::out_of_memory:
      ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory"),
                      errdetail_internal("A C++ allocation failed.")));
      break;
    case Failure::Kind::internal:
      ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
                      errmsg_internal("unexpected C++ exception: %s", failure.message)));
      break;
  }
  pg_unreachable();
}

ErrorData* run_catching(void (*fn)(void*), void* arg) noexcept {
  MemoryContext caller_context = CurrentMemoryContext;
  ErrorData* volatile error = nullptr;
  PG_TRY();
  {
    fn(arg);
  }
  PG_CATCH();
  {
    // CopyErrorData refuses to run in ErrorContext, and the copy must outlive the flush.
    MemoryContextSwitchTo(caller_context);
    error = CopyErrorData();
    FlushErrorState();
  }
  PG_END_TRY();
  return error;
}

}  // namespace detail
}  // namespace ducto::pg
