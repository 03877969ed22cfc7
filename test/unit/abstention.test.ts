import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildIndexEntries, confidentProfile, decideInjection, neighbourAgreement, type MemoryItem } from '../../src/core';
import { hashEmbed, TermWeights } from '../../src/engines/embeddings';

const item = (id: string, embedding: number[], attributes: string[], gain = 5): MemoryItem => ({ id, prompt: `prompt ${id}`, embedding, attributes, gain });

test('a choice nothing explains stays in the index (as an entry without attributes); a low-gain set does not', () => {
  const entries = buildIndexEntries([
    { pairId: 'none', prompt: 'a', attributes: [], objective: 1, gain: 0 },
    { pairId: 'low', prompt: 'b', attributes: ['Formal'], objective: 1, gain: -2 },
    { pairId: 'good', prompt: 'c', attributes: ['Concise'], objective: 3, gain: 2 },
  ]);
  assert.deepEqual(entries.map((e) => [e.pairId, e.attributes]), [['none', []], ['good', ['Concise']]]);
});

test('the confident profile counts unexplained entries in the denominator', () => {
  const entries = [{ attributes: ['Concise', 'Direct'] }, { attributes: ['Concise'] }, { attributes: [] }, { attributes: ['Humor'] }];
  assert.deepEqual(confidentProfile(entries, 0.5, 3), ['Concise']);
  assert.deepEqual(confidentProfile(entries, 0.25, 1), ['Concise']);
  assert.deepEqual(confidentProfile([{ attributes: [] }, { attributes: [] }, { attributes: ['Humor'] }], 0.5, 3), []);
});

test('decideInjection: nearest when similar, agreeing and explained; otherwise the profile or nothing, with the reason', () => {
  const items = [item('a', [1, 0, 0], ['Concise', 'Direct']), item('b', [0.9, 0.1, 0], ['Concise']), item('c', [0, 1, 0], ['Humor']), item('d', [0, 0, 1], ['Concise'])];
  const near = decideInjection([1, 0.05, 0], items, { similarityFloor: 0.2, minAgreement: 0.5, neighbors: 2 });
  assert.deepEqual([near.source, near.attributes, near.reason], ['nearest', ['Concise', 'Direct'], undefined]);
  assert.equal(near.agreement, 1);
  // Orthogonal to everything stored but d... and below the floor for a query far from all.
  const far = decideInjection([-1, -1, -1], items, { similarityFloor: 0.2 });
  assert.deepEqual([far.source, far.attributes, far.reason], ['profile', ['Concise'], 'dissimilar']);
  // Nearest two disagree (Humor vs Concise, equal weight): below an agreement of 0.6.
  const split = decideInjection([0.5, 0.5, 0], [item('b', [0.9, 0.1, 0], ['Concise']), item('c', [0.1, 0.9, 0], ['Humor'])], { similarityFloor: 0, minAgreement: 0.6, neighbors: 2, profileConfidence: 0.5 });
  assert.equal(split.reason, 'disagree');
  assert.deepEqual([split.source, split.attributes], ['profile', ['Concise', 'Humor']]);
  // The nearest choice was explained by nothing: inject nothing, even though the profile has Concise.
  const unexplained = decideInjection([0, 0, 1], [...items.slice(0, 2), item('e', [0, 0.1, 1], [], 0)], { similarityFloor: 0, minAgreement: 0, neighbors: 1 });
  assert.deepEqual([unexplained.source, unexplained.attributes, unexplained.reason], ['none', [], 'unexplained']);
  // A weak nearest entry falls back; with no confident attribute the fallback is nothing.
  const weak = decideInjection([0, 1, 0], [item('c', [0, 1, 0], ['Humor'], 0.5), item('x', [1, 0, 0], [])], { minEntryGain: 1, similarityFloor: 0, minAgreement: 0, profileConfidence: 0.6 });
  assert.deepEqual([weak.source, weak.attributes, weak.reason], ['none', [], 'weak']);
  assert.deepEqual(decideInjection([1, 0, 0], []).reason, 'no-entries');
  // k caps what is injected.
  assert.deepEqual(decideInjection([1, 0, 0], items, { k: 1, similarityFloor: 0 }).attributes, ['Concise']);
});

test('neighbour agreement is similarity-weighted and treats two unexplained entries as agreeing', () => {
  const n = (similarity: number, attributes: string[]) => ({ id: 'x', prompt: 'p', similarity, attributes });
  assert.equal(neighbourAgreement([n(0.8, ['A']), n(0.2, ['B'])]), 0.8);
  assert.equal(neighbourAgreement([n(0.5, []), n(0.5, [])]), 1);
  assert.equal(neighbourAgreement([n(0.5, []), n(0.5, ['A'])]), 0.5);
  assert.equal(neighbourAgreement([]), 0);
});

test('term weights learned from the user prompts lower words every prompt shares', () => {
  const corpus = ['Hi! How do I cook rice? Thanks!', 'Hi! How do I fix my bike? Thanks!', 'Hi! How do I plan a trip to Rome? Thanks!'];
  const terms = new TermWeights(corpus);
  assert.ok(terms.weight('w:thanks') < terms.weight('w:rice'));
  assert.equal(terms.weight('w:never-seen'), Math.log(4) + 1);
  // A query sharing only the filler with one prompt and a content word with another moves towards the content word.
  const query = 'Hi! Any tips for rice? Thanks!';
  const cos = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i]!, 0);
  const plainRice = cos(hashEmbed(query), hashEmbed(corpus[0]!));
  const weightedRice = cos(hashEmbed(query, 512, terms), hashEmbed(corpus[0]!, 512, terms));
  const plainBike = cos(hashEmbed(query), hashEmbed(corpus[1]!));
  const weightedBike = cos(hashEmbed(query, 512, terms), hashEmbed(corpus[1]!, 512, terms));
  assert.ok(weightedRice - weightedBike > plainRice - plainBike, `${weightedRice - weightedBike} vs ${plainRice - plainBike}`);
});
