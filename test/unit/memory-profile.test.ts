import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  DimensionMismatchError,
  attributeFrequencies,
  buildIndexEntries,
  cosineSimilarity,
  deduplicateByPrompt,
  filterLowGain,
  globalProfile,
  modelingAccuracy,
  nearestNeighbors,
  retrieveAttributes,
  topicModes,
  voteAttributes,
  type MemoryItem,
  type PairSelection,
} from '../../src/core';
import { SetFunctionScorer, modular } from './helpers';

const sel = (pairId: string, prompt: string, attributes: string[], objective: number, gain: number): PairSelection => ({
  pairId,
  prompt,
  attributes,
  objective,
  gain,
});

test('deduplication keeps, per prompt, the selection with the largest objective', () => {
  const out = deduplicateByPrompt([
    sel('p1', 'boil an egg', ['Concise'], 1, 1),
    sel('p2', 'plan a trip', ['Vivid'], 3, 2),
    sel('p3', 'boil an egg', ['Formal'], 5, 0.5),
    sel('p4', 'boil an egg', ['Humor'], 5, 4),
  ]);
  assert.deepEqual(out.map((e) => [e.pairId, e.prompt, e.attributes]), [
    ['p3', 'boil an egg', ['Formal']],
    ['p2', 'plan a trip', ['Vivid']],
  ]);
  assert.deepEqual(out[0]!.duplicatePairIds, ['p1', 'p4']);
});

test('low-gain pairs are filtered (gain must exceed the threshold) before deduplication', () => {
  const s = [sel('a', 'x', ['A'], 1, 0), sel('b', 'y', ['B'], 1, 0.2), sel('c', 'y', ['C'], 9, -1), sel('d', 'z', ['D'], 1, 1)];
  assert.deepEqual(filterLowGain(s).map((e) => e.pairId), ['b', 'd']);
  assert.deepEqual(filterLowGain(s, 0.5).map((e) => e.pairId), ['d']);
  // c has the larger objective for prompt y but a negative gain: filtering comes first
  assert.deepEqual(buildIndexEntries(s).map((e) => e.pairId), ['b', 'd']);
});

test('cosine similarity: values, zero vectors and dimension mismatch', () => {
  assert.equal(cosineSimilarity([1, 0], [1, 0]), 1);
  assert.equal(cosineSimilarity([1, 0], [0, 2]), 0);
  assert.ok(Math.abs(cosineSimilarity([1, 1], [-2, -2]) + 1) < 1e-12);
  assert.equal(cosineSimilarity([0, 0, 0], [1, 2, 3]), 0);
  assert.equal(cosineSimilarity([0, 0], [0, 0]), 0);
  assert.throws(() => cosineSimilarity([1, 2, 3], [1, 2]), (e: unknown) => e instanceof DimensionMismatchError && /re-index/.test(e.message));
});

const items: MemoryItem[] = [
  { id: 'cook1', prompt: 'how long to boil eggs', embedding: [1, 0.1, 0], attributes: ['Concise', 'Direct'] },
  { id: 'trip1', prompt: 'plan a week in Rome', embedding: [0, 1, 0.1], attributes: ['Vivid', 'Storyteller'] },
  { id: 'cook2', prompt: 'how to bake bread', embedding: [0.9, 0.2, 0], attributes: ['Concise', 'Analytic'] },
  { id: 'trip2', prompt: 'plan a week in Rome', embedding: [0, 1, 0.1], attributes: ['Humor'] },
];

test('top-1 retrieval returns the attributes of the most similar prompt; ties keep storage order', () => {
  const r = retrieveAttributes([1, 0, 0], items);
  assert.equal(r.source, 'nearest');
  assert.deepEqual(r.attributes, ['Concise', 'Direct']);
  assert.equal(r.neighbors[0]!.id, 'cook1');
  const tie = retrieveAttributes([0, 1, 0.1], items);
  assert.equal(tie.neighbors[0]!.id, 'trip1');
  assert.deepEqual(tie.attributes, ['Vivid', 'Storyteller']);
  assert.deepEqual(nearestNeighbors([0, 1, 0.1], items, 2).map((n) => n.id), ['trip1', 'trip2']);
});

test('retrieval with a dimension mismatch fails with a clear error', () => {
  assert.throws(() => retrieveAttributes([1, 0], items), /2 dimensions but the stored ones have 3/);
});

test('a zero query vector is similar to nothing: the floor sends it to the global profile', () => {
  const r = retrieveAttributes([0, 0, 0], items, { similarityFloor: 0.1, globalProfile: ['Concise'] });
  assert.equal(r.source, 'global');
  assert.deepEqual(r.attributes, ['Concise']);
  assert.ok(r.neighbors.every((n) => n.similarity === 0));
});

test('similarity floor: far prompts use the global profile, near ones use retrieval', () => {
  const opts = { similarityFloor: 0.8, globalProfile: ['Formal', 'Concise'] };
  assert.equal(retrieveAttributes([0, 0, 1], items, opts).source, 'global');
  assert.deepEqual(retrieveAttributes([0, 0, 1], items, opts).attributes, ['Formal', 'Concise']);
  assert.equal(retrieveAttributes([1, 0, 0], items, opts).source, 'nearest');
  assert.equal(retrieveAttributes([0, 0, 1], items, { similarityFloor: 0.8 }).source, 'none');
  assert.equal(retrieveAttributes([1, 0, 0], [], {}).source, 'none');
});

