/**
 * Per-pair indexing time with each scorer on the same model:
 *   llama.cpp — LlamaScorer (worker thread, in-process llama.cpp), exact;
 *   ollama    — OllamaLogprobScorer through the Ollama-compatible test server (which runs the
 *               same model with LlamaEngine), the fallback for Ollama on another machine.
 * One "pair" is a preference pair indexed the way the extension does it: greedy selection
 * (Algorithm 1, k = 3) over the 42-attribute library, or lazy greedy with --lazy.
 *
 *   node --import tsx test/support/ollamaBench.ts [--model path.gguf] [--pairs 2] [--lazy] [--threads 2] [--world]
 *
 * --world takes the pairs from the attribute world the fixture model was trained on (held-out
 * prompts; chosen = the Concise response, rejected = the Storyteller one); without it, three
 * hand-written general pairs.
 *
 * Prints one JSON line per scorer with milliseconds per pair, scored sequences, and for the
 * fallback its requests, exact and missed tokens, and how far its objective values were from
 * llama.cpp's.
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ATTRIBUTE_NAMES, greedySelect, lazyGreedySelect, type LogLikelihoodScorer, type PairText, type SelectionResult } from '../../src/core';
import { LlamaEngine } from '../../src/engines/llama/llamaEngine';
import { LlamaScorer } from '../../src/engines/llama/llamaScorer';
import { OllamaClient } from '../../src/engines/ollama/client';
import { resolveOllamaConfig } from '../../src/engines/ollama/config';
import { OllamaLogprobScorer } from '../../src/engines/ollama/logprobScorer';
import { heldOutPrompts, writeResponse } from '../../tools/attribute-world/corpus';
import { OllamaTestServer, testModelPath } from './ollamaServer';

const PAIRS: PairText[] = [
  {
    prompt: 'How do I boil an egg?',
    chosen: 'Put the egg in boiling water for nine minutes, then cool it in cold water.',
    rejected: 'Eggs are fun! Just boil them until they look done, friend.',
  },
  {
    prompt: 'Write a short note declining a meeting.',
    chosen: 'Thank you for the invitation. I cannot attend, but please share the notes.',
    rejected: 'nah cant make it lol',
  },
  {
    prompt: 'Explain recursion to a child.',
    chosen: 'It is like a set of nesting dolls: each doll holds a smaller one, until the smallest.',
    rejected: 'Recursion is a function that calls itself with a smaller input until a base case.',
  },
];

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    pairs: { type: 'string', default: '1' },
    lazy: { type: 'boolean', default: false },
    threads: { type: 'string', default: '2' },
    world: { type: 'boolean', default: false },
  },
});
const worldPairs = (n: number): PairText[] =>
  heldOutPrompts(7, n).map((p, i) => ({ prompt: p.text, chosen: writeResponse(p, ['Concise'], i), rejected: writeResponse(p, ['Storyteller'], i) }));
const modelPath = values.model ?? testModelPath().path;
const nPairs = Math.max(1, Number(values.pairs));
const pairs = values.world ? worldPairs(nPairs) : PAIRS.slice(0, Math.min(PAIRS.length, nPairs));
const threads = Number(values.threads);
const select = (scorer: LogLikelihoodScorer, pair: PairText): Promise<SelectionResult> =>
  values.lazy ? lazyGreedySelect(scorer, pair, ATTRIBUTE_NAMES, { k: 3 }) : greedySelect(scorer, pair, ATTRIBUTE_NAMES, { k: 3 });

const worker = fileURLToPath(new URL('../../src/engines/llama/scorerWorker.ts', import.meta.url));
const llama = new LlamaScorer({ modelPath, workerPath: worker, engine: { threads, contextSize: 1024 } });
await llama.info(); // load outside the timing
const llamaResults: SelectionResult[] = [];
let t0 = performance.now();
for (const pair of pairs) llamaResults.push(await select(llama, pair));
const llamaMs = (performance.now() - t0) / pairs.length;
await llama.dispose();
console.log(
  JSON.stringify({
    scorer: 'llama.cpp',
    model: modelPath,
    mode: values.lazy ? 'lazy-greedy' : 'greedy',
    msPerPair: Math.round(llamaMs),
    sequencesPerPair: llamaResults.reduce((s, r) => s + r.scoredSequences, 0) / pairs.length,
    attributes: llamaResults.map((r) => r.attributes),
  }),
);

const engine = await LlamaEngine.load(modelPath, { threads, contextSize: 1024 });
const server = await OllamaTestServer.start({ engine, openapi: false });
const client = new OllamaClient(resolveOllamaConfig({ host: server.url, model: server.modelName, numCtx: 1024 }, {}));
const fallback = new OllamaLogprobScorer(client);
const ollamaResults: SelectionResult[] = [];
t0 = performance.now();
for (const pair of pairs) ollamaResults.push(await select(fallback, pair));
const ollamaMs = (performance.now() - t0) / pairs.length;
const sameSelection = ollamaResults.filter((r, i) => r.attributes.join() === llamaResults[i]!.attributes.join()).length;
const shared = ollamaResults.reduce((s, r, i) => s + r.attributes.filter((a) => llamaResults[i]!.attributes.includes(a)).length, 0);
const selected = llamaResults.reduce((s, r) => s + r.attributes.length, 0);
console.log(
  JSON.stringify({
    scorer: 'ollama-fallback',
    model: modelPath,
    mode: values.lazy ? 'lazy-greedy' : 'greedy',
    msPerPair: Math.round(ollamaMs),
    sequencesPerPair: ollamaResults.reduce((s, r) => s + r.scoredSequences, 0) / pairs.length,
    requestsPerPair: fallback.totals.requests / pairs.length,
    exactTokens: fallback.totals.exact,
    missedTokens: fallback.totals.missed,
    missRate: Number((fallback.totals.missed / Math.max(1, fallback.totals.exact + fallback.totals.missed)).toFixed(3)),
    attributes: ollamaResults.map((r) => r.attributes),
    sameSelectionAsLlamaCpp: `${sameSelection}/${pairs.length}`,
    attributesSharedWithLlamaCpp: `${shared}/${selected}`,
  }),
);
await server.close();
await engine.dispose();
