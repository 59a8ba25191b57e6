#pragma once
/**
 * @file query_parts.h
 * The parts of Qdrant's query family that one node (points_api.cpp) and a cluster coordinator
 * (cluster_query.cpp) share: the checks of a request that need no collection, the fusion of
 * ranked lists (rrf, dbsf), and the grouping of query/groups. One node fuses and groups its own
 * hits; a coordinator fuses the lists it merged from every shard and groups the points of its
 * merged queries, with the same code and so the same answers.
 */
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/collection.h"
#include "engine/json_path.h"
#include "engine/point_id.h"
#include "http/request_parsing.h"

namespace wp::http {

/// Qdrant's fusion of prefetched lists: rrf (reciprocal rank, k and weights) or dbsf
/// (distribution-based score fusion).
struct Fusion {
  bool rrf = true;
  size_t k = 2;  ///< Qdrant's default
  std::vector<float> weights;
};

/// Qdrant's lookup_from: the collection (a name or alias) whose points a request's example ids
/// name, and their vector there.
struct LookupFrom {
  std::string collection;
  std::string vector;
};

/// Reads `body`'s lookup_from (at `where`; nullopt when absent or null): {"collection", "vector"}
/// (the vector `default_vector` when absent: Qdrant's query takes its `using`, recommend and
/// discover the unnamed vector); a shard_key is refused (no custom sharding here).
std::optional<LookupFrom> read_lookup_from(const json& body, const std::string& where,
                                           const std::string& default_vector);

/// Qdrant's maximal marginal relevance ({"nearest": ..., "mmr": {"diversity",
/// "candidates_limit"}}): the nearest `candidates` points, then `limit` of them chosen one at a
/// time for relevance and against likeness to those chosen (mmr_select).
struct Mmr {
  float lambda = 0.5f;    ///< 1 - diversity (Qdrant's default diversity 0.5)
  size_t candidates = 0;  ///< candidates_limit (0: the query's limit + offset, as Qdrant's)
};
/// The most candidates an MMR query takes (Qdrant's bound).
inline constexpr size_t kMaxMmrCandidates = 16384;
/// Reads `mmr` (at `at`; null: the defaults).
Mmr read_mmr(const json& mmr, const std::string& at);
/// The candidates MMR `mmr` takes to choose `chosen` points of `dim` dimensions (its
/// candidates_limit, else `chosen`, as Qdrant's), refused (naming `at`.candidates_limit) where
/// their similarities, candidates x (chosen + 1), would exceed the distance matrix's bound.
size_t mmr_candidates(const Mmr& mmr, size_t chosen, size_t dim, const std::string& at);
/**
 * Qdrant's MMR choice among `candidates` (vectors of the query's space, in `metric`): the
 * candidate most similar to `query` first, then, `limit` times at most, the one with the best
 * lambda * similarity to the query - (1 - lambda) * its greatest similarity to one chosen.
 * Similarity is the dot product (of unit vectors for Cosine: `query` and the candidates must be
 * so) or minus the squared Euclidean distance. Returns the candidates' positions, in the order
 * chosen.
 */
std::vector<size_t> mmr_select(const std::vector<float>& query,
                               const std::vector<std::vector<float>>& candidates,
                               index::Metric metric, float lambda, size_t limit);
/// One page of an MMR query: mmr_select of `offset` + `limit` for `query` as the request gives
/// it (normalised here for Cosine), the first `offset` chosen skipped.
std::vector<size_t> mmr_page(std::vector<float> query,
                             const std::vector<std::vector<float>>& candidates,
                             index::Metric metric, float lambda, size_t offset, size_t limit);

/// Reads {"fusion": "rrf"|"dbsf"} or {"rrf": {"k", "weights"}} (`q`, at `at`).
Fusion read_fusion(const json& q, const std::string& at);

/// A ranked list of a prefetch: points with their scores, best first; `small_better` when lower
/// scores are better (Euclidean distances).
struct Ranked {
  std::vector<engine::ScoredPoint> points;
  bool small_better = false;
};

/// The fused ranking of `lists`: each point once, best first (ties in the order first seen).
std::vector<std::pair<engine::PointId, float>> fuse(const std::vector<Ranked>& lists,
                                                    const Fusion& f);

/// Every point of `lists` once, in random order, each scored 1 (Qdrant's {"sample": "random"}
/// over prefetches).
std::vector<std::pair<engine::PointId, float>> shuffled_union(const std::vector<Ranked>& lists);

/// A distance matrix request (`points/search/matrix/pairs` and `.../offsets`): `sample` points
/// drawn at random under `filter` among those holding vector `using`, each with its `limit`
/// nearest among the others.
struct MatrixRequest {
  engine::Filter filter;
  json filter_json;  ///< as given
  size_t sample = 10, limit = 3;
  std::string vector_name;
};
/// Reads and checks a matrix request (the sample's size against `kMaxMatrixSample`, the answer's
/// against the caps).
MatrixRequest read_matrix_request(const json& body);
/// The most points one matrix samples, and the most values its distances read: each point is
/// compared with every other (sample^2 distances of dim values: 2^31, ~1 s here, allows 4096
/// points of 128 dimensions, 1,655 of 784).
inline constexpr size_t kMaxMatrixSample = 4096;
inline constexpr size_t kMaxMatrixWork = size_t{1} << 31;

/// Refuses (UserError naming `sample`) a sample whose sample^2 distances of `dim` values each
/// would read more than kMaxMatrixWork values.
void check_matrix_work(size_t sample, size_t dim);

/// Qdrant's distance matrix of sampled points: their ids sorted (numbers before UUIDs), and for
/// each row's point its `limit` nearest among the others, best first, as (column, score), the
/// score as a search gives it (the Euclidean distance, the cosine similarity, the dot product).
struct DistanceMatrix {
  std::vector<engine::PointId> ids;
  std::vector<std::vector<std::pair<size_t, float>>> rows;
};
/// The matrix of `points` (id, vector in space `metric`; cosine vectors unit length, as stored);
/// none with fewer than two points.
DistanceMatrix distance_matrix(std::vector<std::pair<engine::PointId, std::vector<float>>> points,
                               index::Metric metric, size_t limit);
/// {"pairs": [{"a", "b", "score"}...]}, row by row.
json matrix_pairs(const DistanceMatrix& m);
/// {"offsets_row", "offsets_col", "scores", "ids"}: row and column are positions in ids.
json matrix_offsets(const DistanceMatrix& m);

/// `a` and `b` together (filters as JSON; null is none).
json both_filters(const json& a, const json& b);

/// Checks a universal query request (`points/query`, one of `query/batch`) as one node does
/// before it reads anything of the collection; throws UserError naming the field.
void check_query_request(const json& body, const std::string& where);
/// Checks a recommend request (`points/recommend`, one of `recommend/batch`) likewise.
void check_recommend_request(const json& body, const std::string& where);

/// A `query/groups` request: its query checked, the grouping read.
struct GroupsRequest {
  engine::JsonPath path;  ///< group_by
  size_t group_size = 3;
  size_t groups = 10;        ///< the request's limit counts groups
  PayloadSelector returned;  ///< what the hits show of their payloads
  /// Qdrant's with_lookup: the collection whose point of each group's id is added to the group
  /// ("" none), and the retrieve body's with_payload and with_vector for it.
  std::string lookup_collection;
  json lookup_payload = true, lookup_vector = false;
};
GroupsRequest read_groups_request(const json& body);

/// The retrieve body ({"ids", "with_payload", "with_vector"}) of the points `g.lookup_collection`
/// holds for the groups of `answer` ({"groups": [...]}): the group ids that are point ids (an
/// unsigned integer, a UUID). Null when there are none.
json lookup_request(const GroupsRequest& g, const json& answer);
/// Adds to each group of `answer` whose id names one of `records` (a retrieve's answer) that
/// record as its "lookup", as Qdrant adds it.
void add_lookups(json& answer, const json& records);

/// Qdrant's older group routes as the `query/groups` body that answers them: a `search/groups`
/// body's `vector` (or {"name", "vector"}) becomes `query` (and `using`); a `recommend/groups`
/// body's positive, negative and strategy become {"recommend": {...}}. The body is first checked
/// as its own route reads it (a search or a recommendation), so that errors name its fields.
json groups_as_query(const json& body, bool recommend);

/// A `points/discover` body (at `where`: one of `discover/batch`) as the `points/query` body
/// that answers it: `target` and `context` become {"discover": {"target", "context"}}, or
/// {"context": [...]} without a target. The examples are checked first as this route names them;
/// a body with neither is refused, as Qdrant refuses it.
json discover_as_query(const json& body, const std::string& where);

/// Qdrant's groups: `run(n)` answers the request's query for `n` points with their full
/// payloads, best first; asked for more until `groups` groups hold `group_size` hits or no more
/// points come. Returns {"groups": [{"id", "hits"}...]}.
json collect_groups(const GroupsRequest& g, const std::function<json(size_t n)>& run);

}  // namespace wp::http
