// The stock Qdrant JavaScript REST client (@qdrant/js-client-rest 1.19.0, from npm) against the real
// `waypoint serve` binary, as a new user would use it. Run by CTest (node --test); scripts/setup.sh
// installs node_modules (without them this file fails to load, and so the test fails); needs
// WAYPOINT_BIN.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { QdrantClient } from '@qdrant/js-client-rest';

let server;
let client;
let baseUrl;  // for the routes used with plain fetch (snapshot download and upload)
const data = mkdtempSync(join(tmpdir(), 'wp-js-'));

before(async () => {
  // --slow-query-ms 0: every filtered read is slow enough to note the indexes it lacks (GET /issues).
  server = spawn(process.env.WAYPOINT_BIN, ['serve', '--port', '0', '--data', data, '--slow-query-ms', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    server.stdout.on('data', (chunk) => {
      out += chunk;
      const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) resolve(Number(m[1]));
    });
    server.on('exit', (code) => reject(new Error(`server exited with ${code}`)));
  });
  baseUrl = `http://127.0.0.1:${port}`;
  client = new QdrantClient({ url: baseUrl, checkCompatibility: false });
});

after(async () => {
  const exited = new Promise((resolve) => server.on('exit', resolve));
  server.kill('SIGTERM');
  assert.equal(await exited, 0);  // graceful shutdown saves index files, then exits 0
  rmSync(data, { recursive: true, force: true });
});

test('the client is the version package.json pins', () => {
  const here = dirname(fileURLToPath(import.meta.url));
  const pinned = JSON.parse(readFileSync(join(here, 'package.json'), 'utf8')).dependencies;
  const installed = JSON.parse(
    readFileSync(join(here, 'node_modules/@qdrant/js-client-rest/package.json'), 'utf8'),
  );
  assert.equal(installed.version, pinned['@qdrant/js-client-rest']);
});

test('collections: create, list, exists, info, delete', async () => {
  assert.equal(await client.createCollection('books', { vectors: { size: 4, distance: 'Cosine' } }), true);
  const { collections } = await client.getCollections();
  assert.deepEqual(collections.map((c) => c.name), ['books']);
  assert.deepEqual(await client.collectionExists('books'), { exists: true });
  const info = await client.getCollection('books');
  assert.equal(info.config.params.vectors.size, 4);
  assert.equal(info.config.params.vectors.distance, 'Cosine');
  await assert.rejects(client.createCollection('books', { vectors: { size: 4, distance: 'Cosine' } }),
    (e) => e.status === 409);
  assert.equal(await client.deleteCollection('books'), true);
  assert.deepEqual(await client.collectionExists('books'), { exists: false });
});

