// test/unit/ledger_test.cpp: the pure C++ half of the credit ledger (src/core/ledger): argument checks,
// micro-credit arithmetic and the floor, lot plans (debits, holds, settling, refunds, expiry),
// refusal decisions, request bytes and UUIDv7 ids.
#include "core/no_postgres.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "core/decimal.h"
#include "core/error.h"
#include "core/ledger/lots.h"
#include "core/ledger/money.h"
#include "core/ledger/request.h"
#include "core/ledger/rules.h"
#include "core/ledger/uuid.h"
#include "core/ledger/validate.h"

namespace ducto::ledger {
namespace {

// Passes when `action` throws ducto::Error with exactly this code and message.
template <typename Action>
testing::AssertionResult Throws(Action&& action, Errc code, const std::string& message) {
  try {
    action();
  } catch (const Error& error) {
    if (error.code() != code || message != error.what()) {
      return testing::AssertionFailure() << "threw " << sqlstate(error.code()) << " \"" << error.what()
                                         << "\", expected " << sqlstate(code) << " \"" << message << "\"";
    }
    return testing::AssertionSuccess();
  }
  return testing::AssertionFailure() << "did not throw";
}

template <typename Action>
testing::AssertionResult Invalid(Action&& action, const std::string& message) {
  return Throws(action, Errc::invalid_value, message);
}

constexpr Micros C(std::int64_t credits) { return credits * kMicrosPerCredit; }

// ---------------------------------------------------------------- amounts

TEST(LedgerAmount, ParsesNumericTextToMicros) {
  EXPECT_EQ(parse_amount("1"), 1'000'000);
  EXPECT_EQ(parse_amount("12.5"), 12'500'000);
  EXPECT_EQ(parse_amount("0.000001"), 1);
  EXPECT_EQ(parse_amount("1.5000000"), 1'500'000);  // trailing zeros past the 6th place are fine
  EXPECT_EQ(parse_amount("007.10"), 7'100'000);
  EXPECT_EQ(parse_amount("999999999999.999999"), kAmountLimit - 1);
}

TEST(LedgerAmount, RefusesWhatIsNotAValidAmount) {
  EXPECT_TRUE(Invalid([] { parse_amount("0"); }, "amount must be positive"));
  EXPECT_TRUE(Invalid([] { parse_amount("0.000000"); }, "amount must be positive"));
  EXPECT_TRUE(Invalid([] { parse_amount("-1"); }, "amount must be positive"));
  EXPECT_TRUE(Invalid([] { parse_amount("-0.0000001"); }, "amount must be positive"));
  EXPECT_TRUE(Invalid([] { parse_amount("1000000000000"); }, "amount must be below 1000000000000"));
  EXPECT_TRUE(Invalid([] { parse_amount("99999999999999999999"); }, "amount must be below 1000000000000"));
  EXPECT_TRUE(Invalid([] { parse_amount("1.0000001"); }, "amount has more than 6 decimal places"));
  EXPECT_TRUE(Invalid([] { parse_amount("0.0000001"); }, "amount has more than 6 decimal places"));
  EXPECT_TRUE(Invalid([] { parse_amount("NaN"); }, "amount must be a finite number"));
  EXPECT_TRUE(Invalid([] { parse_amount("Infinity"); }, "amount must be a finite number"));
  EXPECT_TRUE(Invalid([] { parse_amount("-Infinity"); }, "amount must be a finite number"));
  EXPECT_TRUE(Invalid([] { parse_amount(""); }, "amount must be a number"));
  EXPECT_TRUE(Invalid([] { parse_amount("1e3"); }, "amount must be a number"));
  EXPECT_TRUE(Invalid([] { parse_amount("."); }, "amount must be a number"));
}

TEST(LedgerMoney, CheckedArithmeticRefusesOverflow) {
  constexpr Micros kMax = std::numeric_limits<Micros>::max();
  EXPECT_EQ(checked_add(C(2), -C(5)), -C(3));
  EXPECT_EQ(checked_sub(C(2), C(5)), -C(3));
  EXPECT_TRUE(Throws([] { checked_add(kMax, 1); }, Errc::out_of_range, "credit total out of range"));
  EXPECT_TRUE(Throws([] { checked_sub(-kMax, 2); }, Errc::out_of_range, "credit total out of range"));
}

TEST(LedgerMoney, FloorIsRoundedUpAndClamped) {
  EXPECT_EQ(floor_micros(Decimal(0)), 0);
  EXPECT_EQ(floor_micros(Decimal::parse("5")), C(5));
  EXPECT_EQ(floor_micros(Decimal::parse("-2.5")), -2'500'000);
  EXPECT_EQ(floor_micros(Decimal::parse("0.0000001")), 1);
  EXPECT_EQ(floor_micros(Decimal::parse("-0.0000019")), -1);
  EXPECT_EQ(floor_micros(Decimal::parse("1e20")), std::numeric_limits<Micros>::max());
  EXPECT_EQ(floor_micros(Decimal::parse("-1e20")), std::numeric_limits<Micros>::min());
}

TEST(LedgerMoney, FloorAllowsExactlyDownToTheFloor) {
  EXPECT_TRUE(floor_allows(C(30), C(0), C(25), C(5)));
  EXPECT_FALSE(floor_allows(C(30), C(0), C(25) + 1, C(5)));
  EXPECT_TRUE(floor_allows(C(30), C(10), C(20), 0));
  EXPECT_FALSE(floor_allows(C(30), C(10), C(21), 0));
  EXPECT_TRUE(floor_allows(0, 0, C(7), -C(7)));  // a negative floor allows overdraft
  EXPECT_FALSE(floor_allows(0, 0, C(8), -C(7)));
  constexpr Micros kMin = std::numeric_limits<Micros>::min();
  EXPECT_FALSE(floor_allows(kMin, std::numeric_limits<Micros>::max(), C(1), 0));  // no overflow
}

TEST(LedgerMoney, FormatsSixPlaces) {
  EXPECT_EQ(format_micros(0), "0.000000");
  EXPECT_EQ(format_micros(-12'500'000), "-12.500000");
  EXPECT_EQ(format_micros(1), "0.000001");
  EXPECT_EQ(format_micros(std::numeric_limits<Micros>::min()), "-9223372036854.775808");
}

// ---------------------------------------------------------------- other arguments

TEST(LedgerValidate, UserIds) {
  EXPECT_NO_THROW(check_user_id("alice"));
  EXPECT_NO_THROW(check_user_id(std::string(255, 'a')));
  EXPECT_NO_THROW(check_user_id(std::string(255, 'a').replace(0, 1, "\xc3\xa9")));  // 255 characters, 256 bytes
  EXPECT_NO_THROW(check_user_id("a b"));
  EXPECT_TRUE(Invalid([] { check_user_id(""); }, "user_id must be 1 to 255 characters"));
  EXPECT_TRUE(Invalid([] { check_user_id(std::string(256, 'a')); }, "user_id must be 1 to 255 characters"));
  EXPECT_TRUE(Invalid([] { check_user_id("a\tb"); }, "user_id must not contain control characters"));
  EXPECT_TRUE(Invalid([] { check_user_id(std::string("a\0b", 3)); }, "user_id must not contain control characters"));
  EXPECT_TRUE(Invalid([] { check_user_id("a\x7f"); }, "user_id must not contain control characters"));
  EXPECT_TRUE(Invalid([] { check_user_id("a\xc2\x85"); }, "user_id must not contain control characters"));
  EXPECT_TRUE(Invalid([] { check_user_id(" alice"); }, "user_id must not begin or end with white space"));
  EXPECT_TRUE(Invalid([] { check_user_id("alice "); }, "user_id must not begin or end with white space"));
  EXPECT_TRUE(Invalid([] { check_user_id("alice\xe3\x80\x80"); }, "user_id must not begin or end with white space"));
  EXPECT_TRUE(Invalid([] { check_user_id("\xc2\xa0" "alice"); }, "user_id must not begin or end with white space"));
}

TEST(LedgerValidate, KeysLabelsReasons) {
  EXPECT_NO_THROW(check_idempotency_key("job-42:deduct"));
  EXPECT_NO_THROW(check_idempotency_key(" spaces and\ttabs are fine "));
  EXPECT_TRUE(Invalid([] { check_idempotency_key(""); }, "idempotency_key must be 1 to 255 characters"));
  EXPECT_TRUE(Invalid([] { check_idempotency_key(std::string(256, 'k')); },
                      "idempotency_key must be 1 to 255 characters"));
  EXPECT_TRUE(Invalid([] { check_label("", "source"); }, "source must be 1 to 255 characters"));
  EXPECT_NO_THROW(check_reason(""));
  EXPECT_NO_THROW(check_reason(std::string(1000, 'r')));
  EXPECT_TRUE(Invalid([] { check_reason(std::string(1001, 'r')); }, "reason must be at most 1000 characters"));
}

TEST(LedgerValidate, TtlIsPositiveAtMostSevenDaysWithoutMonths) {
  EXPECT_EQ(ttl_micros(0, 0, 600'000'000), 600'000'000);
  EXPECT_EQ(ttl_micros(0, 7, 0), kMaxTtlMicros);
  EXPECT_EQ(ttl_micros(0, 8, -kMicrosPerDay), kMaxTtlMicros);  // '8 days -24 hours'
  const std::string message = "ttl must be positive and at most 7 days";
  EXPECT_TRUE(Invalid([] { ttl_micros(0, 0, 0); }, message));
  EXPECT_TRUE(Invalid([] { ttl_micros(0, 0, -1); }, message));
  EXPECT_TRUE(Invalid([] { ttl_micros(0, 7, 1); }, message));
  EXPECT_TRUE(Invalid([] { ttl_micros(1, 0, 0); }, message));
  EXPECT_TRUE(Invalid([] { ttl_micros(-1, 40, 0); }, message));
  EXPECT_TRUE(Invalid([] { ttl_micros(0, std::numeric_limits<std::int32_t>::max(), std::numeric_limits<std::int64_t>::max()); },
                      message));
}

TEST(LedgerValidate, MetadataExpiryAndLimits) {
  EXPECT_NO_THROW(check_metadata(true, kMaxMetadataBytes));
  EXPECT_TRUE(Invalid([] { check_metadata(true, kMaxMetadataBytes + 1); },
                      "metadata must be a JSON object of at most 16 kB"));
  EXPECT_TRUE(Invalid([] { check_metadata(false, 2); }, "metadata must be a JSON object of at most 16 kB"));
  EXPECT_NO_THROW(check_expires_at(101, 100));
  EXPECT_TRUE(Invalid([] { check_expires_at(100, 100); }, "expires_at must be in the future"));
  EXPECT_NO_THROW(check_max_rows(1));
  EXPECT_NO_THROW(check_max_rows(1000));
  EXPECT_TRUE(Invalid([] { check_max_rows(0); }, "max_rows must be between 1 and 1000"));
  EXPECT_TRUE(Invalid([] { check_max_rows(1001); }, "max_rows must be between 1 and 1000"));
  EXPECT_TRUE(Invalid([] { check_max_users(0); }, "max_users must be positive"));
}

// ---------------------------------------------------------------- lots

constexpr std::int64_t kNow = 1'000'000;

Lot lot(std::int64_t id, Micros remaining, Micros earmarked = 0, std::optional<std::int64_t> expires_at = {}) {
  return Lot{id, remaining, earmarked, expires_at};
}

LotBook book_of(std::initializer_list<Lot> lots) {
  LotBook book;
  for (const Lot& l : lots) book.add(l);
  return book;
}

TEST(LedgerLots, DebitTakesFreeCreditInTheGivenOrder) {
  LotBook book = book_of({lot(1, C(5)), lot(2, C(10), C(4)), lot(3, C(10))});
  const std::vector<std::int64_t> order = {1, 2, 3};
  EXPECT_EQ(take_in_order(book, order, C(14)), (std::vector<Part>{{1, C(5)}, {2, C(6)}, {3, C(3)}}));
  EXPECT_EQ(book.changed(), (std::vector<Lot>{lot(1, 0), lot(2, C(4), C(4)), lot(3, C(7))}));
}

TEST(LedgerLots, ShortfallBecomesOneOverdraftPart) {
  LotBook book = book_of({lot(1, C(5))});
  const std::vector<std::int64_t> order = {1};
  const std::vector<Part> parts = take_in_order(book, order, C(8));
  EXPECT_EQ(parts, (std::vector<Part>{{1, C(5)}, {kOverdraft, C(3)}}));
  EXPECT_EQ(overdraft_of(parts), C(3));
  EXPECT_EQ(total_of(parts), C(8));
}

TEST(LedgerLots, ZeroAmountTouchesNothing) {
  LotBook book = book_of({lot(1, C(5))});
  const std::vector<std::int64_t> order = {1};
  EXPECT_TRUE(take_in_order(book, order, 0).empty());
  EXPECT_TRUE(book.changed().empty());
}

TEST(LedgerLots, AddingALotTwiceKeepsItsCurrentState) {
  LotBook book = book_of({lot(1, C(5))});
  EXPECT_EQ(book.take_free(1, C(2)), C(2));
  book.add(lot(1, C(5)));
  EXPECT_EQ(book.lot(1).remaining, C(3));
  EXPECT_EQ(book.lots().size(), 1u);
  EXPECT_TRUE(Invalid([&] { book.lot(9); }, "internal ledger error: lot 9 was not read"));
}

TEST(LedgerHolds, EarmarkThenReleaseRestoresTheLots) {
  LotBook book = book_of({lot(1, C(5)), lot(2, C(10))});
  const std::vector<std::int64_t> order = {1, 2};
  const std::vector<Part> hold = earmark_in_order(book, order, C(7));
  EXPECT_EQ(hold, (std::vector<Part>{{1, C(5)}, {2, C(2)}}));
  EXPECT_EQ(book.lot(1), lot(1, C(5), C(5)));
  // A second debit sees only the unearmarked credit.
  EXPECT_EQ(take_in_order(book, order, C(9)), (std::vector<Part>{{2, C(8)}, {kOverdraft, C(1)}}));
  release_hold(book, hold);
  EXPECT_EQ(book.lot(1), lot(1, C(5)));
  EXPECT_EQ(book.lot(2), lot(2, C(2)));
}

TEST(LedgerHolds, SettleLessReturnsTheRest) {
  LotBook book = book_of({lot(1, C(5), C(5)), lot(2, C(10), C(2))});  // the hold: 5 from lot 1, 2 from lot 2
  const std::vector<Part> hold = {{1, C(5)}, {2, C(2)}};
  const std::vector<std::int64_t> order = {2};
  EXPECT_EQ(settle_hold(book, hold, C(6), order), (std::vector<Part>{{1, C(5)}, {2, C(1)}}));
  EXPECT_EQ(book.changed(), (std::vector<Lot>{lot(1, 0), lot(2, C(9))}));
}

TEST(LedgerHolds, SettleExactAndMore) {
  {
    LotBook book = book_of({lot(1, C(5), C(5)), lot(2, C(10))});
    const std::vector<Part> hold = {{1, C(5)}};
    const std::vector<std::int64_t> order = {2};
    EXPECT_EQ(settle_hold(book, hold, C(5), order), (std::vector<Part>{{1, C(5)}}));
    EXPECT_EQ(book.changed(), (std::vector<Lot>{lot(1, 0)}));
  }
  {
    // More than the hold: the excess comes from free credit, the same lot included.
    LotBook book = book_of({lot(1, C(8), C(5)), lot(2, C(10))});
    const std::vector<Part> hold = {{1, C(5)}};
    const std::vector<std::int64_t> order = {1, 2};
    EXPECT_EQ(settle_hold(book, hold, C(12), order), (std::vector<Part>{{1, C(5)}, {1, C(3)}, {2, C(4)}}));
    EXPECT_EQ(book.changed(), (std::vector<Lot>{lot(1, 0), lot(2, C(6))}));
  }
}

TEST(LedgerHolds, SettleSpendsAnOverdraftPartLast) {
  LotBook book = book_of({lot(1, C(3), C(3))});
  const std::vector<Part> hold = {{1, C(3)}, {kOverdraft, C(4)}};
  const std::vector<Part> parts = settle_hold(book, hold, C(5), {});
  EXPECT_EQ(parts, (std::vector<Part>{{1, C(3)}, {kOverdraft, C(2)}}));
  EXPECT_EQ(overdraft_of(parts), C(2));
  EXPECT_EQ(book.lot(1), lot(1, 0));
}

TEST(LedgerHolds, SettleFromAnExpiredLotThenExpireTheReturnedRest) {
  // The hold earmarked 5 of a lot that has expired since: the settle still spends it, and what the
  // settle returns to the expired lot expires at once.
  LotBook book = book_of({lot(1, C(5), C(5), kNow - 1)});
  const std::vector<Part> hold = {{1, C(5)}};
  EXPECT_EQ(settle_hold(book, hold, C(2), {}), (std::vector<Part>{{1, C(2)}}));
  EXPECT_EQ(expire_due(book, kNow), (std::vector<Part>{{1, C(3)}}));
  EXPECT_EQ(book.lot(1), lot(1, 0, 0, kNow - 1));
}

// ---------------------------------------------------------------- refunds

TEST(LedgerRefunds, NewestAllocationFirstSkippingEarlierRefunds) {
  const std::vector<Part> debit = {{1, C(5)}, {2, C(6)}, {3, C(3)}};
  EXPECT_EQ(restoration_parts(debit, 0, C(4)), (std::vector<Part>{{3, C(3)}, {2, C(1)}}));
  EXPECT_EQ(restoration_parts(debit, C(4), C(6)), (std::vector<Part>{{2, C(5)}, {1, C(1)}}));
  EXPECT_EQ(restoration_parts(debit, C(10), C(4)), (std::vector<Part>{{1, C(4)}}));
  EXPECT_EQ(restoration_parts(debit, 0, C(14)), (std::vector<Part>{{3, C(3)}, {2, C(6)}, {1, C(5)}}));
  EXPECT_TRUE(Invalid([&] { restoration_parts(debit, C(10), C(5)); }, "internal ledger error: a refund beyond its debit"));
}

TEST(LedgerRefunds, OverdraftIsRestoredFirstAndRepaysDebt) {
  const std::vector<Part> debit = {{1, C(5)}, {kOverdraft, C(3)}};
  EXPECT_EQ(restoration_parts(debit, 0, C(4)), (std::vector<Part>{{kOverdraft, C(3)}, {1, C(1)}}));
  EXPECT_EQ(restore_overdraft(C(3), C(3)).repaid, C(3));
  const OverdraftRestoration partly = restore_overdraft(C(1), C(3));  // a grant repaid 2 meanwhile
  EXPECT_EQ(partly.repaid, C(1));
  EXPECT_EQ(partly.new_lot, C(2));
  EXPECT_EQ(debt_repaid_by_grant(C(3), C(10)), C(3));
  EXPECT_EQ(debt_repaid_by_grant(C(3), C(2)), C(2));
  EXPECT_EQ(debt_repaid_by_grant(0, C(2)), 0);
}

TEST(LedgerRefunds, RestoringIntoAnExpiredLotExpiresAtOnce) {
  LotBook book = book_of({lot(1, 0, 0, kNow - 1), lot(2, C(1), 0, kNow + 10)});
  const std::vector<Part> restored = {{2, C(2)}, {1, C(3)}};
  restore_lots(book, restored);
  EXPECT_EQ(expire_due(book, kNow), (std::vector<Part>{{1, C(3)}}));
  // Lot 1 ends as it began (nothing to write back); the expiry row still records the 3 that passed through.
  EXPECT_EQ(book.changed(), (std::vector<Lot>{lot(2, C(3), 0, kNow + 10)}));
  EXPECT_EQ(next_expiry(book, kNow), kNow + 10);
}

// ---------------------------------------------------------------- expiry

TEST(LedgerExpiry, ExpiresOnlyFreeCreditOfExpiredLots) {
  LotBook book = book_of({lot(1, C(10), C(4), kNow), lot(2, C(10), 0, kNow + 1), lot(3, C(5), C(5), kNow - 5),
                          lot(4, C(2))});
  EXPECT_EQ(expire_due(book, kNow), (std::vector<Part>{{1, C(6)}}));  // usable while now < expires_at
  EXPECT_EQ(book.lot(1), lot(1, C(4), C(4), kNow));
  EXPECT_EQ(next_expiry(book, kNow), kNow + 1);
  // The hold on lot 3 ends: its earmark is then free credit of an expired lot, and expires.
  release_hold(book, std::vector<Part>{{3, C(5)}});
  EXPECT_EQ(expire_due(book, kNow), (std::vector<Part>{{3, C(5)}}));
}

TEST(LedgerExpiry, Earliest) {
  EXPECT_EQ(earliest(std::nullopt, std::nullopt), std::nullopt);
  EXPECT_EQ(earliest(5, std::nullopt), 5);
  EXPECT_EQ(earliest(std::nullopt, 7), 7);
  EXPECT_EQ(earliest(9, 7), 7);
}

// ---------------------------------------------------------------- rules

TEST(LedgerRules, Codes) {
  EXPECT_EQ(code_of(Rejection::insufficient_credits), "insufficient_credits");
  EXPECT_EQ(code_of(Rejection::nothing_to_refund), "nothing_to_refund");
  EXPECT_EQ(name_of(HoldState::released), "released");
  EXPECT_EQ(hold_state_named("expired"), HoldState::expired);
  EXPECT_EQ(entry_kind_named("charge"), EntryKind::charge);
  EXPECT_EQ(name_of(EntryKind::grant), "grant");
  EXPECT_TRUE(Invalid([] { hold_state_named("gone"); }, "internal ledger error: unknown hold state \"gone\""));
}

TEST(LedgerRules, HoldRefusals) {
  EXPECT_EQ(settle_refusal(HoldState::active, false), std::nullopt);
  EXPECT_EQ(settle_refusal(HoldState::active, true), Rejection::reservation_expired);
  EXPECT_EQ(settle_refusal(HoldState::settled, false), Rejection::reservation_settled);
  EXPECT_EQ(settle_refusal(HoldState::released, true), Rejection::reservation_settled);
  EXPECT_EQ(settle_refusal(HoldState::expired, false), Rejection::reservation_expired);
  EXPECT_EQ(release_refusal(HoldState::active, false), std::nullopt);
  EXPECT_EQ(release_refusal(HoldState::active, true), Rejection::reservation_expired);
  EXPECT_EQ(release_refusal(HoldState::released, true), std::nullopt);
  EXPECT_EQ(release_refusal(HoldState::settled, false), Rejection::reservation_settled);
  EXPECT_EQ(release_refusal(HoldState::expired, false), Rejection::reservation_expired);
}

TEST(LedgerRules, RefundAmounts) {
  using Result = std::variant<Micros, Rejection>;
  EXPECT_EQ(refund_amount(EntryKind::grant, C(10), 0, std::nullopt), Result(Rejection::not_refundable));
  EXPECT_EQ(refund_amount(EntryKind::refund, C(10), 0, C(1)), Result(Rejection::not_refundable));
  EXPECT_EQ(refund_amount(EntryKind::expiry, C(10), 0, C(1)), Result(Rejection::not_refundable));
  EXPECT_EQ(refund_amount(EntryKind::deduct, C(10), C(4), std::nullopt), Result(C(6)));
  EXPECT_EQ(refund_amount(EntryKind::charge, C(10), C(4), C(6)), Result(C(6)));
  EXPECT_EQ(refund_amount(EntryKind::charge, C(10), C(4), C(6) + 1), Result(Rejection::refund_exceeds_original));
  EXPECT_EQ(refund_amount(EntryKind::deduct, C(10), C(10), C(1)), Result(Rejection::nothing_to_refund));
  EXPECT_EQ(refund_amount(EntryKind::charge, 0, 0, std::nullopt), Result(Rejection::nothing_to_refund));
}

// ---------------------------------------------------------------- request bytes

TEST(LedgerRequest, FieldsAreUnambiguous) {
  const auto bytes = [](std::optional<std::string_view> a, std::optional<std::string_view> b) {
    return RequestBytes("op").text(a).text(b).bytes();
  };
  EXPECT_EQ(bytes("ab", "c"), bytes("ab", "c"));
  EXPECT_NE(bytes("ab", "c"), bytes("a", "bc"));
  EXPECT_NE(bytes(std::nullopt, "c"), bytes("", "c"));
  EXPECT_NE(RequestBytes("add").text("x").bytes(), RequestBytes("deduct").text("x").bytes());
  EXPECT_NE(RequestBytes("op").integer(1).bytes(), RequestBytes("op").integer(2).bytes());
  EXPECT_NE(RequestBytes("op").integer(std::nullopt).bytes(), RequestBytes("op").integer(0).bytes());
  EXPECT_EQ(RequestBytes("op").integer(258).bytes(), std::string("\x01\0\0\0\0\0\0\0\x02op\x02\0\0\0\0\0\0\x01\x02", 20));
}

// ---------------------------------------------------------------- uuids

TEST(LedgerUuid, Version7Layout) {
  // 2024-01-01T00:00:00.000500Z: 1704067200000 ms, 500 us into the millisecond.
  const Uuid uuid = uuid_v7(1'704'067'200'000, sub_ms_fraction(500), 0x3FFF'FFFF'FFFF'FFFF);
  EXPECT_EQ(to_string(uuid), "018cc251-f400-7800-bfff-ffffffffffff");
  EXPECT_EQ(sub_ms_fraction(0), 0);
  EXPECT_EQ(sub_ms_fraction(999), 4091);
  EXPECT_EQ(to_string(uuid_v7(1, 0, 0)), "00000000-0001-7000-8000-000000000000");
}

TEST(LedgerUuid, AfterIsStrictlyLater) {
  const Uuid early = uuid_v7(1000, 5, 77);
  const Uuid late = uuid_v7(2000, 0, 1);
  EXPECT_EQ(uuid_after(late, early), late);
  EXPECT_EQ(uuid_after(early, late), uuid_v7(2000, 0, 2));
  EXPECT_EQ(uuid_after(early, early), uuid_v7(1000, 5, 78));
  EXPECT_EQ(uuid_after(early, uuid_v7(1000, 5, 0x3FFF'FFFF'FFFF'FFFF)), uuid_v7(1000, 6, 0));
  EXPECT_EQ(uuid_after(early, uuid_v7(1000, 0xFFF, 0x3FFF'FFFF'FFFF'FFFF)), uuid_v7(1001, 0, 0));
  EXPECT_GT(uuid_after(early, late), late);
}

}  // namespace
}  // namespace ducto::ledger
