// src/core/expr/lexer.h: turns formula text into tokens (design.md, Expression language).
//
// The lexer is pulled one token at a time by the parser, so errors surface in source order. Every
// token the language accepts is ASCII and any other byte stops lexing with an error, so the 1-based
// character position of a token is its byte offset + 1.
#pragma once
#include "core/no_postgres.h"

#include <cstddef>
#include <string>
#include <string_view>

namespace ducto::expr {

enum class TokenKind {
  end,
  number,
  identifier,
  keyword_and,
  keyword_or,
  keyword_not,
  keyword_if,
  keyword_else,
  keyword_true,
  keyword_false,
  plus,
  minus,
  star,
  slash,
  slash_slash,
  percent,
  equal_equal,
  not_equal,
  less,
  less_equal,
  greater,
  greater_equal,
  left_paren,
  right_paren,
  comma,
};

struct Token {
  TokenKind kind = TokenKind::end;
  std::string_view text;  // a view into the formula; empty for `end`
  int position = 1;       // 1-based character position of the first character
};

// Throws Error(invalid_value, "<message> at <position>"): the one shape of every formula error.
[[noreturn]] void fail_at(std::string_view message, int position);

// Number of characters (UTF-8 code points; a byte that is not valid UTF-8 counts as one).
std::size_t count_characters(std::string_view text);

class Lexer {
 public:
  explicit Lexer(std::string_view source) : source_(source) {}

  // The next token; `end` once the text is exhausted (and on every later call). Throws on a
  // character or construct the language rejects (strings, `**`, `=`, `[`, `.name`, ...).
  Token next();

 private:
  Token lex_number();
  Token lex_word();
  Token lex_operator();
  Token make(TokenKind kind, std::size_t start) const;
  [[noreturn]] void fail_unexpected_character() const;

  char peek(std::size_t ahead = 0) const {
    return offset_ + ahead < source_.size() ? source_[offset_ + ahead] : '\0';
  }
  int position() const { return static_cast<int>(offset_) + 1; }

  std::string_view source_;
  std::size_t offset_ = 0;
};

}  // namespace ducto::expr