test('points: upsert, search with filter, retrieve, count, scroll, query, delete', async () => {
  await client.createCollection('cities', { vectors: { size: 4, distance: 'Dot' } });
  const r = await client.upsert('cities', {
    wait: true,
    points: [
      { id: 1, vector: [0.05, 0.61, 0.76, 0.74], payload: { city: 'Berlin', population: 3.7 } },
      { id: 2, vector: [0.19, 0.81, 0.75, 0.11], payload: { city: 'London', population: 8.9 } },
      { id: 3, vector: [0.36, 0.55, 0.47, 0.94], payload: { city: 'Moscow', population: 12.5 } },
      { id: 'a7e1ed4e-0cf3-4c4b-a7b2-ab06b3c4e0e2', vector: [0.18, 0.01, 0.85, 0.8], payload: { city: 'Paris' } },
    ],
  });
  assert.equal(r.status, 'completed');
  await client.upsert('cities', { wait: true, batch: { ids: [5, 6], vectors: [[0.24, 0.18, 0.22, 0.44], [0.35, 0.08, 0.11, 0.44]], payloads: [{ city: 'Beijing' }, { city: 'Mumbai' }] } });

  // Client 1.19 has no search/searchBatch/recommend: everything goes through the query family.
  const hits = (await client.query('cities', { query: [0.2, 0.1, 0.9, 0.7], limit: 3, with_payload: true })).points;
  assert.equal(hits.length, 3);
  // Dot products with the query: Paris 1.362, Berlin 1.273, Moscow 1.208, London 0.871, ...
  assert.deepEqual(hits.map((h) => h.payload.city), ['Paris', 'Berlin', 'Moscow']);
  assert.equal(hits[0].id, 'a7e1ed4e-0cf3-4c4b-a7b2-ab06b3c4e0e2');
  assert.ok(hits[0].score >= hits[1].score && hits[1].score >= hits[2].score);

  const filtered = (await client.query('cities', {
    query: [0.2, 0.1, 0.9, 0.7],
    limit: 10,
    filter: { must: [{ key: 'population', range: { gte: 5 } }] },
    with_payload: true,
  })).points;
  assert.deepEqual(filtered.map((h) => h.payload.city).sort(), ['London', 'Moscow']);

  const got = await client.retrieve('cities', { ids: [2, 'a7e1ed4e-0cf3-4c4b-a7b2-ab06b3c4e0e2'], with_vector: true });
  assert.equal(got.length, 2);
  assert.equal(got[1].payload.city, 'Paris');
  assert.equal(got[0].vector.length, 4);

  assert.deepEqual(await client.count('cities', { exact: true }), { count: 6 });
  const page = await client.scroll('cities', { limit: 4, with_payload: false });
  assert.deepEqual(page.points.map((p) => p.id), [1, 2, 3, 5]);
  assert.equal(page.next_page_offset, 6);

  const q = await client.query('cities', { query: [0.2, 0.1, 0.9, 0.7], limit: 1 });
  assert.equal(q.points[0].id, 'a7e1ed4e-0cf3-4c4b-a7b2-ab06b3c4e0e2');
  const batch = await client.queryBatch('cities', { searches: [{ query: [1, 0, 0, 0], limit: 1 }, { query: [0, 1, 0, 0], limit: 1 }] });
  assert.equal(batch.length, 2);
  assert.equal(batch[0].points[0].id, 3);  // largest first component: Moscow 0.36
  assert.equal(batch[1].points[0].id, 2);  // largest second component: London 0.81

  await client.delete('cities', { wait: true, points: [1] });
  await client.delete('cities', { wait: true, filter: { must: [{ key: 'city', match: { any: ['Beijing', 'Mumbai'] } }] } });
  assert.deepEqual(await client.count('cities', {}), { count: 3 });
});

test('bad input comes back as a 4xx error naming the field', async () => {
  await client.createCollection('small', { vectors: { size: 3, distance: 'Euclid' } });
  await assert.rejects(client.upsert('small', { points: [{ id: 1, vector: [1, 2] }] }), (e) => {
    assert.equal(e.status, 400);
    assert.match(JSON.stringify(e.data), /points\[0\]\.vector: expected dimension 3/);
    return true;
  });
  await assert.rejects(client.query('missing', { query: [1, 2, 3], limit: 1 }), (e) => e.status === 404);
});

