/**
 * What learning one choice costs through a server, in HTTP requests and time, against in-process
 * llama.cpp on the same model, all measured in one run:
 *
 *   llama.cpp       — LlamaScorer (worker thread, in-process llama.cpp): no HTTP;
 *   vLLM            — VllmScorer through the vLLM-compatible test server (test/support/vllmServer.ts);
 *   Ollama fallback — OllamaLogprobScorer through the Ollama-compatible test server.
 *
 * Both servers run the same model with LlamaEngine on this machine's CPU, so their times are
 * those of this machine, not of a GPU server: what carries over is the number of requests and how
 * close the scores are. The vLLM test server scores every prompt token (as vLLM does), about twice
 * the tokens of the in-process scorer, which only scores the response. Requests are counted at
 * the servers; the scorers' once-only requests (model format, end-marker ids) happen in a warm-up
 * outside the timing and are reported separately.
 *
 * Data: held-out prompts of the attribute world the fixture model was trained on (seed 7),
 * chosen = the Concise response, rejected = the Storyteller one; greedy selection, k = 3, the 42
 * built-in attributes.
 *
 *   npm run bench:vllm [-- --pairs 2] [--no-ollama] [--threads 1] [--model file.gguf]
 *
 * Writes bench/results/vllm.{md,json}.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ATTRIBUTE_NAMES, greedySelect, type LogLikelihoodScorer, type PairText, type SelectionResult } from '../src/core';
import { LlamaEngine } from '../src/engines/llama/llamaEngine';
import { LlamaScorer } from '../src/engines/llama/llamaScorer';
import { OllamaClient } from '../src/engines/ollama/client';
import { resolveOllamaConfig } from '../src/engines/ollama/config';
import { OllamaLogprobScorer } from '../src/engines/ollama/logprobScorer';
import { resolveVllmConfig, VllmClient } from '../src/engines/vllm/client';
import { VllmScorer } from '../src/engines/vllm/scorer';
import { heldOutPrompts, writeResponse } from '../tools/attribute-world/corpus';
import { OllamaTestServer, testModelPath } from '../test/support/ollamaServer';
import { VllmTestServer } from '../test/support/vllmServer';

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    pairs: { type: 'string', default: '2' },
    threads: { type: 'string', default: '1' },
    'no-ollama': { type: 'boolean', default: false },
  },
});
const modelPath = values.model ?? testModelPath().path;
const threads = Math.max(1, Number(values.threads));
const pairs: PairText[] = heldOutPrompts(7, Math.max(1, Number(values.pairs))).map((p, i) => ({
  prompt: p.text,
  chosen: writeResponse(p, ['Concise'], i),
  rejected: writeResponse(p, ['Storyteller'], i),
}));

interface Row {
  scorer: string;
  msPerChoice: number;
  requestsPerChoice: number;
  onceRequests: number;
  attributes: string[][];
  sameSelection: string;
  maxObjectiveDiff: number | null;
}

async function run(name: string, scorer: LogLikelihoodScorer, countRequests: () => number, reference?: SelectionResult[]): Promise<{ row: Row; results: SelectionResult[] }> {
  const before = countRequests();
  await scorer.scoreBatch([{ prompt: 'Warm up.', attributes: [], response: 'Fine.' }]);
  const once = countRequests() - before;
  const start = countRequests();
  const results: SelectionResult[] = [];
  const t0 = performance.now();
  for (const pair of pairs) results.push(await greedySelect(scorer, pair, ATTRIBUTE_NAMES, { k: 3 }));
  const ms = (performance.now() - t0) / pairs.length;
  const same = reference === undefined ? pairs.length : results.filter((r, i) => r.attributes.join() === reference[i]!.attributes.join()).length;
  let diff: number | null = null;
  if (reference !== undefined) {
    diff = 0;
    results.forEach((r, i) => {
      const ref = reference[i]!;
      diff = Math.max(diff!, Math.abs(r.baseObjective - ref.baseObjective), ...r.steps.map((s, j) => (ref.steps[j] === undefined ? 0 : Math.abs(s.objective - ref.steps[j]!.objective))));
    });
  }
  return {
    results,
    row: {
      scorer: name,
      msPerChoice: Math.round(ms),
      requestsPerChoice: (countRequests() - start) / pairs.length,
      onceRequests: once,
      attributes: results.map((r) => r.attributes),
      sameSelection: `${same}/${pairs.length}`,
      maxObjectiveDiff: diff,
    },
  };
}

const rows: Row[] = [];
const worker = fileURLToPath(new URL('../src/engines/llama/scorerWorker.ts', import.meta.url));
const llama = new LlamaScorer({ modelPath, workerPath: worker, engine: { threads, contextSize: 1024 } });
await llama.info();
const local = await run('llama.cpp (in-process)', llama, () => 0);
rows.push(local.row);
await llama.dispose();

const engine = await LlamaEngine.load(modelPath, { threads, contextSize: 1024 });
const vllmServer = await VllmTestServer.start({ engine });
const vllm = await run('vLLM server (prompt_logprobs)', new VllmScorer(new VllmClient(resolveVllmConfig({ baseUrl: vllmServer.url, model: vllmServer.model }))), () => vllmServer.requests.length, local.results);
rows.push(vllm.row);
await vllmServer.close();

if (!values['no-ollama']) {
  const ollamaServer = await OllamaTestServer.start({ engine, openapi: false });
  const client = new OllamaClient(resolveOllamaConfig({ host: ollamaServer.url, model: ollamaServer.modelName, numCtx: 1024 }, {}));
  const fallback = new OllamaLogprobScorer(client);
  rows.push((await run('Ollama fallback (forced generation)', fallback, () => ollamaServer.requests.length, local.results)).row);
  await ollamaServer.close();
}
await engine.dispose();

const base = rows[0]!.msPerChoice;
const lines = [
  '# Learning one choice through a server',
  '',
  `Command: \`npm run bench:vllm -- --pairs ${pairs.length} --threads ${threads}${values['no-ollama'] ? ' --no-ollama' : ''}\`. Model: ${modelPath.split('/').pop()}. ${pairs.length} held-out attribute-world pairs (seed 7; chosen Concise, rejected Storyteller), greedy k = 3 over the 42 attributes. Both servers are the project's test servers running the same model on this machine's CPU (LlamaEngine, ${threads} thread${threads === 1 ? '' : 's'}); other jobs may have shared the machine. Times are ratios within this run, not GPU-server times.`,
  '',
  '| scorer | HTTP requests per choice | warm-up requests (once per scorer: format, end marker, one tiny batch) | ms per choice | time vs in-process | same attributes as in-process | largest objective difference (nats) |',
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ...rows.map((r) => `| ${r.scorer} | ${r.requestsPerChoice} | ${r.onceRequests} | ${r.msPerChoice.toLocaleString('en-US')} | ${(r.msPerChoice / base).toFixed(2)}x | ${r.sameSelection} | ${r.maxObjectiveDiff === null ? '(reference)' : r.maxObjectiveDiff.toExponential(1)} |`),
  '',
];
mkdirSync(fileURLToPath(new URL('./results/', import.meta.url)), { recursive: true });
writeFileSync(fileURLToPath(new URL('./results/vllm.md', import.meta.url)), lines.join('\n'));
writeFileSync(fileURLToPath(new URL('./results/vllm.json', import.meta.url)), `${JSON.stringify({ pairs, rows }, null, 2)}\n`);
console.log(lines.join('\n'));
