/**
 * What the in-process scorer costs in memory: resident memory of the process (Linux
 * /proc/self/status: VmRSS, split into anonymous and file-backed pages) and what node-llama-cpp
 * reports (model weights, llama.cpp's own RAM accounting, its estimate for the scoring context),
 * before loading, while learning (one choice: greedy selection, sampled every 20 ms) and after the
 * release, for both `exact.indexing.memory` policies, on the fixture model and on a larger random
 * model built at run time.
 *
 *   npm run bench:memory            (needs `npm run build`: it runs the bundled dist/scorerWorker.mjs, as the extension does)
 *
 * Each (model, policy) runs in its own child process, so one run's freed-but-kept heap does not
 * count in the next. Writes bench/results/memory.{md,json}.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { ATTRIBUTE_NAMES, greedySelect } from '../src/core';
import type { LlamaMemoryUsage } from '../src/engines/llama/llamaEngine';
import { LlamaScorer, type ModelMemoryPolicy } from '../src/engines/llama/llamaScorer';
import { randomLlamaModelPath } from '../test/support/randomGguf';
import { heldOutPrompts, writeResponse } from '../tools/attribute-world/corpus';
import { round, table, writeJson, writeText } from './lib/report';
import { FIXTURE_MODEL } from './lib/scoring';

const WORKER = resolve('dist/scorerWorker.mjs');
const MB = 1024 * 1024;
/** A larger model: 32k vocabulary, width 512, 8 layers (~60M F32 parameters, ~240 MB file). */
const LARGE = { seed: 11, vocabSize: 32_000, embeddingLength: 512, layers: 8, heads: 8, headsKv: 8, feedForwardLength: 1536, contextLength: 4096 } as const;

interface Resident {
  readonly rssMB: number;
  readonly anonMB: number;
  readonly fileMB: number;
}

interface RunResult {
  readonly model: string;
  readonly policy: ModelMemoryPolicy;
  readonly attributes: number;
  readonly k: number;
  readonly before: Resident;
  readonly loaded: Resident & { readonly llama: LlamaMemoryUsage };
  readonly learningPeak: Resident;
  readonly peakHwmMB: number;
  readonly afterLearning: Resident;
  readonly afterRelease: Resident;
  readonly afterWorkerEnd: Resident;
  readonly learnMs: number;
  readonly scoreCalls: number;
  /** The load before learning (worker start excluded). */
  readonly firstLoadMs: number;
  /** Loads during learning and their total time. */
  readonly modelLoads: number;
  readonly loadMs: number;
}

function statusKB(text: string, key: string): number {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'mu').exec(text);
  return m === null ? Number.NaN : Number(m[1]);
}

function resident(): Resident {
  if (process.platform !== 'linux') {
    const rss = process.memoryUsage().rss / MB;
    return { rssMB: round(rss, 1), anonMB: Number.NaN, fileMB: Number.NaN };
  }
  const s = readFileSync('/proc/self/status', 'utf8');
  return { rssMB: round(statusKB(s, 'VmRSS') / 1024, 1), anonMB: round(statusKB(s, 'RssAnon') / 1024, 1), fileMB: round(statusKB(s, 'RssFile') / 1024, 1) };
}

function peakOf(a: Resident, b: Resident): Resident {
  return a.rssMB >= b.rssMB ? a : b;
}

async function child(modelPath: string, policy: ModelMemoryPolicy, attributes: number, k: number): Promise<RunResult> {
  const prompt = heldOutPrompts(5, 1)[0]!;
  const pair = { prompt: prompt.text, chosen: writeResponse(prompt, ['Concise', 'Formal'], 1), rejected: writeResponse(prompt, ['Storyteller', 'Humor'], 2) };
  const library = ATTRIBUTE_NAMES.slice(0, attributes);
  const loads: number[] = [];
  const scorer = new LlamaScorer({ modelPath, workerPath: WORKER, memory: policy, engine: { threads: 1 }, onModelLoaded: (_b, ms) => loads.push(ms) });
  const before = resident();
  const { memory } = await scorer.info();
  const loaded = { ...resident(), llama: memory };
  if (policy === 'unloadAfterBatch') await scorer.release();
  let peak = resident();
  const sampler = setInterval(() => (peak = peakOf(peak, resident())), 20);
  const t0 = performance.now();
  await greedySelect(scorer, pair, library, { k });
  const learnMs = performance.now() - t0;
  clearInterval(sampler);
  const afterLearning = resident();
  peak = peakOf(peak, afterLearning);
  const hwm = process.platform === 'linux' ? statusKB(readFileSync('/proc/self/status', 'utf8'), 'VmHWM') / 1024 : Number.NaN;
  const { scoreCalls, modelLoads } = scorer.usage;
  await scorer.release();
  const afterRelease = resident();
  await scorer.dispose();
  const afterWorkerEnd = resident();
  return {
    model: modelPath,
    policy,
    attributes,
    k,
    before,
    loaded,
    learningPeak: peak,
    peakHwmMB: round(hwm, 1),
    afterLearning,
    afterRelease,
    afterWorkerEnd,
    learnMs: round(learnMs, 0),
    scoreCalls,
    firstLoadMs: round(loads[0] ?? Number.NaN, 0),
    // info() loaded it once before learning; count the loads learning itself needed.
    modelLoads: modelLoads - 1,
    loadMs: round(loads.slice(1).reduce((a, b) => a + b, 0), 0),
  };
}