test('payload edits, collection update and version info', async () => {
  const version = await client.versionInfo();
  assert.equal(typeof version.version, 'string');
  await client.createCollection('shop', { vectors: { size: 2, distance: 'Euclid' } });
  await client.upsert('shop', {
    wait: true,
    points: [
      { id: 1, vector: [0, 0], payload: { kind: 'hat', price: 10 } },
      { id: 2, vector: [1, 0], payload: { kind: 'shoe', price: 50 } },
      { id: 3, vector: [2, 0], payload: { kind: 'hat', price: 20 } },
    ],
  });
  const payloadOf = async (id) => (await client.retrieve('shop', { ids: [id], with_payload: true }))[0].payload;
  await client.setPayload('shop', { wait: true, payload: { sale: true }, filter: { must: [{ key: 'kind', match: { value: 'hat' } }] } });
  assert.deepEqual(await client.count('shop', { filter: { must: [{ key: 'sale', match: { value: true } }] } }), { count: 2 });
  await client.setPayload('shop', { wait: true, payload: { cm: 30 }, points: [2], key: 'size' });
  assert.deepEqual(await payloadOf(2), { kind: 'shoe', price: 50, size: { cm: 30 } });
  await client.overwritePayload('shop', { wait: true, payload: { kind: 'bag' }, points: [2] });
  assert.deepEqual(await payloadOf(2), { kind: 'bag' });
  await client.deletePayload('shop', { wait: true, keys: ['price'], points: [1, 3] });
  assert.deepEqual(await payloadOf(3), { kind: 'hat', sale: true });
  await client.clearPayload('shop', { wait: true, points: [1] });
  assert.deepEqual(await payloadOf(1), {});
  await assert.rejects(client.setPayload('shop', { payload: { x: 1 }, points: [99] }), (e) => e.status === 404);

  assert.equal(await client.updateCollection('shop', { hnsw_config: { m: 8 }, quantization_config: { scalar: { type: 'int8' } } }), true);
  let info = await client.getCollection('shop');
  for (let i = 0; i < 100 && info.config.hnsw_config.m !== 8; ++i) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    info = await client.getCollection('shop');
  }
  assert.equal(info.config.hnsw_config.m, 8);
  assert.equal(info.config.quantization_config.scalar.type, 'int8');
  const hits = await client.query('shop', { query: [1.9, 0], limit: 1 });
  assert.equal(hits.points[0].id, 3);

  const answers = await client.queryBatch('shop', {
    searches: [{ query: [0.1, 0], limit: 1 }, { query: 3, limit: 2 }, { limit: 2, with_payload: true }],
  });
  // By id (3): its vector's nearest, point 3 itself left out, as Qdrant leaves it out.
  assert.deepEqual(answers.map((a) => a.points.map((p) => p.id)), [[1], [2, 1], [1, 2]]);
  assert.deepEqual(answers[2].points[1].payload, { kind: 'bag' });

  assert.deepEqual((await client.query('shop', { query: { recommend: { positive: [3], negative: [1] } }, limit: 1 })).points.map((p) => p.id), [2]);
  // Discovery: 3 is on the pair's positive side (+1), 2 ties (0), 1 on its negative side (-1), each
  // plus the target's similarity (minus the squared distance) squashed into (0, 1).
  const pair = { positive: [3, 0], negative: [-1, 0] };
  const discovered = (await client.query('shop', { query: { discover: { target: [1.9, 0], context: [pair] } } })).points;
  assert.deepEqual(discovered.map((p) => p.id), [3, 2, 1]);
  assert.ok(Math.abs(discovered[0].score - (1 + 0.5 * (1 - 0.01 / 1.01))) < 1e-5);
  const context = (await client.query('shop', { query: { context: pair } })).points;
  assert.deepEqual(context.map((p) => p.id), [3, 2, 1]);
  assert.equal(context[0].score, 0);
  assert.ok(Math.abs(context[2].score + 8 / 9) < 1e-5);
  // The distance matrix of every point (3 of a sample of 10), and random points.
  const matrix = await client.searchMatrixPairs('shop', { sample: 10, limit: 1 });
  assert.deepEqual(matrix.pairs.map((p) => p.a), [1, 2, 3]);
  assert.deepEqual(matrix.pairs.map((p) => p.score), [1, 1, 1]);
  assert.deepEqual([matrix.pairs[0].b, matrix.pairs[2].b], [2, 2]);
  const offsets = await client.searchMatrixOffsets('shop', { sample: 10, limit: 2 });
  assert.deepEqual(offsets.ids, [1, 2, 3]);
  assert.deepEqual(offsets.offsets_row, [0, 0, 1, 1, 2, 2]);
  const sampled = (await client.query('shop', { query: { sample: 'random' }, limit: 2 })).points;
  assert.equal(new Set(sampled.map((p) => p.id)).size, 2);
  assert.ok(sampled.every((p) => [1, 2, 3].includes(p.id) && p.score === 1));

  await client.updateVectors('shop', { wait: true, points: [{ id: 1, vector: [5, 5] }] });
  assert.deepEqual((await client.retrieve('shop', { ids: [1], with_vector: true }))[0].vector, [5, 5]);

  const results = await client.batchUpdate('shop', {
    wait: true,
    operations: [
      { upsert: { points: [{ id: 4, vector: [3, 0], payload: { kind: 'belt' } }] } },
      { set_payload: { payload: { new: true }, filter: { must: [{ key: 'kind', match: { value: 'belt' } }] } } },
      { delete: { points: [4] } },
      { upsert: { points: [{ id: 5, vector: [4, 0], payload: { kind: 'scarf' } }] } },
    ],
  });
  assert.equal(results.length, 4);
  assert.deepEqual((await client.retrieve('shop', { ids: [4, 5], with_payload: true })).map((p) => p.id), [5]);
  await assert.rejects(
    client.batchUpdate('shop', { operations: [{ delete: { points: [5] } }, { upsert: { points: [{ id: 6, vector: [1] }] } }] }),
    (e) => e.status === 400,
  );
  assert.equal((await client.retrieve('shop', { ids: [5] })).length, 1);  // nothing of it written
  await client.delete('shop', { wait: true, points: [5] });

  const grouped = await client.queryGroups('shop', { query: [0, 0], group_by: 'kind', group_size: 1, limit: 2 });
  assert.deepEqual(grouped.groups.map((g) => [g.id, g.hits.map((h) => h.id)]), [['bag', [2]], ['hat', [3]]]);

  const created = await client.createPayloadIndex('shop', { wait: true, field_name: 'kind', field_schema: 'keyword' });
  assert.equal(created.status, 'completed');
  info = await client.getCollection('shop');
  assert.deepEqual(info.payload_schema.kind, { data_type: 'keyword', points: 2 });  // 1 was cleared
  assert.deepEqual(await client.count('shop', { filter: { must: [{ key: 'kind', match: { value: 'hat' } }] } }), { count: 1 });
  assert.deepEqual((await client.facet('shop', { key: 'kind' })).hits, [{ value: 'bag', count: 1 }, { value: 'hat', count: 1 }]);
  // match.prefix (Qdrant 1.19) through a keyword index with the prefix option.
  await client.createPayloadIndex('shop', { wait: true, field_name: 'kind', field_schema: { type: 'keyword', prefix: true } });
  info = await client.getCollection('shop');
  assert.deepEqual(info.payload_schema.kind, { data_type: 'keyword', points: 2, params: { type: 'keyword', prefix: true } });
  assert.deepEqual(await client.count('shop', { filter: { must: [{ key: 'kind', match: { prefix: 'h' } }] } }), { count: 1 });
  assert.deepEqual(await client.count('shop', { filter: { must: [{ key: 'kind', match: { prefix: '' } }] } }), { count: 2 });
  await client.deletePayloadIndex('shop', 'kind', { wait: true });

  assert.equal(await client.updateCollectionAliases({ actions: [{ create_alias: { collection_name: 'shop', alias_name: 'store' } }] }), true);
  assert.deepEqual((await client.getAliases()).aliases, [{ alias_name: 'store', collection_name: 'shop' }]);
  assert.deepEqual((await client.getCollectionAliases('shop')).aliases, [{ alias_name: 'store', collection_name: 'shop' }]);
  assert.deepEqual(await client.count('store', {}), { count: 3 });
  assert.deepEqual((await client.getCollection('shop')).payload_schema, {});
});

