// src/pg/bridge.h: the error boundary between C++ and Postgres (design.md, Layers, boundary rules).
//
// Postgres reports errors with longjmp; C++ with exceptions. Neither may cross the other's frames:
// - a C++ exception that reaches a Postgres C frame terminates the backend, and with it the whole
//   cluster (the postmaster restarts every session);
// - a longjmp across C++ frames skips their destructors (leaks, locks held by RAII guards, broken
//   invariants), and a C++ exception thrown out of a PG_TRY block leaves PG_exception_stack pointing at a
//   dead frame.
// Postgres errors must also reach the client unchanged: clients retry on 40001, 40P01, 55P03 and 57014,
// so turning them into a generic error would break retries (design.md, rule 2).
//
// The rules every file under src/pg follows:
//  1. Every extern "C" SQL entry point is `return guarded([&]() -> Datum { ... });`. guarded() catches
//     every C++ exception and raises the matching Postgres error once the C++ frames are gone.
//  2. A Postgres call that can raise (palloc, SPI, detoasting, catalog lookups, ...) never runs while a
//     C++ object with a non-trivial destructor is alive in a frame it would skip. Either it runs before
//     any such object exists (argument fetching at the top of a body), or it goes through pg_call().
//  3. pg_call(fn) runs fn under PG_TRY. On a Postgres error it copies the error, throws PostgresError
//     after PG_END_TRY, the C++ frames unwind normally, and guarded() re-raises the very same error
//     (ReThrowError): SQLSTATE, message, detail and hint unchanged. fn must be noexcept, and its own
//     frames hold only trivially destructible state (pointers, Datums, spans, integers).
//  4. Nothing catches PostgresError to carry on: after a Postgres error the transaction must abort
//     (catch-and-continue is only valid inside a subtransaction, and never on the hot path).
//  5. Callbacks Postgres calls (relcache invalidation, ...) are noexcept and neither throw nor allocate.
//
// Everything here is a few inlined instructions on the success path: try blocks cost nothing until
// something throws, and pg_call adds one sigsetjmp.
#pragma once
#include "pg/pg_headers.h"

#include <exception>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>

namespace ducto::pg {

// A Postgres error caught by pg_call, on its way back to guarded(). Not a std::exception on purpose:
// only guarded() is meant to catch it.
class PostgresError {
 public:
  explicit PostgresError(ErrorData* data) noexcept : data_(data) {}
  ErrorData* data() const noexcept { return data_; }

 private:
  ErrorData* data_;
};

// The ERRCODE_* of a core error code.
int errcode_of(Errc code) noexcept;

// Raises a Postgres ERROR with the code's SQLSTATE. For C frames only (no C++ object alive).
[[noreturn]] void raise_error(Errc code, const char* message);

namespace detail {

// What guarded() caught, kept in trivially destructible form so it survives the end of the catch
// block (the exception object is freed there) without being a C++ object the longjmp could skip.
struct Failure {
  enum class Kind : unsigned char { postgres, core, out_of_memory, internal };
  Kind kind = Kind::internal;
  Errc code = Errc::invalid_value;
  const char* message = nullptr;  // palloc'd copy, or a static string
  ErrorData* postgres = nullptr;
};

// A palloc'd copy of `message` that cannot raise: falls back to a static text when memory is short.
const char* copy_message(const char* message) noexcept;

[[noreturn]] void raise(const Failure& failure);

// Runs fn(arg) under PG_TRY. Returns nullptr when it returned; otherwise the error, copied into the
// caller's memory context, with the error state flushed.
ErrorData* run_catching(void (*fn)(void*), void* arg) noexcept;

}  // namespace detail

// Runs `body` (returning the Datum of a SQL function) and converts every C++ exception into a Postgres
// ERROR raised after the handler has finished.
template <class Body>
Datum guarded(Body&& body) {
  static_assert(std::is_same_v<std::invoke_result_t<Body&>, Datum>, "a guarded body returns a Datum");
  detail::Failure failure;
  try {
    return body();
  } catch (const PostgresError& error) {
    failure.kind = detail::Failure::Kind::postgres;
    failure.postgres = error.data();
  } catch (const Error& error) {
    failure.kind = detail::Failure::Kind::core;
    failure.code = error.code();
    failure.message = detail::copy_message(error.what());
  } catch (const std::bad_alloc&) {
    failure.kind = detail::Failure::Kind::out_of_memory;
  } catch (const std::exception& error) {
    failure.message = detail::copy_message(error.what());
  } catch (...) {
    failure.message = "unknown exception type";
  }
  detail::raise(failure);
}

// Runs `fn` (noexcept: Postgres calls and trivial C++ only) and returns its result. A Postgres error
// inside it becomes a PostgresError thrown from here, after the PG_TRY block has been left.
template <class Fn>
auto pg_call(Fn&& fn) -> std::invoke_result_t<Fn&> {
  static_assert(std::is_nothrow_invocable_v<Fn&>, "pg_call needs a noexcept callable: see the rules above");
  using Result = std::invoke_result_t<Fn&>;
  if constexpr (std::is_void_v<Result>) {
    auto thunk = [](void* callable) noexcept { (*static_cast<std::remove_reference_t<Fn>*>(callable))(); };
    if (ErrorData* error = detail::run_catching(thunk, &fn)) throw PostgresError(error);
  } else {
    static_assert(std::is_trivially_destructible_v<Result>, "pg_call results must be plain data");
    struct Frame {
      std::remove_reference_t<Fn>* fn;
      std::optional<Result> result;
    } frame{&fn, std::nullopt};
    auto thunk = [](void* raw) noexcept {
      auto* f = static_cast<Frame*>(raw);
      f->result.emplace((*f->fn)());
    };
    if (ErrorData* error = detail::run_catching(thunk, &frame)) throw PostgresError(error);
    return *frame.result;
  }
}

}  // namespace ducto::pg
