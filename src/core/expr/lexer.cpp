// src/core/expr/lexer.cpp: the formula tokenizer and the error helper shared by the expression code.
#include "core/no_postgres.h"

#include "core/expr/lexer.h"

#include <array>
#include <utility>

#include "core/error.h"

namespace ducto::expr {

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_word_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_word_char(char c) { return is_word_start(c) || is_digit(c); }
bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Length of the well-formed UTF-8 sequence starting at text[offset], or 1 for a byte that does not
// start one (so malformed input still advances and counts as one character each).
std::size_t utf8_sequence_length(std::string_view text, std::size_t offset) {
  const auto lead = static_cast<unsigned char>(text[offset]);
  std::size_t length = 0;
  if (lead < 0x80) return 1;
  if (lead >= 0xC2 && lead <= 0xDF) length = 2;
  else if (lead >= 0xE0 && lead <= 0xEF) length = 3;
  else if (lead >= 0xF0 && lead <= 0xF4) length = 4;
  else return 1;
  if (offset + length > text.size()) return 1;
  // The second byte's range excludes overlong forms, surrogates and code points past U+10FFFF.
  const auto second = static_cast<unsigned char>(text[offset + 1]);
  const unsigned char low = lead == 0xE0 ? 0xA0 : (lead == 0xF0 ? 0x90 : 0x80);
  const unsigned char high = lead == 0xED ? 0x9F : (lead == 0xF4 ? 0x8F : 0xBF);
  if (second < low || second > high) return 1;
  for (std::size_t i = 2; i < length; ++i)
    if ((static_cast<unsigned char>(text[offset + i]) & 0xC0) != 0x80) return 1;
  return length;
}

constexpr std::array<std::pair<std::string_view, TokenKind>, 7> kKeywords = {{
    {"and", TokenKind::keyword_and},
    {"or", TokenKind::keyword_or},
    {"not", TokenKind::keyword_not},
    {"if", TokenKind::keyword_if},
    {"else", TokenKind::keyword_else},
    {"true", TokenKind::keyword_true},
    {"false", TokenKind::keyword_false},
}};

}  // namespace

void fail_at(std::string_view message, int position) {
  std::string text(message);
  text += " at ";
  text += std::to_string(position);
  throw Error(Errc::invalid_value, text);
}

std::size_t count_characters(std::string_view text) {
  std::size_t count = 0;
  for (std::size_t offset = 0; offset < text.size(); offset += utf8_sequence_length(text, offset)) ++count;
  return count;
}

Token Lexer::next() {
  while (offset_ < source_.size() && is_space(source_[offset_])) ++offset_;
  if (offset_ >= source_.size()) return make(TokenKind::end, offset_);
  const char c = peek();
  if (is_digit(c) || (c == '.' && is_digit(peek(1)))) return lex_number();
  if (is_word_start(c)) return lex_word();
  return lex_operator();
}

Token Lexer::make(TokenKind kind, std::size_t start) const {
  return Token{kind, source_.substr(start, offset_ - start), static_cast<int>(start) + 1};
}

// digits [. digits] [e [+-] digits], or . digits [exponent]. The exponent is only taken when a digit
// follows, so `2e` is the number 2 followed by the name e (and then a syntax error).
Token Lexer::lex_number() {
  const std::size_t start = offset_;
  while (is_digit(peek())) ++offset_;
  if (peek() == '.') {
    ++offset_;
    while (is_digit(peek())) ++offset_;
  }
  if (peek() == 'e' || peek() == 'E') {
    const std::size_t sign = (peek(1) == '+' || peek(1) == '-') ? 1 : 0;
    if (is_digit(peek(1 + sign))) {
      offset_ += 1 + sign;
      while (is_digit(peek())) ++offset_;
    }
  }
  return make(TokenKind::number, start);
}

Token Lexer::lex_word() {
  const std::size_t start = offset_;
  while (is_word_char(peek())) ++offset_;
  const std::string_view word = source_.substr(start, offset_ - start);
  for (const auto& [keyword, kind] : kKeywords)
    if (word == keyword) return make(kind, start);
  return make(TokenKind::identifier, start);
}

Token Lexer::lex_operator() {
  const std::size_t start = offset_;
  const char c = peek();
  const char following = peek(1);
  const auto single = [&](TokenKind kind) {
    offset_ += 1;
    return make(kind, start);
  };
  const auto pair = [&](TokenKind kind) {
    offset_ += 2;
    return make(kind, start);
  };
  switch (c) {
    case '+': return single(TokenKind::plus);
    case '-': return single(TokenKind::minus);
    case '%': return single(TokenKind::percent);
    case '(': return single(TokenKind::left_paren);
    case ')': return single(TokenKind::right_paren);
    case ',': return single(TokenKind::comma);
    case '*':
      if (following == '*') fail_at("the ** operator is not supported", position());
      return single(TokenKind::star);
    case '/': return following == '/' ? pair(TokenKind::slash_slash) : single(TokenKind::slash);
    case '<': return following == '=' ? pair(TokenKind::less_equal) : single(TokenKind::less);
    case '>': return following == '=' ? pair(TokenKind::greater_equal) : single(TokenKind::greater);
    case '=':
      if (following == '=') return pair(TokenKind::equal_equal);
      fail_at("assignment is not supported", position());
    case '!':
      if (following == '=') return pair(TokenKind::not_equal);
      break;
    case ':':
      if (following == '=') fail_at("assignment is not supported", position());
      break;
    case '"':
    case '\'': fail_at("strings are not supported", position());
    case '[': fail_at("subscripts are not supported", position());
    case '.': fail_at("attributes are not supported", position());
    default: break;
  }
  fail_unexpected_character();
}

// Quotes the offending character; control characters and malformed UTF-8 are shown as \xNN so the
// message itself stays printable, valid UTF-8.
void Lexer::fail_unexpected_character() const {
  const auto byte = static_cast<unsigned char>(peek());
  const std::size_t length = utf8_sequence_length(source_, offset_);
  std::string shown;
  if (byte < 0x20 || byte == 0x7F || (byte >= 0x80 && length == 1)) {
    constexpr std::string_view kHex = "0123456789ABCDEF";
    shown = {'\\', 'x', kHex[byte >> 4], kHex[byte & 0xF]};
  } else {
    shown = source_.substr(offset_, length);
  }
  fail_at("unexpected character \"" + shown + "\"", position());
}

}  // namespace ducto::expr
