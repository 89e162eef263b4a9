// The expressions structured output is written in: the JSON Schema, pattern
// and tool-call compilers build them, and Grammar turns them into the
// automata the matcher runs. Symbols are the bytes 0..255 of the output plus
// the ｜DSML｜ token, which only that token can produce (never the same text
// spelled in ordinary tokens).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace dsv4 {

inline constexpr int kDsmlSymbol = 256;  // the ｜DSML｜ token (id 128825)
inline constexpr int kSymbolCount = 257;

// A string body (what lies between the quotes of a JSON string, or a raw
// DSML string parameter) counted in Unicode characters. kJson: characters
// other than '"', '\\' and controls raw as UTF-8, or escaped (\" \\ \/ \b \f
// \n \r \t \uXXXX outside the surrogates; each escape is one character).
// kRaw: any well-formed UTF-8, no escapes.
enum class StringForm { kJson, kRaw };

class Expr {
 public:
  enum class Kind { kNever, kEmpty, kSymbols, kSeq, kAlt, kRepeat, kRule, kStringBody };

  // The language with no string at all / with only the empty string.
  static Expr Never();
  static Expr Empty();
  // One symbol in [lo, hi] (0..255 bytes, kDsmlSymbol).
  static Expr Symbols(int lo, int hi);
  static Expr Byte(uint8_t byte) { return Symbols(byte, byte); }
  // These bytes in order.
  static Expr Literal(std::string_view bytes);
  static Expr Seq(std::vector<Expr> parts);
  static Expr Alt(std::vector<Expr> options);
  // body repeated min..max times; max < 0: unbounded.
  static Expr Repeat(Expr body, int64_t min, int64_t max);
  static Expr Optional(Expr body) { return Repeat(std::move(body), 0, 1); }
  // A reference to a rule of the Grammar (recursion, shared definitions).
  static Expr Rule(int rule);
  // min..max characters (max < 0: unbounded) of a string body in `form`.
  static Expr StringBody(StringForm form, int64_t min, int64_t max);

  Kind kind() const;
  int lo() const;                      // kSymbols
  int hi() const;                      // kSymbols
  const std::vector<Expr>& items() const;  // kSeq, kAlt: the parts; kRepeat: {body}
  int64_t min() const;                 // kRepeat, kStringBody
  int64_t max() const;                 // kRepeat, kStringBody (< 0: unbounded)
  int rule() const;                    // kRule
  StringForm form() const;             // kStringBody

 private:
  struct Node;
  explicit Expr(std::shared_ptr<const Node> node) : node_(std::move(node)) {}
  std::shared_ptr<const Node> node_;
};

}  // namespace dsv4
