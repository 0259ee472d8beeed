#!/usr/bin/env bash
# scripts/build.sh [all|core|pg|fuzz]: builds ducto. Incremental, so running it again is cheap.
#   core  CMake: the core library, unit tests and benchmarks, in build/cmake
#   pg    PGXS: ducto.so, then `make install` into the PostgreSQL 15 installation (needs root)
#   fuzz  CMake with clang++-14 and -DDUCTO_FUZZ=ON: the libFuzzer targets, in build/fuzz
#   all   core, then pg (the default; fuzz is separate because it compiles everything once more)
# Expects the packages of scripts/deps.sh.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$DUCTO_ROOT"

build_core() {
  stage "build: core, unit tests, benchmarks (CMake, build/cmake)"
  cmake -S . -B build/cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo
  cmake --build build/cmake -j "$BUILD_JOBS"
}

build_pg() {
  stage "build: extension (PGXS)"
  make -j "$BUILD_JOBS" PG_CONFIG="$PG_CONFIG"
  check_own_symbols_resolved
  make install PG_CONFIG="$PG_CONFIG"
}

# A shared library may leave symbols for the server to resolve at load time, so the linker accepts
# a ducto function that is declared but never defined; CREATE EXTENSION would be the first to see
# it. Catch it here instead.
check_own_symbols_resolved() {
  local library missing
  library="$(sed -n 's/^MODULE_big *= *//p' Makefile).so"
  missing="$(nm -D -C --undefined-only "$library" | grep -E ' ducto::' || true)"
  if [[ -n "$missing" ]]; then
    printf '%s\n' "$missing" >&2
    die "$library references ducto symbols that no source defines"
  fi
}

build_fuzz() {
  stage "build: fuzz targets (clang++-14, build/fuzz)"
  CXX=clang++-14 cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDUCTO_FUZZ=ON
  cmake --build build/fuzz -j "$BUILD_JOBS" --target fuzz
}

case "${1:-all}" in
  all)
    build_core
    build_pg
    ;;
  core) build_core ;;
  pg) build_pg ;;
  fuzz) build_fuzz ;;
  *) die "usage: $0 [all|core|pg|fuzz]" ;;
esac