test('full-text and datetime payload indexes: match text, datetime ranges', async () => {
  await client.createCollection('notes', { vectors: { size: 2, distance: 'Dot' } });
  await client.upsert('notes', {
    wait: true,
    points: [
      { id: 1, vector: [1, 0], payload: { body: 'The quick brown fox', at: '2024-05-01T10:00:00Z' } },
      { id: 2, vector: [0, 1], payload: { body: 'Lazy dogs, quick cats', at: '2024-06-01T10:00:00Z' } },
      { id: 3, vector: [1, 1], payload: { body: 'brown bread', at: '2024-07-01T10:00:00+02:00' } },
    ],
  });
  await client.createPayloadIndex('notes', { wait: true, field_name: 'body', field_schema: { type: 'text', tokenizer: 'word', lowercase: true } });
  await client.createPayloadIndex('notes', { wait: true, field_name: 'at', field_schema: 'datetime' });
  const info = await client.getCollection('notes');
  assert.equal(info.payload_schema.body.data_type, 'text');
  assert.equal(info.payload_schema.at.data_type, 'datetime');
  const ids = async (filter) => (await client.scroll('notes', { filter, limit: 10 })).points.map((p) => p.id);
  assert.deepEqual(await ids({ must: [{ key: 'body', match: { text: 'QUICK' } }] }), [1, 2]);
  assert.deepEqual(await ids({ must: [{ key: 'body', match: { text: 'fox brown' } }] }), [1]);
  assert.deepEqual(await ids({ must: [{ key: 'at', range: { gte: '2024-06-01T00:00:00Z' } }] }), [2, 3]);
  assert.deepEqual(await ids({ must: [{ key: 'body', match: { text: 'brown' } }, { key: 'at', range: { lt: '2024-06-01T00:00:00Z' } }] }), [1]);
  await assert.rejects(
    client.createPayloadIndex('notes', { field_name: 'body', field_schema: { type: 'text', tokenizer: 'multilingual' } }),
    (e) => e.status === 400,
  );
  // A prefix index (a query's words match the words they begin), text_any and phrase.
  await client.createPayloadIndex('notes', {
    wait: true,
    field_name: 'body',
    field_schema: { type: 'text', tokenizer: 'prefix', lowercase: true, phrase_matching: true },
  });
  const params = (await client.getCollection('notes')).payload_schema.body.params;
  assert.equal(params.tokenizer, 'prefix');
  assert.equal(params.phrase_matching, true);
  assert.deepEqual(await ids({ must: [{ key: 'body', match: { text: 'qui BRO' } }] }), [1]);
  assert.deepEqual(await ids({ must: [{ key: 'body', match: { text_any: 'laz bread' } }] }), [2, 3]);
  assert.deepEqual(await ids({ must: [{ key: 'body', match: { phrase: 'quick brown' } }] }), [1]);
  assert.deepEqual(await ids({ must: [{ key: 'body', match: { phrase: 'brown quick' } }] }), []);
});

