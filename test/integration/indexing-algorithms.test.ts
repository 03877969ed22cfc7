/**
 * The indexing queue runs each selection algorithm the setting `exact.indexing.algorithm` offers,
 * stores what the core's function selects, and the manifest's default and choices are the
 * queue's (real preference memory; the deterministic fake scorer of test/support/storageFakes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { greedySelect, lazyGreedySelect, screenedGreedySelect, type SelectionResult } from '../../src/core';
import { DEFAULT_INDEXING_ALGORITHM, INDEXING_ALGORITHMS, IndexingQueue, type IndexingAlgorithm } from '../../src/services/indexingQueue';
import { LOG_FILE, PreferenceMemory } from '../../src/storage';
import { HashEmbedder, HashScorer, MODELS, REPO_ROOT, TEST_LIBRARY, tempFolder, testPair } from '../support/storageFakes';

const expected: Record<IndexingAlgorithm, { stored: string; select: (pair: ReturnType<typeof testPair>) => Promise<SelectionResult> }> = {
  greedy: { stored: 'greedy', select: (p) => greedySelect(new HashScorer(), p, TEST_LIBRARY, { k: 2 }) },
  'early-stopping': { stored: 'greedy', select: (p) => greedySelect(new HashScorer(), p, TEST_LIBRARY, { k: 2 }) },
  lazy: { stored: 'lazy', select: (p) => lazyGreedySelect(new HashScorer(), p, TEST_LIBRARY, { k: 2 }) },
  screening: { stored: 'screening', select: (p) => screenedGreedySelect(new HashScorer(), p, TEST_LIBRARY, { k: 2 }) },
};

test('every algorithm the setting offers stores what its selection function selects', async () => {
  for (const algorithm of INDEXING_ALGORITHMS) {
    const { dir, cleanup } = await tempFolder('exact-algorithms-');
    try {
      const memory = await PreferenceMemory.open(dir, { models: MODELS });
      const pairs = [testPair(0), testPair(1), testPair(2)];
      for (const p of pairs) await memory.recordPair(p);
      const queue = new IndexingQueue({ memory, scorer: new HashScorer(), embedder: new HashEmbedder(), model: MODELS.model, scorerKind: 'fake', library: TEST_LIBRARY, k: 2, algorithm });
      const summary = await queue.run();
      assert.equal(summary.done, pairs.length, `${algorithm}: ${summary.error}`);
      const records = (await readFile(path.join(dir, LOG_FILE), 'utf8'))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { type: string; pairId: string; attributes: string[]; objective: number; algorithm: string })
        .filter((r) => r.type === 'selection');
      for (const p of pairs) {
        const r = records.find((x) => x.pairId === p.id)!;
        const want = await expected[algorithm].select(p);
        assert.deepEqual([r.attributes, r.objective, r.algorithm], [want.attributes, want.objective, expected[algorithm].stored], `${algorithm} on ${p.id}`);
      }
    } finally {
      await cleanup();
    }
  }
});

test("the manifest's exact.indexing.algorithm offers the queue's algorithms and defaults to the queue's default", async () => {
  const manifest = JSON.parse(await readFile(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
    contributes: { configuration: { properties: Record<string, { enum?: string[]; enumDescriptions?: string[]; default?: unknown }> } };
  };
  const setting = manifest.contributes.configuration.properties['exact.indexing.algorithm']!;
  assert.deepEqual(setting.enum, [...INDEXING_ALGORITHMS]);
  assert.equal(setting.enumDescriptions?.length, INDEXING_ALGORITHMS.length);
  assert.equal(setting.default, DEFAULT_INDEXING_ALGORITHM);
});
