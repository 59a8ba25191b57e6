#include "engine/word_rules.h"

#include <libstemmer.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <iterator>
#include <map>

#include "engine/json_value.h"
#include "index/error.h"

namespace wp::engine {

namespace {

using nlohmann::json;

/// NLTK's English stopwords, Qdrant's list for "english" (179 words).
constexpr const char* kEnglish[] = {
    "i",         "me",        "my",         "myself",  "we",      "our",     "ours",
    "ourselves", "you",       "you're",     "you've",  "you'll",  "you'd",   "your",
    "yours",     "yourself",  "yourselves", "he",      "him",     "his",     "himself",
    "she",       "she's",     "her",        "hers",    "herself", "it",      "it's",
    "its",       "itself",    "they",       "them",    "their",   "theirs",  "themselves",
    "what",      "which",     "who",        "whom",    "this",    "that",    "that'll",
    "these",     "those",     "am",         "is",      "are",     "was",     "were",
    "be",        "been",      "being",      "have",    "has",     "had",     "having",
    "do",        "does",      "did",        "doing",   "a",       "an",      "the",
    "and",       "but",       "if",         "or",      "because", "as",      "until",
    "while",     "of",        "at",         "by",      "for",     "with",    "about",
    "against",   "between",   "into",       "through", "during",  "before",  "after",
    "above",     "below",     "to",         "from",    "up",      "down",    "in",
    "out",       "on",        "off",        "over",    "under",   "again",   "further",
    "then",      "once",      "here",       "there",   "when",    "where",   "why",
    "how",       "all",       "any",        "both",    "each",    "few",     "more",
    "most",      "other",     "some",       "such",    "no",      "nor",     "not",
    "only",      "own",       "same",       "so",      "than",    "too",     "very",
    "s",         "t",         "can",        "will",    "just",    "don",     "don't",
    "should",    "should've", "now",        "d",       "ll",      "m",       "o",
    "re",        "ve",        "y",          "ain",     "aren",    "aren't",  "couldn",
    "couldn't",  "didn",      "didn't",     "doesn",   "doesn't", "hadn",    "hadn't",
    "hasn",      "hasn't",    "haven",      "haven't", "isn",     "isn't",   "ma",
    "mightn",    "mightn't",  "mustn",      "mustn't", "needn",   "needn't", "shan",
    "shan't",    "shouldn",   "shouldn't",  "wasn",    "wasn't",  "weren",   "weren't",
    "won",       "won't",     "wouldn",     "wouldn't"};

/// Qdrant's stemmer languages (SnowballLanguage), each a Snowball algorithm of libstemmer.
constexpr const char* kStemmerLanguages[] = {
    "arabic",  "armenian", "danish",    "dutch",   "english",   "finnish",    "french",
    "german",  "greek",    "hungarian", "italian", "norwegian", "portuguese", "romanian",
    "russian", "spanish",  "swedish",   "tamil",   "turkish"};

/// ascii_folding.inc's characters, by code point.
struct Folded {
  uint32_t code_point;
  const char* ascii;
};
constexpr Folded kFolded[] = {
#include "engine/ascii_folding.inc"
};

/// One Snowball stemmer a language for each thread (a stemmer holds its working state).
struct StemmerDeleter {
  void operator()(sb_stemmer* s) const { sb_stemmer_delete(s); }
};
sb_stemmer* stemmer_for(const std::string& language) {
  thread_local std::map<std::string, std::unique_ptr<sb_stemmer, StemmerDeleter>> stemmers;
  auto& held = stemmers[language];
  if (!held) held.reset(sb_stemmer_new(language.c_str(), "UTF_8"));
  WP_THROW_INTERNAL_IF_NOT(held, "libstemmer has no Snowball stemmer for ", language);
  return held.get();
}

}  // namespace

std::shared_ptr<const WordRules> WordRules::parse(const json& stopwords, const json& stemmer,
                                                  bool lowercase, bool ascii_folding,
                                                  const std::string& field) {
  auto rules = std::make_shared<WordRules>();
  rules->folds_ = ascii_folding;
  rules->stopwords_json_ = stopwords;
  rules->stemmer_json_ = stemmer;
  const std::string words_at = field + ".stopwords";
  auto language = [&](const json& name, const std::string& at) {
    WP_THROW_IF_NOT(name.is_string(), at, ": expected a language's name, got ", show_json(name));
    WP_THROW_IF_NOT(name == "english", at,
                    ": only \"english\" stopwords are held here (or give your own as "
                    "{\"custom\": [words]}), got ",
                    show_json(name));
    for (const char* w : kEnglish) rules->stopwords_.insert(w);
  };
  if (stopwords.is_string()) {
    language(stopwords, words_at);
  } else if (stopwords.is_object()) {
    for (const auto& [key, value] : stopwords.items()) {
      const std::string at = words_at + "." + key;
      if (value.is_null()) continue;
      WP_THROW_IF_NOT(key == "languages" || key == "custom", at,
                      ": unknown option (expected languages, custom)");
      WP_THROW_IF_NOT(value.is_array(), at, ": expected an array, got ", show_json(value));
      for (size_t i = 0; i < value.size(); ++i) {
        const std::string item = at + "[" + std::to_string(i) + "]";
        if (key == "languages") {
          language(value[i], item);
        } else {
          WP_THROW_IF_NOT(value[i].is_string(), item, ": expected a word, got ",
                          show_json(value[i]));
          rules->stopwords_.insert(value[i].get<std::string>());
        }
      }
    }
  } else {
    WP_THROW_IF_NOT(stopwords.is_null(), words_at,
                    ": expected a language's name or {\"languages\", \"custom\"}, got ",
                    show_json(stopwords));
  }
  if (lowercase) {
    std::set<std::string, std::less<>> lower;
    for (const std::string& w : rules->stopwords_) lower.insert(ascii_lowercased(w));
    rules->stopwords_ = std::move(lower);
  }
  const std::string stem_at = field + ".stemmer";
  if (!stemmer.is_null()) {
    WP_THROW_IF_NOT(stemmer.is_object() && stemmer.contains("type"), stem_at,
                    ": expected {\"type\": \"snowball\", \"language\": ...} or {\"type\": "
                    "\"none\"}, got ",
                    show_json(stemmer));
    const json& type = stemmer["type"];
    WP_THROW_IF_NOT(type == "snowball" || type == "none", stem_at,
                    ".type: expected \"snowball\" or \"none\", got ", show_json(type));
    for (const auto& [key, value] : stemmer.items()) {
      WP_THROW_IF_NOT(key == "type" || (key == "language" && type == "snowball"),
                      stem_at + "." + key, ": unknown option for a ", type.get<std::string>(),
                      " stemmer");
    }
    if (type == "snowball") {
      const json* name = stemmer.contains("language") ? &stemmer["language"] : nullptr;
      const bool known = name && name->is_string() &&
                         std::any_of(std::begin(kStemmerLanguages), std::end(kStemmerLanguages),
                                     [&](const char* l) { return *name == l; });
      WP_THROW_IF_NOT(known, stem_at,
                      ".language: expected one of arabic, armenian, danish, dutch, english, "
                      "finnish, french, german, greek, hungarian, italian, norwegian, "
                      "portuguese, romanian, russian, spanish, swedish, tamil, turkish, got ",
                      name ? show_json(*name) : std::string("nothing"));
      rules->language_ = name->get<std::string>();
      stemmer_for(rules->language_);  // a language libstemmer lacks fails here, not at a search
    }
  }
  if (rules->stopwords_.empty() && rules->language_.empty() && !rules->folds_) return nullptr;
  return rules;
}

std::string WordRules::stem(std::string word) const {
  if (language_.empty() || word.empty()) return word;
  sb_stemmer* s = stemmer_for(language_);
  const sb_symbol* out = sb_stemmer_stem(s, reinterpret_cast<const sb_symbol*>(word.data()),
                                         static_cast<int>(word.size()));
  if (!out) return word;  // out of memory in the stemmer: the word as it is
  return std::string(reinterpret_cast<const char*>(out), static_cast<size_t>(sb_stemmer_length(s)));
}

std::string ascii_lowercased(std::string_view word) {
  std::string out(word);
  for (char& ch : out) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x80) ch = static_cast<char>(std::tolower(c));
  }
  return out;
}

