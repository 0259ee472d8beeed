// src/pg/ledger_admin.cpp: ducto.expire_credits (the expiry sweep) and ducto.verify (every invariant of
// the ledger recomputed from the rows) (issue 3).
//
// The sweep does for a batch of accounts what every operation does lazily for its own account: it
// locks the accounts whose next_expiry_at has come (skipping those other transactions hold, so it never
// waits on a user's operation and two sweeps share the work) and posts their due expiry.
#include "pg/pg_headers.h"

#include <string>
#include <utility>
#include <vector>

#include "core/ledger/validate.h"
#include "pg/bridge.h"
#include "pg/ledger_common.h"
#include "pg/ledger_store.h"

extern "C" {
PG_FUNCTION_INFO_V1(ducto_expire_credits);
PG_FUNCTION_INFO_V1(ducto_verify);
}

namespace ducto::pg {
namespace {

// ---- expire_credits ----------------------------------------------------------------------------------

Datum expire_credits(FunctionCallInfo fcinfo) {
  const std::int32_t max_users = int32_arg(fcinfo, 0, "max_users");
  ledger::check_max_users(max_users);
  const TimestampTz now = clock_now();
  pg_call([&]() noexcept { InitMaterializedSRF(fcinfo, 0); });
  std::vector<std::pair<std::string, Micros>> swept;
  const Session session = open_session();
  for (auto& [account, user_id] : lock_due_accounts(now, max_users)) {
    pg_call([]() noexcept { CHECK_FOR_INTERRUPTS(); });
    Operation op(now, user_id, account);
    const ExpiryOutcome outcome = op.expire_due();
    op.save();
    // Accounts whose next_expiry_at was only a conservative guess had nothing due: not listed.
    if (outcome.expired > 0 || outcome.holds > 0) swept.emplace_back(std::move(user_id), -outcome.expired);
  }
  close_session(session);
  for (const auto& [user_id, expired] : swept) {
    pg_call([&]() noexcept {
      auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
      Datum values[] = {text_datum(user_id), money_datum(expired)};
      bool nulls[] = {false, false};
      tuplestore_putvalues(result->setResult, result->setDesc, values, nulls);
    });
  }
  return Datum(0);
}

// ---- verify ------------------------------------------------------------------------------------------

// An amount column in credits, for the messages.
std::string credits(const std::string& micros) {
  return "pg_catalog.round((" + micros + ") OPERATOR(pg_catalog./) 1000000.0, 6)";
}

// One statement, a UNION ALL of every check; each branch yields (user_id, problem). OPERATOR(...) has
// one precedence for every operator (left-associative), hence the parentheses.
std::string verify_sql() {
  const std::string eq = " OPERATOR(pg_catalog.=) ";
  const std::string ne = " OPERATOR(pg_catalog.<>) ";
  const std::string allocated =
      "(SELECT COALESCE(pg_catalog.sum(x.allocations[i OPERATOR(pg_catalog.+) 1]), 0) "
      "FROM pg_catalog.generate_subscripts(x.allocations, 1) AS i WHERE i OPERATOR(pg_catalog.%) 2" + eq + "1)";
  return
      // Each active hold's parts: (account, lot, micro-credits).
      "WITH hold_parts AS (SELECT h.account_id, h.allocations[i] AS lot_id, "
      "h.allocations[i OPERATOR(pg_catalog.+) 1] AS micros "
      "FROM ducto.holds AS h, pg_catalog.generate_subscripts(h.allocations, 1) AS i "
      "WHERE h.state" + eq + "'active' AND i OPERATOR(pg_catalog.%) 2" + eq + "1), "
      // Each entry with the balance_after and id of the account's previous entry in id order.
      "entries AS (SELECT l.account_id, l.id, l.amount, l.balance_after, l.prev_id, "
      "pg_catalog.lag(l.balance_after, 1, 0::bigint) OVER account_order AS before, "
      "pg_catalog.lag(l.id) OVER account_order AS previous_id FROM ducto.ledger AS l "
      "WINDOW account_order AS (PARTITION BY l.account_id ORDER BY l.id)) "
      // balance = sum of the ledger's amounts
      "SELECT a.user_id, pg_catalog.format('balance %s differs from the sum of its ledger amounts %s', " +
      credits("a.balance") + ", " + credits("COALESCE(s.total, 0)") + ") AS problem "
      "FROM ducto.accounts AS a LEFT JOIN (SELECT l.account_id, pg_catalog.sum(l.amount) AS total "
      "FROM ducto.ledger AS l GROUP BY l.account_id) AS s ON s.account_id" + eq + "a.id "
      "WHERE a.balance" + ne + "COALESCE(s.total, 0) "
      // the latest entry's balance_after = balance
      "UNION ALL SELECT a.user_id, pg_catalog.format('balance %s differs from the balance_after %s of its "
      "latest ledger entry', " + credits("a.balance") + ", " + credits("t.balance_after") + ") "
      "FROM ducto.accounts AS a JOIN (SELECT DISTINCT ON (l.account_id) l.account_id, l.balance_after "
      "FROM ducto.ledger AS l ORDER BY l.account_id, l.id DESC) AS t ON t.account_id" + eq + "a.id "
      "WHERE a.balance" + ne + "t.balance_after "
      // each entry's balance_after = the previous one's + its amount, in id order
      "UNION ALL SELECT a.user_id, pg_catalog.format('ledger entry %s: balance_after %s is not the previous "
      "balance %s plus its amount %s', c.id, " + credits("c.balance_after") + ", " + credits("c.before") + ", " +
      credits("c.amount") + ") FROM entries AS c JOIN ducto.accounts AS a ON a.id" + eq + "c.account_id "
      "WHERE c.before OPERATOR(pg_catalog.+) c.amount" + ne + "c.balance_after "
      // the chain: each entry's prev_id is the account's previous entry in id order, and
      // last_entry_id its newest
      "UNION ALL SELECT a.user_id, pg_catalog.format('ledger entry %s: prev_id %s is not the previous entry %s', "
      "c.id, COALESCE(c.prev_id::text, 'NULL'), COALESCE(c.previous_id::text, 'NULL')) "
      "FROM entries AS c JOIN ducto.accounts AS a ON a.id" + eq + "c.account_id "
      "WHERE c.prev_id IS DISTINCT FROM c.previous_id "
      "UNION ALL SELECT a.user_id, pg_catalog.format('last_entry_id %s is not the newest ledger entry %s', "
      "COALESCE(a.last_entry_id::text, 'NULL'), COALESCE(n.id::text, 'NULL')) "
      "FROM ducto.accounts AS a LEFT JOIN (SELECT DISTINCT ON (l.account_id) l.account_id, l.id "
      "FROM ducto.ledger AS l ORDER BY l.account_id, l.id DESC) AS n ON n.account_id" + eq + "a.id "
      "WHERE a.last_entry_id IS DISTINCT FROM n.id "
      // 0 <= earmarked <= remaining <= granted
      "UNION ALL SELECT a.user_id, pg_catalog.format('lot %s: granted %s, remaining %s, earmarked %s', l.id, " +
      credits("l.granted") + ", " + credits("l.remaining") + ", " + credits("l.earmarked") + ") "
      "FROM ducto.lots AS l JOIN ducto.accounts AS a ON a.id" + eq + "l.account_id "
      "WHERE NOT (l.earmarked OPERATOR(pg_catalog.>=) 0 AND l.earmarked OPERATOR(pg_catalog.<=) l.remaining "
      "AND l.remaining OPERATOR(pg_catalog.<=) l.granted) "
      // the lots' credit less the debt = balance
      "UNION ALL SELECT a.user_id, pg_catalog.format('balance %s differs from its lots'' credit %s less its debt %s', " +
      credits("a.balance") + ", " + credits("COALESCE(s.remaining, 0)") + ", " + credits("a.debt") + ") "
      "FROM ducto.accounts AS a LEFT JOIN (SELECT l.account_id, pg_catalog.sum(l.remaining) AS remaining "
      "FROM ducto.lots AS l GROUP BY l.account_id) AS s ON s.account_id" + eq + "a.id "
      "WHERE a.balance" + ne + "(COALESCE(s.remaining, 0) OPERATOR(pg_catalog.-) a.debt) "
      // refunds only of debits, and at most the debit
      "UNION ALL SELECT a.user_id, pg_catalog.format('ledger entry %s (%s of %s): refunds of %s', d.id, d.kind, " +
      credits("OPERATOR(pg_catalog.-) d.amount") + ", " + credits("r.total") + ") "
      "FROM (SELECT l.original_id, pg_catalog.sum(l.amount) AS total FROM ducto.ledger AS l "
      "WHERE l.original_id IS NOT NULL GROUP BY l.original_id) AS r "
      "JOIN ducto.ledger AS d ON d.id" + eq + "r.original_id JOIN ducto.accounts AS a ON a.id" + eq + "d.account_id "
      "WHERE NOT (d.kind" + eq + "'deduct' OR d.kind" + eq + "'charge') "
      "OR r.total OPERATOR(pg_catalog.>) (OPERATOR(pg_catalog.-) d.amount) "
      "UNION ALL SELECT NULL, pg_catalog.format('refund %s of a ledger entry %s that does not exist', l.id, "
      "l.original_id) FROM ducto.ledger AS l WHERE l.original_id IS NOT NULL AND NOT EXISTS "
      "(SELECT FROM ducto.ledger AS d WHERE d.id" + eq + "l.original_id AND d.account_id" + eq + "l.account_id) "
      // reserved = sum of active holds
      "UNION ALL SELECT a.user_id, pg_catalog.format('reserved %s differs from its active holds %s', " +
      credits("a.reserved") + ", " + credits("COALESCE(s.total, 0)") + ") "
      "FROM ducto.accounts AS a LEFT JOIN (SELECT h.account_id, pg_catalog.sum(h.amount) AS total "
      "FROM ducto.holds AS h WHERE h.state" + eq + "'active' GROUP BY h.account_id) AS s "
      "ON s.account_id" + eq + "a.id WHERE a.reserved" + ne + "COALESCE(s.total, 0) "
      // each lot's earmark = what active holds earmark in it
      "UNION ALL SELECT a.user_id, pg_catalog.format('lot %s: earmarked %s, but active holds earmark %s in it', "
      "l.id, " + credits("l.earmarked") + ", " + credits("COALESCE(p.total, 0)") + ") "
      "FROM ducto.lots AS l JOIN ducto.accounts AS a ON a.id" + eq + "l.account_id "
      "LEFT JOIN (SELECT hp.lot_id, pg_catalog.sum(hp.micros) AS total FROM hold_parts AS hp "
      "GROUP BY hp.lot_id) AS p ON p.lot_id" + eq + "l.id WHERE l.earmarked" + ne + "COALESCE(p.total, 0) "
      // allocations add up to the amount (entries) and to the hold
      "UNION ALL SELECT a.user_id, pg_catalog.format('ledger entry %s: allocations add up to %s, not %s', x.id, " +
      credits(allocated) + ", " + credits("pg_catalog.abs(x.amount)") + ") "
      "FROM ducto.ledger AS x JOIN ducto.accounts AS a ON a.id" + eq + "x.account_id "
      "WHERE " + allocated + ne + "pg_catalog.abs(x.amount) "
      "UNION ALL SELECT a.user_id, pg_catalog.format('hold %s: allocations add up to %s, not %s', x.id, " +
      credits(allocated) + ", " + credits("x.amount") + ") "
      "FROM ducto.holds AS x JOIN ducto.accounts AS a ON a.id" + eq + "x.account_id "
      "WHERE " + allocated + ne + "x.amount "
      // no negative reserve or debt
      "UNION ALL SELECT a.user_id, pg_catalog.format('reserved %s and debt %s must not be negative', " +
      credits("a.reserved") + ", " + credits("a.debt") + ") FROM ducto.accounts AS a "
      "WHERE a.reserved OPERATOR(pg_catalog.<) 0 OR a.debt OPERATOR(pg_catalog.<) 0 "
      "ORDER BY 1, 2";
}

Datum verify(FunctionCallInfo fcinfo) {
  // Built once; plain heap memory, never Postgres memory (nothing to free at exit).
  static const std::string sql = verify_sql();
  static SavedPlan plan(sql.c_str(), {});
  pg_call([&]() noexcept {
    InitMaterializedSRF(fcinfo, 0);
    auto* result = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    const SecurityState saved = become_extension_owner();
    spi_connect();
    const std::uint64_t rows = spi_run(plan, nullptr, nullptr, true, 0);
    for (std::uint64_t row = 0; row < rows; ++row) {
      Datum values[2];
      bool nulls[2];
      values[0] = spi_value(row, 1, &nulls[0]);
      values[1] = spi_value(row, 2, &nulls[1]);
      tuplestore_putvalues(result->setResult, result->setDesc, values, nulls);
    }
    spi_finish();
    restore_security(saved);
  });
  return Datum(0);
}

}  // namespace
}  // namespace ducto::pg

extern "C" {
Datum ducto_expire_credits(PG_FUNCTION_ARGS) {
  return ducto::pg::guarded([&] { return ducto::pg::expire_credits(fcinfo); });
}
Datum ducto_verify(PG_FUNCTION_ARGS) { return ducto::pg::guarded([&] { return ducto::pg::verify(fcinfo); }); }
}