test('top-m vote weighs attributes by similarity', () => {
  const r = retrieveAttributes([1, 0.15, 0], items, { mode: 'vote', m: 3, k: 2 });
  assert.equal(r.source, 'vote');
  assert.deepEqual(r.attributes, ['Concise', 'Direct']);
  assert.deepEqual(
    voteAttributes(
      [
        { id: '1', prompt: '', similarity: 0.9, attributes: ['A', 'B'] },
        { id: '2', prompt: '', similarity: 0.5, attributes: ['C', 'B'] },
        { id: '3', prompt: '', similarity: 0.5, attributes: ['C'] },
        { id: '4', prompt: '', similarity: -0.7, attributes: ['D'] },
      ],
      4,
    ),
    ['B', 'C', 'A'],
  );
});

test('attribute frequencies and the global profile', () => {
  const f = attributeFrequencies(items);
  assert.deepEqual(f.slice(0, 2).map((c) => [c.attribute, c.count, c.share]), [
    ['Concise', 2, 0.5],
    ['Direct', 1, 0.25],
  ]);
  assert.deepEqual(globalProfile(items, 1), ['Concise']);
  assert.deepEqual(attributeFrequencies([]), []);
});

test('topic modes group similar prompts and summarise their attributes', () => {
  const modes = topicModes(items, 0.7);
  assert.equal(modes.length, 2);
  assert.deepEqual(modes.map((m) => m.memberIds), [
    ['cook1', 'cook2'],
    ['trip1', 'trip2'],
  ]);
  assert.equal(modes[0]!.attributes[0]!.attribute, 'Concise');
  assert.equal(modes[0]!.attributes[0]!.count, 2);
  assert.equal(topicModes(items, 0.995).length, 3);
  assert.equal(topicModes(items, -1).length, 1);
});

test('modeling accuracy counts held-out pairs whose injected attributes widen the gap', async () => {
  const scorer = new SetFunctionScorer(modular({ Good: 1, Bad: -1 }));
  const pairs = ['a', 'b', 'c', 'd'].map((prompt) => ({ prompt, chosen: 'CHOSEN', rejected: 'REJECTED' }));
  const inject: Record<string, string[]> = { a: ['Good'], b: ['Bad'], c: [], d: ['Good', 'Bad', 'Good'] };
  const report = await modelingAccuracy(scorer, pairs, (p) => inject[p.prompt]!);
  assert.deepEqual(report.gains, [1, -1, 0, 1]);
  assert.equal(report.improved, 2);
  assert.equal(report.accuracy, 0.5);
});

// Kills the mutations "a vote lets negative similarities count" (dropping max(s, 0), or using |s|).
test('in a vote, a neighbour with negative similarity neither adds to nor takes from any attribute', () => {
  const n = (similarity: number, attributes: string[]) => ({ id: String(similarity), prompt: '', similarity, attributes });
  // Without the clamp A would drop to 0.2 and lose to B.
  assert.deepEqual(voteAttributes([n(0.6, ['A']), n(0.5, ['B']), n(-0.4, ['A'])], 1), ['A']);
  // With |s| B would get 0.9 and win.
  assert.deepEqual(voteAttributes([n(0.3, ['A']), n(-0.9, ['B'])], 2), ['A']);
  assert.deepEqual(voteAttributes([n(-0.5, ['C'])], 3), [], 'only negative neighbours: nothing to vote for');
});

// Kills the mutation "< floor" -> "<= floor": a best similarity exactly at the floor retrieves.
test('similarity floor boundary: exactly at the floor retrieves, just above it falls back to the profile', () => {
  const stored: MemoryItem[] = [{ id: 'x', prompt: 'x', embedding: [1, 0], attributes: ['Vivid'] }];
  const query = [1, 1];
  const at = cosineSimilarity(query, [1, 0]);
  const opts = { globalProfile: ['Formal'] };
  assert.equal(retrieveAttributes(query, stored, { ...opts, similarityFloor: at }).source, 'nearest');
  const above = at + Number.EPSILON;
  assert.ok(above > at);
  assert.deepEqual(retrieveAttributes(query, stored, { ...opts, similarityFloor: above }), { attributes: ['Formal'], source: 'global', neighbors: [{ id: 'x', prompt: 'x', similarity: at, attributes: ['Vivid'] }] });
});

// Kills the mutation ">= threshold" -> "> threshold" in topic modes.
test('topic threshold boundary: a prompt exactly at the threshold joins the mode, just below it starts its own', () => {
  const two: MemoryItem[] = [
    { id: 'a', prompt: 'a', embedding: [1, 0], attributes: ['A'] },
    { id: 'b', prompt: 'b', embedding: [1, 1], attributes: ['B'] },
  ];
  const at = cosineSimilarity([1, 1], [1, 0]);
  assert.deepEqual(topicModes(two, at).map((m) => m.memberIds), [['a', 'b']]);
  assert.deepEqual(topicModes(two, at + Number.EPSILON).map((m) => m.memberIds), [['a'], ['b']]);
});