test('named vectors: using, with_vector by name, update and delete vectors, hybrid fusion', async () => {
  await client.createCollection('docs', {
    vectors: { image: { size: 3, distance: 'Euclid' }, text: { size: 2, distance: 'Cosine' } },
  });
  const info = await client.getCollection('docs');
  assert.equal(info.config.params.vectors.image.size, 3);
  assert.equal(info.config.params.vectors.text.distance, 'Cosine');
  await client.upsert('docs', {
    wait: true,
    points: [
      { id: 1, vector: { image: [0, 0, 0], text: [1, 0] }, payload: { k: 'a' } },
      { id: 2, vector: { image: [1, 0, 0] }, payload: { k: 'b' } },
      { id: 3, vector: { text: [0, 1] }, payload: { k: 'a' } },
    ],
  });
  const ids = async (req) => (await client.query('docs', req)).points.map((p) => p.id);
  assert.deepEqual(await ids({ query: [0.9, 0, 0], using: 'image' }), [2, 1]);
  assert.deepEqual(await ids({ query: [1, 0], using: 'text' }), [1, 3]);
  const [one] = await client.retrieve('docs', { ids: [1], with_vector: ['text'] });
  assert.deepEqual(one.vector, { text: [1, 0] });
  // Reciprocal rank fusion of the two spaces: 1 is second and first (1/3 + 1/2).
  const fused = await client.query('docs', {
    prefetch: [{ query: [0.9, 0, 0], using: 'image', limit: 2 }, { query: [1, 0], using: 'text', limit: 2 }],
    query: { fusion: 'rrf' },
  });
  assert.deepEqual(fused.points.map((p) => p.id), [1, 2, 3]);
  assert.ok(Math.abs(fused.points[0].score - (1 / 3 + 1 / 2)) < 1e-6);
  const dbsf = await ids({
    prefetch: [{ query: [0.9, 0, 0], using: 'image' }, { query: [1, 0], using: 'text' }],
    query: { fusion: 'dbsf' },
  });
  assert.deepEqual(dbsf.slice().sort(), [1, 2, 3]);
  // Score boosting: the prefetched points scored by a formula of their scores (image's distance
  // taken off; 2 points absent from a prefetch take its default, or 0) and a condition on k.
  const boosted = await client.query('docs', {
    prefetch: [{ query: [0.9, 0, 0], using: 'image', limit: 2 }, { query: [1, 0], using: 'text', limit: 2 }],
    query: {
      formula: { sum: [{ neg: '$score[0]' }, '$score[1]', { mult: [0.5, { key: 'k', match: { value: 'b' } }] }] },
      defaults: { '$score[0]': 2 },
    },
  });
  assert.deepEqual(boosted.points.map((p) => p.id), [2, 1, 3]);
  assert.ok(Math.abs(boosted.points[0].score - 0.4) < 1e-5);  // -0.1 + 0 + 0.5
  assert.ok(Math.abs(boosted.points[2].score + 2) < 1e-5);  // the default distance, no text score
  await assert.rejects(client.query('docs', { prefetch: [{ query: [1, 0], using: 'text' }], query: { formula: 'k' } }),
    (e) => e.status === 400 && /query\.formula: expected a number at \\"k\\"/.test(JSON.stringify(e.data)));
  const best = await client.query('docs', {
    query: { recommend: { positive: [1], negative: [[0, 1]], strategy: 'best_score' } }, using: 'text',
  });
  assert.deepEqual(best.points.map((p) => p.id), [3]);  // 1 is an example; 2 has no text vector
  assert.ok(Math.abs(best.points[0].score + 0.75) < 1e-6);  // -sigmoid(1): nearer the negative
  // lookup_from: the id read in another collection (shop's point 2, [1, 0], in its unnamed
  // vector), searched in docs' text space; docs' own point 2 is not the example and may stay.
  assert.deepEqual(await ids({ query: 2, using: 'text', lookup_from: { collection: 'shop', vector: '' } }), [1, 3]);
  await assert.rejects(client.query('docs', { query: 2, using: 'text', lookup_from: { collection: 'nowhere' } }),
    (e) => e.status === 404);
  await client.updateVectors('docs', { wait: true, points: [{ id: 2, vector: { text: [0, -1] } }] });
  const [two] = await client.retrieve('docs', { ids: [2], with_vector: true });
  assert.deepEqual(two.vector, { image: [1, 0, 0], text: [0, -1] });
  await client.deleteVectors('docs', { wait: true, points: [1], vector: ['image'] });
  assert.deepEqual(await ids({ query: [0.9, 0, 0], using: 'image' }), [2]);
  assert.equal((await client.count('docs')).count, 3);
  await assert.rejects(client.query('docs', { query: [1, 0], using: 'audio' }),
    (e) => e.status === 400 && /using: Not existing vector name error: audio/.test(JSON.stringify(e.data)));
  await assert.rejects(client.upsert('docs', { wait: true, points: [{ id: 4, vector: { image: [1, 2] } }] }),
    (e) => e.status === 400 && /points\[0\]\.vector\.image: expected dimension 3/.test(JSON.stringify(e.data)));
  assert.equal((await client.count('docs')).count, 3);
});

