# Makefile: builds and installs the ducto extension with PGXS and runs its Postgres tests.
#   make && make install      ducto.so (src/core + src/pg), ducto.control, sql/ducto--*.sql
#   make installcheck         pg_regress on sql/ + expected/, then the isolation specs in test/isolation/
# Source and test lists are wildcards: adding a file never requires editing this Makefile.
# The pure C++ core is also built by CMakeLists.txt (unit tests, benchmarks, fuzzers).
# Comments stay on their own lines: a trailing comment would leave spaces in a variable's value.

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config

MODULE_big = ducto
EXTENSION  = ducto

CORE_SRCS := $(sort $(shell find src/core -name '*.cpp' 2>/dev/null))
PG_SRCS   := $(sort $(wildcard src/pg/*.cpp))
OBJS      := $(CORE_SRCS:.cpp=.o) $(PG_SRCS:.cpp=.o)

# Install scripts are sql/ducto--*.sql; every other sql/*.sql is a pg_regress test.
# ':=' matters: PGXS tests these lists with ifdef, which is false only for an empty simple variable.
DATA      := $(sort $(wildcard sql/ducto--*.sql))
REGRESS   := $(filter-out ducto--%,$(basename $(notdir $(sort $(wildcard sql/*.sql)))))
REGRESS_OPTS = --inputdir=.

# Specs live in test/isolation/specs/, expected output in test/isolation/expected/.
ISOLATION := $(basename $(notdir $(sort $(wildcard test/isolation/specs/*.spec))))
ISOLATION_OPTS = --inputdir=test/isolation

# -isystem silences the warnings inside Postgres headers (register, unused parameters).
PG_CPPFLAGS = -I$(srcdir)/src -isystem $(includedir_server)
# -MMD -MP: header dependencies, which PGXS does not track on Debian (no autodepend).
# Not -fvisibility=hidden: in PG 15 PG_FUNCTION_INFO_V1 does not mark the function itself
# as exported, so hidden visibility would hide every SQL entry point.
PG_CXXFLAGS = -std=c++20 -Wall -Wextra -Werror -fvisibility-inlines-hidden -MMD -MP
# The .so is linked by gcc, not g++, so the C++ runtime must be named.
SHLIB_LINK = -lstdc++
# No LLVM bitcode: PGXS compiles it with clang-14 without PG_CXXFLAGS (C++14, fails on our code).
override with_llvm = no

EXTRA_CLEAN = $(OBJS:.o=.d) results/ output_iso/ regression.diffs regression.out log/ tmp_check/

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

-include $(OBJS:.o=.d)

# Relink when the object list changes (a source removed or renamed): Makefile.global declares
# everything .SECONDARY, so a missing object file alone does not make PGXS relink the .so.
OBJS_LIST := build/pgxs-objects.txt
$(shell mkdir -p build && (echo '$(OBJS)' | cmp -s - $(OBJS_LIST) || echo '$(OBJS)' > $(OBJS_LIST)))
$(MODULE_big)$(DLSUFFIX): $(OBJS_LIST)