uint32_t utf8_character_at(std::string_view text, size_t i, size_t* bytes) {
  const auto at = [&](size_t j) {
    return i + j < text.size() ? static_cast<uint32_t>(static_cast<unsigned char>(text[i + j])) : 0;
  };
  const uint32_t c = at(0);
  const size_t n = (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
  uint32_t cp = c & (0x7F >> n);
  for (size_t j = 1; j < n; ++j) {
    if ((at(j) & 0xC0) != 0x80) break;
    cp = cp << 6 | (at(j) & 0x3F);
    if (j + 1 == n) {
      *bytes = n;
      return cp;
    }
  }
  *bytes = 1;
  return 0;
}

std::string fold_to_ascii(std::string_view word) {
  std::string out;
  out.reserve(word.size());
  for (size_t i = 0; i < word.size();) {
    size_t n = 1;
    const uint32_t cp = utf8_character_at(word, i, &n);
    const Folded* f =
        std::lower_bound(std::begin(kFolded), std::end(kFolded), cp,
                         [](const Folded& a, uint32_t b) { return a.code_point < b; });
    if (cp != 0 && f != std::end(kFolded) && f->code_point == cp) {
      out += f->ascii;
    } else {
      out.append(word.substr(i, n));
    }
    i += n;
  }
  return out;
}

}  // namespace wp::engine
