/**
 * Retrieval (src/services/retrieval.ts) over a real preference memory on disk. The expected
 * answers are written out by hand or computed by the brute-force oracle below, which shares no
 * code with the core or the service.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SelectionResult } from '../../src/core';
import { PromptRetriever } from '../../src/services/retrieval';
import { PreferenceMemory } from '../../src/storage';
import { MODELS, tempFolder } from '../support/storageFakes';

function result(attributes: string[], gain = 1): SelectionResult {
  return { attributes, objective: gain, baseObjective: 0, gain, steps: [], scorerCalls: 1, scoredSequences: 2, objectiveEvaluations: 1 };
}

async function withEntries(entries: ReadonlyArray<{ id: string; vector: number[]; attributes: string[]; prompt?: string }>, fn: (memory: PreferenceMemory, dir: string) => Promise<void>): Promise<void> {
  const { dir, cleanup } = await tempFolder('exact-retrieval-');
  const memory = await PreferenceMemory.open(dir, { models: MODELS });
  try {
    for (const e of entries) {
      const prompt = e.prompt ?? `prompt ${e.id}`;
      await memory.recordPair({ id: e.id, prompt, chosen: 'c', rejected: 'r' });
      await memory.storeSelection({ pairId: e.id, result: result(e.attributes), embedding: e.vector, scorerKind: 'fake', algorithm: 'greedy', k: e.attributes.length, durationMs: 1, deferIndex: true });
    }
    await fn(memory, dir);
  } finally {
    await memory.close();
    await cleanup();
  }
}

/** The oracle: cosine by definition, a full sort, ties to the earlier entry. */
function oracleRanking(query: number[], rows: ReadonlyArray<{ id: string; vector: number[] }>): Array<{ id: string; similarity: number }> {
  const norm = (v: number[]) => Math.hypot(...v);
  return rows
    .map((r, order) => {
      const denominator = norm(query) * norm(r.vector);
      const dot = query.reduce((s, q, d) => s + q * r.vector[d]!, 0);
      return { id: r.id, order, similarity: denominator === 0 ? 0 : dot / denominator };
    })
    .sort((a, b) => b.similarity - a.similarity || a.order - b.order)
    .map(({ id, similarity }) => ({ id, similarity }));
}

test('top-1 takes the nearest prompt\'s attributes; its similarity is the cosine', async () => {
  await withEntries(
    [
      { id: 'x', vector: [1, 0, 0], attributes: ['Formal'] },
      { id: 'y', vector: [0, 1, 0], attributes: ['Humor', 'Vivid'] },
    ],
    async (memory) => {
      const r = await new PromptRetriever(memory).retrieve([1, 1, 0.5]);
      assert.equal(r.source, 'nearest');
      assert.deepEqual(r.attributes, ['Formal']);
      assert.deepEqual(r.neighbors.map((n) => n.id), ['x']);
      assert.ok(Math.abs(r.neighbors[0]!.similarity - 1 / 1.5) < 1e-15, String(r.neighbors[0]!.similarity));
      const y = await new PromptRetriever(memory).retrieve([0.1, 2, 0]);
      assert.deepEqual(y.attributes, ['Humor', 'Vivid']);
      await assert.rejects(new PromptRetriever(memory).retrieve([1, 0]), { name: 'DimensionMismatchError' });
    },
  );
});

test('ties go to the entry recorded first, a zero vector is similar to nothing, and it can still be the nearest', async () => {
  await withEntries(
    [
      { id: 'a', vector: [1, 0, 0, 0], attributes: ['Formal'] },
      { id: 'b', vector: [1, 0, 0, 0], attributes: ['Humor'] },
      { id: 'z', vector: [0, 0, 0, 0], attributes: ['Vivid'] },
    ],
    async (memory) => {
      const retriever = new PromptRetriever(memory);
      assert.deepEqual((await retriever.retrieve([2, 0, 0, 0])).attributes, ['Formal']);
      const zero = await retriever.retrieve([0, 0, 0, 0], { mode: 'vote', m: 3 });
      assert.deepEqual(zero.neighbors.map((n) => [n.id, n.similarity]), [['a', 0], ['b', 0], ['z', 0]]);
      // Every weight is 0: nothing to vote for.
      assert.deepEqual(zero.attributes, []);
      // Opposite direction: the zero vector (0) beats the two at -1.
      assert.deepEqual((await retriever.retrieve([-1, 0, 0, 0])).neighbors.map((n) => [n.id, n.similarity]), [['z', 0]]);
    },
  );
});