test('sparse vectors: a hybrid collection with BM25-like idf, search, query, fusion', async () => {
  await client.createCollection('hybrid', {
    vectors: { dense: { size: 2, distance: 'Dot' } },
    sparse_vectors: { text: {}, bm25: { modifier: 'idf' } },
  });
  const info = await client.getCollection('hybrid');
  assert.deepEqual(info.config.params.sparse_vectors, { text: { modifier: 'none' }, bm25: { modifier: 'idf' } });
  await client.upsert('hybrid', {
    wait: true,
    points: [
      { id: 1, vector: { dense: [1, 0], text: { indices: [7, 2], values: [1, 2] }, bm25: { indices: [1, 2], values: [1, 1] } } },
      { id: 2, vector: { dense: [0, 1], text: { indices: [2, 9], values: [3, 1] }, bm25: { indices: [1], values: [1] } } },
      { id: 3, vector: { dense: [1, 1], text: { indices: [9], values: [5] }, bm25: { indices: [1, 3], values: [1, 1] } } },
    ],
  });
  // The dot product over shared indices: 2 scores 3*1, 1 scores 2*1 + 1*0.5; 3 shares none.
  const found = await client.query('hybrid', { query: { indices: [2, 7], values: [1, 0.5] }, using: 'text' });
  assert.deepEqual(found.points.map((p) => [p.id, p.score]), [[2, 3], [1, 2.5]]);
  const searched = await client.query('hybrid', { query: { indices: [9], values: [1] }, using: 'text', limit: 5 });
  assert.deepEqual(searched.points.map((p) => p.id), [3, 2]);
  // idf: dimension 1 is in every point (ln(1 + 0.5 / 3.5)), 3 in one (ln(1 + 2.5 / 1.5)).
  const idf = await client.query('hybrid', { query: { nearest: { indices: [1, 3], values: [1, 1] } }, using: 'bm25' });
  assert.equal(idf.points[0].id, 3);
  assert.ok(Math.abs(idf.points[0].score - (Math.log(1 + 0.5 / 3.5) + Math.log(1 + 2.5 / 1.5))) < 1e-5);
  // Hybrid: dense and sparse prefetches fused.
  const fused = await client.query('hybrid', {
    prefetch: [{ query: [1, 0], using: 'dense', limit: 2 }, { query: { indices: [9], values: [1] }, using: 'text', limit: 2 }],
    query: { fusion: 'rrf' },
  });
  assert.deepEqual(fused.points.map((p) => p.id).sort(), [1, 2, 3]);
  const [one] = await client.retrieve('hybrid', { ids: [1], with_vector: ['text'] });
  assert.deepEqual(one.vector, { text: { indices: [2, 7], values: [2, 1] } });  // sorted by index
  await client.deleteVectors('hybrid', { wait: true, points: [2], vector: ['text'] });
  assert.deepEqual(await client.count('hybrid', { filter: { must: [{ has_vector: 'text' }] } }), { count: 2 });
  await assert.rejects(client.upsert('hybrid', { wait: true, points: [{ id: 4, vector: { text: { indices: [1, 1], values: [1, 2] } } }] }),
    (e) => e.status === 400 && /points\[0\]\.vector\.text\.indices: index 1 is given twice/.test(JSON.stringify(e.data)));
});

