#pragma once
// What a text index does to each word beyond splitting and lowercasing it: Qdrant's stopwords
// (words left out) and its Snowball stemmer (each word held as its stem), read from a text
// index's params and shared by every copy of them.
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace wp::engine {

class WordRules {
 public:
  /**
   * Reads a text index's "stopwords" (a language's name, or {"languages": [names], "custom":
   * [words]}; English's is NLTK's list, as Qdrant's) and "stemmer" ({"type": "snowball",
   * "language": name} or {"type": "none"}), either of them null when not given. Stopwords are
   * compared as the index's words are: lowercased (ASCII letters) when `lowercase`; and whether
   * words are folded to ASCII first (`ascii_folding`). Returns nullptr when none of these leaves
   * out or changes a word.
   * @throws wp::UserError naming `field`.stopwords or `field`.stemmer and what was expected.
   */
  static std::shared_ptr<const WordRules> parse(const nlohmann::json& stopwords,
                                                const nlohmann::json& stemmer, bool lowercase,
                                                bool ascii_folding, const std::string& field);

  /// Qdrant's ascii_folding: Latin letters with marks written as ASCII ("ação" as "acao").
  bool folds() const { return folds_; }

  bool is_stopword(std::string_view word) const { return stopwords_.count(word) != 0; }
  bool stems() const { return !language_.empty(); }
  /// `word` (UTF-8) as the stemmer's language stems it; unchanged without a stemmer.
  std::string stem(std::string word) const;

  /// The params as given, to report and store ("stopwords", "stemmer"; null when not given).
  const nlohmann::json& stopwords_json() const { return stopwords_json_; }
  const nlohmann::json& stemmer_json() const { return stemmer_json_; }

 private:
  std::set<std::string, std::less<>> stopwords_;
  std::string language_;  ///< a Snowball language; "" for none
  bool folds_ = false;
  nlohmann::json stopwords_json_, stemmer_json_;
};

/// `word` with its ASCII letters lowercased (other characters as they are), as a text index's
/// lowercase reads words.
std::string ascii_lowercased(std::string_view word);

/// The code point of the character of two to four bytes that begins at text[i] (its length in
/// `bytes`), or 0 (`bytes` 1) for any other byte: an ASCII one, a continuation, or a sequence cut
/// short.
uint32_t utf8_character_at(std::string_view text, size_t i, size_t* bytes);

/// `word` with each Latin letter that has an ASCII form written in it (ascii_folding.inc:
/// letters with marks, ligatures such as Æ or ß, fullwidth letters and digits); other characters
/// as they are.
std::string fold_to_ascii(std::string_view word);

}  // namespace wp::engine