test('a vote weighs the m nearest by similarity; below the floor the overall profile (most frequent attributes) is used', async () => {
  await withEntries(
    [
      { id: 'p', vector: [1, 0], attributes: ['Concise', 'Direct'] },
      { id: 'q', vector: [1, 1], attributes: ['Concise', 'Humor'] },
      { id: 'r', vector: [0, 1], attributes: ['Humor', 'Vivid'] },
      { id: 's', vector: [-1, 0], attributes: ['Formal'] },
    ],
    async (memory) => {
      const retriever = new PromptRetriever(memory);
      // Query [1, 0]: p 1, q 0.7071, r 0, s -1. Weights: Concise 1.7071, Direct 1, Humor 0.7071.
      const vote = await retriever.retrieve([1, 0], { mode: 'vote', m: 3, k: 2 });
      assert.equal(vote.source, 'vote');
      assert.deepEqual(vote.neighbors.map((n) => n.id), ['p', 'q', 'r']);
      assert.deepEqual(vote.attributes, ['Concise', 'Direct']);
      // Query [-1, 0] is nearest to s (similarity 1): above a 0.9 floor, s's attributes...
      assert.deepEqual((await retriever.retrieve([-1, 0], { similarityFloor: 0.9 })).attributes, ['Formal']);
      // ...while [-1, -1] is at most 0.7071 similar to anything: the profile, k = 2 most frequent
      // (Concise 2, Humor 2, ties in first-seen order).
      const far = await retriever.retrieve([-1, -1], { similarityFloor: 0.9, k: 2 });
      assert.equal(far.source, 'global');
      assert.deepEqual(far.attributes, ['Concise', 'Humor']);
    },
  );
});

test('the same retriever sees new, edited and deleted entries, also when another instance wrote them', async () => {
  await withEntries([{ id: 'a', vector: [1, 0], attributes: ['Formal'] }], async (memory, dir) => {
    const retriever = new PromptRetriever(memory);
    assert.deepEqual((await retriever.retrieve([0, 1])).attributes, ['Formal']);
    const other = await PreferenceMemory.open(dir, { models: MODELS });
    await other.recordPair({ id: 'b', prompt: 'prompt b', chosen: 'c', rejected: 'r' });
    await other.storeSelection({ pairId: 'b', result: result(['Humor']), embedding: [0, 1], scorerKind: 'fake', algorithm: 'greedy', k: 1, durationMs: 1 });
    assert.deepEqual((await retriever.retrieve([0, 1])).attributes, ['Humor'], 'another window\'s selection');
    await other.editAttributes('b', ['Vivid']);
    assert.deepEqual((await retriever.retrieve([0, 1])).attributes, ['Vivid'], 'an edit');
    await memory.deletePair('b');
    assert.deepEqual((await retriever.retrieve([0, 1])).attributes, ['Formal'], 'a deletion');
    await memory.setModels({ model: MODELS.model, embeddingModel: 'another-embedder' });
    assert.deepEqual(await retriever.retrieve([0, 1]), { attributes: [], source: 'none', neighbors: [] }, 'other embedding model: nothing usable');
    await other.close();
  });
});

test('on 400 random entries with duplicates, the ranking matches the brute-force oracle', async () => {
  let seed = 7;
  const random = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 2 - 1;
  const rows = Array.from({ length: 400 }, (_, i) => ({ id: `e${i}`, vector: Array.from({ length: 12 }, () => Math.round(random() * 4) / 4), attributes: [`A${i % 9}`] }));
  rows[17]!.vector = [...rows[3]!.vector]; // an exact tie
  await withEntries(rows, async (memory) => {
    const retriever = new PromptRetriever(memory);
    const stored = (await memory.indexEntries()).map((e) => ({ id: e.pairId, vector: [...e.embedding] }));
    assert.equal(stored.length, 400);
    for (let q = 0; q < 40; q++) {
      const query = q === 0 ? [...rows[3]!.vector] : Array.from({ length: 12 }, random);
      const expected = oracleRanking(query, stored).slice(0, 7);
      const got = (await retriever.retrieve(query, { mode: 'vote', m: 7 })).neighbors;
      assert.deepEqual(got.map((n) => n.id), expected.map((n) => n.id), `query ${q}`);
      for (const [i, n] of got.entries()) assert.ok(Math.abs(n.similarity - expected[i]!.similarity) < 1e-12, `query ${q} rank ${i}`);
    }
    assert.deepEqual((await retriever.retrieve(rows[3]!.vector)).neighbors.map((n) => n.id), ['e3'], 'the tie goes to the earlier entry');
  });
});
