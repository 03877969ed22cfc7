/**
 * Child-process driver for the indexing tests: runs the background indexing queue over a
 * storage folder with a slow deterministic scorer and prints every event as a JSON line.
 *
 *   <folder> <scorerDelayMs>
 */
import { PreferenceMemory } from '../../src/storage';
import { IndexingQueue } from '../../src/services/indexingQueue';
import { HashEmbedder, HashScorer, MODELS, TEST_LIBRARY } from './storageFakes';

const [folder, delay = '0'] = process.argv.slice(2);

async function main(): Promise<void> {
  if (folder === undefined) throw new Error('usage: indexingChild <folder> <scorerDelayMs>');
  const memory = await PreferenceMemory.open(folder, { models: MODELS });
  const queue = new IndexingQueue({
    memory,
    scorer: new HashScorer({ delayMs: Number(delay) }),
    embedder: new HashEmbedder(),
    model: MODELS.model,
    scorerKind: 'fake',
    library: TEST_LIBRARY,
    k: 2,
    algorithm: 'greedy',
    busyRetryMs: 50,
  });
  queue.onEvent((e) => process.stdout.write(JSON.stringify(e) + '\n'));
  const summary = await queue.run();
  process.stdout.write(`SUMMARY ${JSON.stringify(summary)}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
