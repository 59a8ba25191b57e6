#pragma once
// Answers of a scoring query checked against the test's own model of the scores: the page the
// model ranks (highest first, ties by id) and every point the query may return with its score,
// compared up to the order of scores equal but for rounding (the server sums floats, a model
// doubles). The sparse-vector and multivector tests share it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "api_fixture.h"

namespace wp::test {

/// What an answer should be: its points in order (id, score), and the score of every point the
/// query may return.
struct Want {
  std::vector<std::pair<int, double>> top;
  std::map<int, double> all;
};

/// The answer of the candidates' `scores` (id, score): from `offset`, at most `limit`, highest
/// first, ties by id.
inline Want ranked(std::vector<std::pair<int, double>> scores, size_t limit, size_t offset) {
  std::sort(scores.begin(), scores.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  Want out;
  for (const auto& [id, score] : scores) out.all[id] = score;
  for (size_t j = offset; j < scores.size() && out.top.size() < limit; ++j) {
    out.top.push_back(scores[j]);
  }
  return out;
}

class RankedApiTest : public ApiTest {
 protected:
  /// (id, score) of an answer's points (a list, or a query's {"points": [...]}).
  static std::vector<std::pair<int, double>> hits_of(const json& answer) {
    const json& list = answer.is_object() ? answer["points"] : answer;
    std::vector<std::pair<int, double>> out;
    for (const json& p : list) out.emplace_back(p["id"].get<int>(), p["score"].get<double>());
    return out;
  }
  /// `got` holds as many points as `want.top`, with the same scores in order, each a point the
  /// query may return and with its own score (`score_name` in messages), none twice.
  static void expect_same(const std::vector<std::pair<int, double>>& got, const Want& want,
                          const std::string& what, const char* score_name = "model score") {
    auto near = [](double a, double b) {
      return std::abs(a - b) <= 1e-5 * std::max(1.0, std::abs(b));
    };
    ASSERT_EQ(got.size(), want.top.size()) << what;
    std::set<int> seen;
    for (size_t j = 0; j < got.size(); ++j) {
      EXPECT_TRUE(near(got[j].second, want.top[j].second))
          << what << " #" << j << ": " << got[j].second << " for " << want.top[j].second;
      const auto it = want.all.find(got[j].first);
      ASSERT_NE(it, want.all.end())
          << what << " #" << j << ": point " << got[j].first << " should not be in the answer";
      EXPECT_TRUE(near(got[j].second, it->second))
          << what << " #" << j << ": point " << got[j].first << " scored " << got[j].second
          << ", its " << score_name << " is " << it->second;
      EXPECT_TRUE(seen.insert(got[j].first).second)
          << what << ": point " << got[j].first << " twice";
    }
  }
  void expect_400(const std::string& method, const std::string& path, const json& body,
                  const std::string& says) {
    const Response r = call(method, path, body.dump());
    EXPECT_EQ(r.status, 400u) << body << " -> " << r.body;
    EXPECT_NE(r.body.find(says), std::string::npos) << body << " -> " << r.body;
  }
};

}  // namespace wp::test
