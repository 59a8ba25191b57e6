#pragma once
// What a text index does to each word beyond splitting and lowercasing it: Qdrant's stopwords
// (words left out) and its Snowball stemmer (each word held as its stem), read from a text
// index's params and shared by every copy of them.
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
   * compared as the index's words are: lowercased (ASCII letters) when `lowercase`. Returns
   * nullptr when neither leaves out or changes a word.
   * @throws wp::UserError naming `field`.stopwords or `field`.stemmer and what was expected.
   */
  static std::shared_ptr<const WordRules> parse(const nlohmann::json& stopwords,
                                                const nlohmann::json& stemmer, bool lowercase,
                                                const std::string& field);

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
  nlohmann::json stopwords_json_, stemmer_json_;
};

}  // namespace wp::engine
