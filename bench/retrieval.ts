/**
 * Retrieval latency at 100 / 1k / 10k stored prompts: the service (PromptRetriever, what the
 * Personalizer calls) against the core's reference ranking (retrieveAttributes over the same
 * items), with every answer checked equal to the reference (tolerance 0: same neighbours, same
 * similarities, same attributes).
 *
 * Data: distinct synthetic prompts from the attribute world (seed 4242, the same generator as
 * bench:perf), embedded with the built-in local hash embedder; each stored prompt gets 3 of 7
 * attributes. Queries: 50 held-out prompts (seed 77). Leaves out: embedding the query (timed in
 * bench:perf's online share) and generation. One process, Node's performance.now(); p50 / p95
 * over 50 warm queries after one cold query on a freshly opened memory.
 *
 *   npm run bench:retrieval [-- --sizes 100,1000,10000]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { retrieveAttributes, type RetrievalOptions } from '../src/core';
import { LocalHashEmbedder } from '../src/engines/embeddings';
import { PromptRetriever } from '../src/services/retrieval';
import { importData, PreferenceMemory } from '../src/storage';
import { heldOutPrompts } from '../tools/attribute-world/corpus';
import { distinctPrompts, learnedExport } from './lib/storedPrompts';

const sizesArg = process.argv.indexOf('--sizes');
const SIZES = (sizesArg >= 0 ? process.argv[sizesArg + 1]! : '100,1000,10000').split(',').map(Number);
const embedder = new LocalHashEmbedder();
const MODELS = { model: 'exact-tiny', embeddingModel: embedder.id };
async function storedMemory(dir: string, n: number): Promise<void> {
  const prompts = distinctPrompts(n);
  const memory = await PreferenceMemory.open(dir, { models: MODELS });
  await importData(memory, learnedExport(prompts, await embedder.embed(prompts), MODELS));
  await memory.syncIndex();
  await memory.close();
}

const percentile = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const ms = (x: number): string => `${x.toFixed(2)} ms`;

const queries = await embedder.embed(heldOutPrompts(77, 50).map((p) => p.text));
const rows: string[] = [];
for (const n of SIZES) {
  const dir = await mkdtemp(join(tmpdir(), 'exact-bench-retrieval-'));
  try {
    await storedMemory(dir, n);
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    const retriever = new PromptRetriever(memory);
    let t = performance.now();
    await retriever.retrieve(queries[0]!);
    const cold = performance.now() - t;
    const items = await retriever.items();
    const timings: Record<string, number[]> = { top1: [], vote: [], coreTop1: [] };
    let mismatches = 0;
    for (const q of queries) {
      for (const [name, options] of [['top1', { mode: 'top1', k: 3 }], ['vote', { mode: 'vote', m: 5, k: 3 }]] as Array<[string, RetrievalOptions]>) {
        t = performance.now();
        const got = await retriever.retrieve(q, options);
        timings[name]!.push(performance.now() - t);
        const reference = retrieveAttributes(q, items, { ...options, globalProfile: [] });
        if (JSON.stringify(got.neighbors) !== JSON.stringify(reference.neighbors) || JSON.stringify(got.attributes) !== JSON.stringify(reference.attributes)) mismatches++;
      }
      t = performance.now();
      retrieveAttributes(q, items, { mode: 'top1' });
      timings.coreTop1!.push(performance.now() - t);
    }
    await memory.close();
    const p50 = percentile(timings.top1!, 0.5);
    const core50 = percentile(timings.coreTop1!, 0.5);
    rows.push(
      `| ${n} | ${ms(cold)} | ${ms(p50)} / ${ms(percentile(timings.top1!, 0.95))} | ${ms(percentile(timings.vote!, 0.5))} | ${ms(core50)} / ${ms(percentile(timings.coreTop1!, 0.95))} | ${(core50 / p50).toFixed(1)}x | ${mismatches} of ${2 * queries.length} |`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
process.stdout.write(
  [
    `Retrieval, ${embedder.id} (${queries[0]!.length} dimensions), Node ${process.version}:`,
    '',
    '| stored prompts | first retrieval (cold) | PromptRetriever top-1 p50 / p95 | vote (m 5) p50 | core retrieveAttributes top-1 p50 / p95 | core / service | answers differing from the core |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows,
    '',
  ].join('\n'),
);