test('multivectors: ColBERT-style late interaction, reranking a dense prefetch by MaxSim', async () => {
  await client.createCollection('colbert', {
    vectors: {
      dense: { size: 2, distance: 'Dot' },
      colbert: { size: 2, distance: 'Dot', multivector_config: { comparator: 'max_sim' } },
    },
  });
  const info = await client.getCollection('colbert');
  assert.deepEqual(info.config.params.vectors.colbert,
    { size: 2, distance: 'Dot', multivector_config: { comparator: 'max_sim' } });
  await client.upsert('colbert', {
    wait: true,
    points: [
      { id: 1, vector: { dense: [1, 0], colbert: [[1, 0], [0, 1]] } },
      { id: 2, vector: { dense: [1, 1], colbert: [[2, 0]] } },
      { id: 3, vector: { dense: [0, 1], colbert: [[0, 3], [1, 1], [0.5, 0.5]] } },
    ],
  });
  // MaxSim: each query vector's best dot product among the point's vectors, summed.
  // [[1, 0], [0, 1]]: 1 scores 1 + 1, 2 scores 2 + 0, 3 scores 1 + 3.
  const found = await client.query('colbert', { query: [[1, 0], [0, 1]], using: 'colbert', with_vector: ['colbert'] });
  assert.deepEqual(found.points.map((p) => [p.id, p.score]), [[3, 4], [1, 2], [2, 2]]);
  assert.deepEqual(found.points[0].vector, { colbert: [[0, 3], [1, 1], [0.5, 0.5]] });
  // A dense prefetch (1 and 2 score highest on [1, 0.1]) reranked by the multivector.
  const reranked = await client.query('colbert', {
    prefetch: { query: [1, 0.1], using: 'dense', limit: 2 },
    query: [[0, 1]],
    using: 'colbert',
  });
  assert.deepEqual(reranked.points.map((p) => [p.id, p.score]), [[1, 1], [2, 0]]);
  // A point's own multivector as the query (the point left out).
  const similar = await client.query('colbert', { query: 2, using: 'colbert' });
  assert.deepEqual(similar.points.map((p) => [p.id, p.score]), [[1, 2], [3, 2]].sort((a, b) => b[1] - a[1] || a[0] - b[0]));
  await client.deleteVectors('colbert', { wait: true, points: [3], vector: ['colbert'] });
  assert.deepEqual(await client.count('colbert', { filter: { must: [{ has_vector: 'colbert' }] } }), { count: 2 });
  await assert.rejects(client.upsert('colbert', { wait: true, points: [{ id: 4, vector: { colbert: [[1, 0], [1]] } }] }),
    (e) => e.status === 400 && /points\[0\]\.vector\.colbert\[1\]/.test(JSON.stringify(e.data)));
  await assert.rejects(client.query('colbert', { query: [1, 0], using: 'colbert' }),
    (e) => e.status === 400 && /multivector/.test(JSON.stringify(e.data)));
});

