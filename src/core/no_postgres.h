// src/core/no_postgres.h: the header firewall of the pure C++ core.
// Every file under src/core includes this first. The core must build and be unit-tested without a
// Postgres server, so a Postgres header in its include chain is a compile-time error, not a review note.
#pragma once

#if defined(PG_VERSION_NUM) || defined(POSTGRES_H)
#error "src/core is pure C++: it must not include Postgres headers (see design.md, Layers)"
#endif
