/**
 * Measures the llama.cpp scorer on random-weight models: scoring throughput, what prefix reuse
 * buys, and the per-token cost of a real-sized (32k) vocabulary.
 *
 *   node --import tsx test/support/llamaBench.ts [--quick]
 *
 * Prints one line per measurement (median of a few runs) plus the machine's load average, since
 * on a shared machine other work changes the numbers a lot.
 */
import { existsSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { ScoreRequest } from '../../src/core';
import { ATTRIBUTE_NAMES } from '../../src/core';
import { LlamaEngine, type LlamaEngineOptions } from '../../src/engines/llama/llamaEngine';
import { randomLlamaModelPath, type RandomLlamaOptions } from './randomGguf';

const quick = process.argv.includes('--quick');
const runs = quick ? 1 : 3;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** A greedy round as the core sends it: K attribute sets x 2 responses for one prompt. */
function greedyRound(promptWords: number, k: number): ScoreRequest[] {
  const prompt = `Please help me with the following. ${'Here is some more context about my situation. '.repeat(Math.max(1, Math.round(promptWords / 8)))}What should I do?`;
  const chosen = 'Start small: write down the three things that matter most, then do the first one today.';
  const rejected = 'There are many possible approaches to consider, and it really depends on a variety of factors in your life.';
  const sets = [[], ...ATTRIBUTE_NAMES.slice(0, k).map((a) => [a])];
  return sets.flatMap((attributes) => [chosen, rejected].map((response) => ({ prompt, attributes, response })));
}

async function measure(model: RandomLlamaOptions | string, engineOptions: LlamaEngineOptions, batch: ScoreRequest[]): Promise<{ ms: number; scored: number; evaluated: number; reused: number; perScored: number }> {
  const path = typeof model === 'string' ? model : randomLlamaModelPath(model);
  const engine = await LlamaEngine.load(path, { contextSize: 1024, ...engineOptions });
  try {
    await engine.score(batch.slice(0, 2)); // warm up
    const times: number[] = [];
    let stats = engine.scoreStats;
    for (let i = 0; i < runs; i++) {
      engine.resetStats();
      const t = performance.now();
      await engine.score(batch);
      times.push(performance.now() - t);
      stats = engine.scoreStats;
    }
    const ms = median(times);
    return { ms, scored: stats.scoredTokens, evaluated: stats.evaluatedTokens, reused: stats.reusedTokens, perScored: ms / stats.scoredTokens };
  } finally {
    await engine.dispose();
  }
}

function line(label: string, r: Awaited<ReturnType<typeof measure>>): void {
  console.log(
    `${label.padEnd(44)} ${r.ms.toFixed(0).padStart(6)} ms  ${((r.scored / r.ms) * 1000).toFixed(0).padStart(6)} scored tok/s  ` +
      `${r.perScored.toFixed(2)} ms/scored tok  evaluated ${r.evaluated}, reused ${r.reused}  (load ${loadavg()[0]!.toFixed(1)})`,
  );
}

console.log(`cores ${availableParallelism()}, runs per line ${runs}, load average at start ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);

// Building models: the 32k-vocabulary one is what a per-token cost benchmark needs.
for (const opts of [{ vocabSize: 512 }, { vocabSize: 32000, embeddingLength: 128, layers: 2 }] as RandomLlamaOptions[]) {
  const t0 = performance.now();
  randomLlamaModelPath({ ...opts, seed: 1000 + Math.floor(Math.random() * 1e6) }, '/tmp/exact-random-gguf-bench');
  console.log(`build + write random model ${JSON.stringify(opts)}: ${(performance.now() - t0).toFixed(0)} ms`);
}

const small: RandomLlamaOptions = { seed: 7 };
const longRound = greedyRound(96, 20); // ~300-token prompt, 42 sequences
const shortRound = greedyRound(8, 20);

line('512 vocab, short prompt, reuse', await measure(small, {}, shortRound));
line('512 vocab, short prompt, no reuse', await measure(small, { prefixReuse: false }, shortRound));
line('512 vocab, long prompt, reuse', await measure(small, {}, longRound));
line('512 vocab, long prompt, no reuse', await measure(small, { prefixReuse: false }, longRound));
line('512 vocab, long prompt, reuse, 2 threads', await measure(small, { threads: 2 }, longRound));

const wide: RandomLlamaOptions = { seed: 7, vocabSize: 32000, embeddingLength: 128, layers: 2 };
line('32k vocab (d128), short prompt, reuse', await measure(wide, {}, shortRound));
line('32k vocab (d128), long prompt, reuse', await measure(wide, {}, longRound));
line('32k vocab (d128), long prompt, no reuse', await measure(wide, { prefixReuse: false }, longRound));

// The project's trained fixture (1024-token vocabulary), when it is there.
const fixture = process.env.EXACT_FIXTURE_MODEL ?? fileURLToPath(new URL('../fixtures/model/exact-tiny.gguf', import.meta.url));
if (existsSync(fixture)) {
  line('fixture model, short prompt, reuse', await measure(fixture, {}, shortRound));
  line('fixture model, long prompt, reuse', await measure(fixture, {}, longRound));
  line('fixture model, long prompt, no reuse', await measure(fixture, { prefixReuse: false }, longRound));
}