test('snapshots: create, list, recover, download, upload, delete', async () => {
  await client.createCollection('snaps', { vectors: { size: 4, distance: 'Cosine' } });
  const points = Array.from({ length: 50 }, (_, i) => ({ id: i, vector: [1, i, i % 7, 1], payload: { n: i } }));
  await client.upsert('snaps', { wait: true, points });
  const count = async (name) => (await client.count(name, { exact: true })).count;

  const snap = await client.createSnapshot('snaps');
  assert.deepEqual(Object.keys(snap).sort(), ['checksum', 'creation_time', 'name', 'size']);
  assert.match(snap.checksum, /^[0-9a-f]{64}$/);
  assert.ok(snap.size > 0);
  assert.deepEqual((await client.listSnapshots('snaps')).map((s) => s.name), [snap.name]);

  // Recover from the file in the server's snapshots folder: the deleted points come back.
  await client.delete('snaps', { wait: true, points: Array.from({ length: 20 }, (_, i) => i) });
  assert.equal(await count('snaps'), 30);
  const location = 'file://' + join(data, 'snapshots', 'snaps', snap.name);
  assert.equal(await client.recoverSnapshot('snaps', { location }), true);
  assert.equal(await count('snaps'), 50);
  assert.deepEqual((await client.retrieve('snaps', { ids: [7], with_payload: true }))[0].payload, { n: 7 });
  await client.delete('snaps', { wait: true, points: [0] });
  await assert.rejects(client.recoverSnapshot('snaps', { location, checksum: '0'.repeat(64) }),
    (e) => e.status === 400);
  assert.equal(await count('snaps'), 49);  // nothing replaced

  // Download with plain fetch: the bytes hash to the checksum.
  const res = await fetch(`${baseUrl}/collections/snaps/snapshots/${encodeURIComponent(snap.name)}`);
  assert.equal(res.status, 200);
  const bytes = new Uint8Array(await res.arrayBuffer());
  assert.equal(bytes.length, snap.size);
  assert.equal(createHash('sha256').update(bytes).digest('hex'), snap.checksum);

  // Upload it into a new collection (multipart, part `snapshot`); a truncated copy is refused.
  const upload = (part) => {
    const form = new FormData();
    form.append('snapshot', new Blob([part]), snap.name);
    return fetch(`${baseUrl}/collections/snaps_copy/snapshots/upload?priority=snapshot`, { method: 'POST', body: form });
  };
  const up = await upload(bytes);
  assert.equal(up.status, 200, await up.clone().text());
  assert.deepEqual((await up.json()).result, true);
  assert.equal((await client.getCollection('snaps_copy')).points_count, 50);
  const bad = await upload(bytes.subarray(0, Math.floor(bytes.length / 2)));
  assert.equal(bad.status, 400, await bad.clone().text());
  assert.equal((await client.getCollection('snaps_copy')).points_count, 50);

  assert.equal(await client.deleteSnapshot('snaps', snap.name), true);
  assert.deepEqual(await client.listSnapshots('snaps'), []);
  await assert.rejects(client.deleteSnapshot('snaps', snap.name), (e) => e.status === 404);
});

test('storage snapshots: create, list, download, delete', async () => {
  assert.deepEqual(await client.listFullSnapshots(), []);
  const full = await client.createFullSnapshot({ wait: true });
  assert.deepEqual(Object.keys(full).sort(), ['checksum', 'creation_time', 'name', 'size']);
  assert.match(full.name, /^full-snapshot-.*\.snapshot$/);
  assert.deepEqual((await client.listFullSnapshots()).map((s) => s.name), [full.name]);
  const res = await fetch(`${baseUrl}/snapshots/${encodeURIComponent(full.name)}`);
  assert.equal(res.status, 200);
  const bytes = new Uint8Array(await res.arrayBuffer());
  assert.equal(bytes.length, full.size);
  assert.equal(createHash('sha256').update(bytes).digest('hex'), full.checksum);
  assert.equal(await client.deleteFullSnapshot(full.name, { wait: true }), true);
  assert.deepEqual(await client.listFullSnapshots(), []);
  await assert.rejects(client.deleteFullSnapshot(full.name), (e) => e.status === 404);
});

test('issues: a slow filtered read names the payload index it lacks, and following it solves it', async () => {
  await client.createCollection('slow', { vectors: { size: 2, distance: 'Dot' } });
  await client.upsert('slow', { wait: true, points: [{ id: 1, vector: [1, 0], payload: { city: 'Paris', n: 3 } }] });
  await client.api().clearIssues({});
  const filter = { must: [{ key: 'city', match: { value: 'Paris' } }, { key: 'n', range: { gte: 1 } }] };
  assert.deepEqual(await client.count('slow', { filter }), { count: 1 });
  const report = (await client.api().getIssues({})).data.result;
  const ids = report.issues.map((i) => i.id).sort();
  assert.deepEqual(ids, ['UNINDEXED_FIELD/slow/city', 'UNINDEXED_FIELD/slow/n']);
  const city = report.issues.find((i) => i.id === 'UNINDEXED_FIELD/slow/city');
  assert.equal(city.related_collection, 'slow');
  const action = city.solution.immediate.action;
  assert.deepEqual([action.method, action.uri, action.body], ['PUT', '/collections/slow/index', { field_name: 'city', field_schema: 'keyword' }]);
  await client.createPayloadIndex('slow', { wait: true, ...action.body });
  await client.count('slow', { filter });
  const left = (await client.api().getIssues({})).data.result.issues.map((i) => i.id);
  assert.deepEqual(left, ['UNINDEXED_FIELD/slow/n']);
  await client.api().clearIssues({});
  assert.deepEqual((await client.api().getIssues({})).data.result.issues, []);
});