const argv = process.argv.slice(2);
if (argv[0] === '--child') {
  const [, modelPath, policy, attributes, k] = argv;
  const result = await child(modelPath!, policy as ModelMemoryPolicy, Number(attributes), Number(k));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

if (!existsSync(WORKER)) throw new Error(`${WORKER} is missing: run \`npm run build\` first (the benchmark runs the bundled worker, as the extension does).`);
const large = randomLlamaModelPath(LARGE);
const runs: Array<{ label: string; path: string; attributes: number; k: number }> = [
  { label: 'fixture (1024 vocabulary, 1.44M parameters)', path: FIXTURE_MODEL, attributes: ATTRIBUTE_NAMES.length, k: 3 },
  { label: 'random llama (32k vocabulary, width 512, 8 layers)', path: large, attributes: 6, k: 2 },
];
const results: Array<RunResult & { label: string; fileMB: number }> = [];
const startLoad = loadavg();
for (const r of runs) {
  for (const policy of ['keep', 'unloadAfterBatch'] as const) {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/memory.ts', '--child', r.path, policy, String(r.attributes), String(r.k)], { maxBuffer: 1 << 20 });
    const result = JSON.parse(stdout.trim().split('\n').at(-1)!) as RunResult;
    const fileMB = round(statSync(r.path).size / MB, 1);
    results.push({ ...result, label: r.label, fileMB });
    process.stderr.write(`${r.label} / ${policy}: peak ${result.learningPeak.rssMB} MB RSS, ${result.learnMs} ms\n`);
  }
}
const endLoad = loadavg();

const mb = (x: number): string => (Number.isNaN(x) ? 'n/a' : `${x}`);
const res = (r: Resident): string => `${mb(r.rssMB)} (${mb(r.anonMB)} + ${mb(r.fileMB)})`;
const md: string[] = [
  '# Memory of the in-process scorer',
  '',
  `Command: \`npm run bench:memory\` (after \`npm run build\`). ${cpus()[0]?.model ?? 'CPU'}, ${availableParallelism()} cores, ${process.platform}-${process.arch}, Node ${process.version}; load average ${startLoad.map((x) => x.toFixed(1)).join(' ')} at the start, ${endLoad.map((x) => x.toFixed(1)).join(' ')} at the end (other jobs share this machine: times are indicative, memory is not affected by them).`,
  '',
  'Each row is one child process: the extension\'s LlamaScorer with its bundled worker (dist/scorerWorker.mjs), 1 thread, the engine\'s default context (min(trained context, 4096) tokens, batch 512), learning one choice with greedy selection (Algorithm 1) over the first N attributes of the library. Resident memory in MB as `VmRSS (RssAnon + RssFile)` from /proc/self/status: the whole process (the Node runtime and the worker thread included), so the scorer\'s share is the difference from "before". The model file is memory-mapped: its pages count as RssFile and are shared with every other process that maps the same file (the page cache holds one copy). The learning peak is sampled every 20 ms; VmHWM is the kernel\'s peak of VmRSS over the process\'s life.',
  '',
  table(
    ['model (file MB)', 'policy', 'N, k', 'before', 'model loaded (load time)', 'learning peak (VmHWM)', 'after learning', 'after release (worker kept)', 'after the worker ended', 'learning time, scored batches, loads while learning (their time)'],
    results.map((r) => [
      `${r.label} (${r.fileMB})`,
      r.policy,
      `${r.attributes}, ${r.k}`,
      res(r.before),
      `${res(r.loaded)} (${(r.firstLoadMs / 1000).toFixed(1)} s)`,
      `${res(r.learningPeak)} (${mb(r.peakHwmMB)})`,
      res(r.afterLearning),
      res(r.afterRelease),
      res(r.afterWorkerEnd),
      `${(r.learnMs / 1000).toFixed(1)} s, ${r.scoreCalls}, ${r.modelLoads} (${(r.loadMs / 1000).toFixed(1)} s)`,
    ]),
  ),
  '',
  'What node-llama-cpp reports once the model is loaded (MB): the weights (`model.size`), llama.cpp\'s own accounting of the RAM it holds (`llama.getLlamaMemoryUsage().cpuRam`), and its estimate for the scoring context (KV cache and compute buffers, `estimateContextResourceRequirementsV2`):',
  '',
  table(
    ['model', 'weights', 'llama.cpp RAM', 'context estimate'],
    results.filter((r) => r.policy === 'keep').map((r) => [r.label, `${round(r.loaded.llama.modelBytes / MB, 1)}`, `${round(r.loaded.llama.cpuRam / MB, 1)}`, `${round(r.loaded.llama.contextEstimate.cpuRam / MB, 1)}`]),
  ),
  '',
  'Left out: GPU memory (no GPU here); Ollama\'s own copy (Ollama cannot run here); models larger than the random one (none can be downloaded here; the weights scale with the file size, the context with layers x width x context length).',
  '',
];
writeText('bench/results/memory.md', md.join('\n'));
writeJson('bench/results/memory.json', { command: 'npm run bench:memory', loadAverage: { start: startLoad, end: endLoad }, results });
process.stderr.write('wrote bench/results/memory.{md,json}\n');
