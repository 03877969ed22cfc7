/**
 * Child-process driver for the storage tests (run with `node --import tsx`).
 *
 *   writer <folder> <tag> <count> [chunkBytes] [chunkDelayMs] [nolock]
 *       records <count> pairs and a selection for each (each selection rewrites the index)
 *   torn <folder>
 *       starts one append written in 8-byte pieces, prints PARTIAL after the first piece is on
 *       disk and then waits: the parent kills it mid-append
 *   hold-lock <folder>
 *       takes the memory lock, prints LOCKED, and waits to be killed
 */
import * as path from 'node:path';
import { PreferenceMemory, FileLock, MEMORY_LOCK_FILE } from '../../src/storage';
import { expectedSelection, HashEmbedder, MODELS, testPair } from './storageFakes';

const [mode, folder, ...rest] = process.argv.slice(2);

async function main(): Promise<void> {
  if (folder === undefined) throw new Error('usage: storageChild <mode> <folder> ...');
  if (mode === 'writer') {
    const [tag = 'w', countText = '10', chunk, delay, nolock] = rest;
    const memory = await PreferenceMemory.open(folder, {
      models: MODELS,
      lock: { timeoutMs: 120_000 },
      debug: {
        ...(chunk !== undefined && chunk !== '0' ? { appendChunkBytes: Number(chunk) } : {}),
        ...(delay !== undefined ? { appendChunkDelayMs: Number(delay) } : {}),
        ...(nolock === 'nolock' ? { unsafeNoLock: true } : {}),
      },
    });
    const embedder = new HashEmbedder();
    for (let i = 0; i < Number(countText); i++) {
      const p = testPair(i, tag);
      await memory.recordPair({ ...p, source: 'drafts' });
      const result = await expectedSelection(p);
      await memory.storeSelection({
        pairId: p.id,
        result,
        embedding: embedder.vector(p.prompt),
        scorerKind: 'fake',
        algorithm: 'greedy',
        k: 2,
        durationMs: 1,
      });
      process.stdout.write(`wrote ${p.id}\n`);
    }
    process.stdout.write('DONE\n');
    return;
  }
  if (mode === 'torn') {
    const memory = await PreferenceMemory.open(folder, {
      models: MODELS,
      debug: { appendChunkBytes: 8, appendChunkDelayMs: 60_000, onPartialAppend: () => process.stdout.write('PARTIAL\n') },
    });
    await memory.recordPair({ ...testPair(999, 'torn'), source: 'drafts' });
    process.stdout.write('UNEXPECTED-COMPLETE\n');
    return;
  }
  if (mode === 'hold-lock') {
    const lock = new FileLock(path.join(folder, MEMORY_LOCK_FILE));
    await lock.acquire();
    process.stdout.write('LOCKED\n');
    await new Promise(() => setTimeout(() => undefined, 1e9));
    return;
  }
  throw new Error(`unknown mode ${mode}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
