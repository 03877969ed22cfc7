/**
 * The indexing queue with the real llama.cpp scorer (worker thread) on a small random model:
 * the stored selections are exactly what greedySelect gives with that scorer, the embeddings
 * come from the same model, and onIdle can release the model.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { greedySelect } from '../../src/core';
import { LlamaScorer } from '../../src/engines/llama/llamaScorer';
import { IndexingQueue } from '../../src/services/indexingQueue';
import { PromptRetriever } from '../../src/services/retrieval';
import { PreferenceMemory } from '../../src/storage';
import { randomLlamaModelPath } from '../support/randomGguf';
import { tempFolder } from '../support/storageFakes';

const WORKER = new URL('../../src/engines/llama/scorerWorker.ts', import.meta.url);
const LIBRARY = ['Concise', 'Formal', 'Vivid', 'Humor'];

test('indexing with LlamaScorer stores the selections greedySelect computes with it, then releases the model', async () => {
  const { dir, cleanup } = await tempFolder('exact-indexing-llama-');
  const scorer = new LlamaScorer({ modelPath: randomLlamaModelPath({ seed: 7 }), workerPath: WORKER, engine: { contextSize: 512 } });
  try {
    const models = { model: 'random-llama-seed-7', embeddingModel: scorer.id };
    const memory = await PreferenceMemory.open(dir, { models });
    const pairs = [
      { id: 'egg', prompt: 'How do I boil an egg?', chosen: 'Boil it for nine minutes.', rejected: 'Eggs are best boiled gently, then cooled.' },
      { id: 'tea', prompt: 'How do I make tea?', chosen: 'Steep for three minutes.', rejected: 'Tea is an ancient drink with many rituals.' },
    ];
    for (const p of pairs) await memory.recordPair(p);
    let releasedAfterIdle = false;
    const queue = new IndexingQueue({
      memory,
      scorer,
      embedder: scorer,
      model: models.model,
      scorerKind: 'llama.cpp',
      library: LIBRARY,
      k: 2,
      algorithm: 'greedy',
      onIdle: async () => {
        await scorer.release();
        releasedAfterIdle = !scorer.modelMayBeLoaded;
      },
    });
    const summary = await queue.run();
    assert.equal(summary.reason, 'complete', summary.error);
    assert.equal(summary.done, 2);
    assert.ok(releasedAfterIdle, 'the idle callback released the model');
    const indexable: string[] = [];
    for (const p of pairs) {
      const direct = await greedySelect(scorer, p, LIBRARY, { k: 2 });
      if (direct.gain > 0) indexable.push(p.id);
      const view = await memory.getPair(p.id);
      assert.deepEqual(
        [view?.selection?.attributes, view?.selection?.objective, view?.selection?.baseObjective, view?.selection?.scorer.kind],
        [direct.attributes, direct.objective, direct.baseObjective, 'llama.cpp'],
      );
    }
    const [vector] = await scorer.embed([pairs[1]!.prompt]);
    const retrieved = await new PromptRetriever(memory).retrieve(vector!, { mode: 'top1' });
    const entries = await memory.indexEntries();
    assert.deepEqual(entries.map((e) => e.pairId), indexable, 'entries with positive gain are indexed');
    assert.deepEqual(entries.map((e) => e.embedding.length), indexable.map(() => vector!.length));
    // A prompt's own embedding finds itself (similarity 1) when it is indexed.
    if (indexable.includes('tea')) assert.deepEqual([retrieved.neighbors[0]?.id, retrieved.neighbors[0]?.similarity.toFixed(6)], ['tea', '1.000000']);
    assert.equal((await memory.verifyIndex()).health, 'ok');
  } finally {
    await scorer.dispose();
    await cleanup();
  }
});

test('the queue passes the chance-level significance to selection: what greedySelect keeps is stored, and an unexplained choice is indexed without attributes', async () => {
  const { dir, cleanup } = await tempFolder('exact-indexing-significance-');
  const scorer = new LlamaScorer({ modelPath: randomLlamaModelPath({ seed: 7 }), workerPath: WORKER, engine: { contextSize: 512 } });
  try {
    const pairs = [
      { id: 'egg', prompt: 'How do I boil an egg?', chosen: 'Boil it for nine minutes.', rejected: 'Eggs are best boiled gently, then cooled.' },
      { id: 'tea', prompt: 'How do I make tea?', chosen: 'Steep for three minutes.', rejected: 'Tea is an ancient drink with many rituals.' },
    ];
    for (const significance of [0.05, 1000]) {
      const models = { model: `random-llama-seed-7-sig-${significance}`, embeddingModel: scorer.id };
      const memory = await PreferenceMemory.open(`${dir}/${significance}`, { models });
      for (const p of pairs) await memory.recordPair(p);
      const queue = new IndexingQueue({ memory, scorer, embedder: scorer, model: models.model, scorerKind: 'llama.cpp', library: LIBRARY, k: 3, significance });
      assert.equal((await queue.run()).reason, 'complete');
      for (const p of pairs) {
        const direct = await greedySelect(scorer, p, LIBRARY, { k: 3, significance });
        const view = await memory.getPair(p.id);
        assert.deepEqual(view?.selection?.attributes, direct.attributes);
        if (significance === 1000) assert.deepEqual(direct.attributes, [], 'nothing clears a bar of 1000 x sqrt(nats)');
      }
      if (significance === 1000) assert.deepEqual((await memory.indexEntries()).map((e) => [e.pairId, e.attributes]), [['egg', []], ['tea', []]]);
      await memory.close();
    }
  } finally {
    await scorer.dispose();
    await cleanup();
  }
});
