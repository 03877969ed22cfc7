/**
 * What a greedy round costs, and what cheaper rounds give up (npm run bench:selection).
 *
 *   npx tsx bench/selectionCost.ts [--users 10] [--pairs 20] [--seeds 1,2,3] [--full-library-pairs 3]
 *       [--workers min(cores+1, 4)] [--methods greedy,greedy-early,...] [--no-plain-check] [--out bench/results]
 *
 * On the planted-user pairs of the quality benchmark (bench/lib/world.ts; its --quick set: 10
 * users x 20 pairs; the fixture model) every selection method selects k = 3 of the 14 core
 * attributes (bench:quality's library) for every pair, each pair wholly on one scorer worker (the
 * extension's LlamaScorer, 1 thread, prefix reuse on, as the extension runs it). A selection does
 * not depend on the split, so the accuracy of bench:quality's three 80/20 splits comes from one
 * selection per pair. Per method:
 *   - evaluated tokens (fed to llama.cpp) per choice, against plain Algorithm 1: a scorer call per
 *     attribute set and no prefix reuse, i.e. every request's sequence from scratch (n - 1 tokens
 *     for an n-token sequence; computed from the requests plain greedy makes, checked against a
 *     real no-reuse run on the first pair);
 *   - scored tokens (log-probs read), scorer calls, wall time;
 *   - how often its selection differs from plain greedy's (attributes in order);
 *   - gap-widening accuracy (C.5.2) of top-1 retrieval over its selections on the test pairs,
 *     computed as bench/quality.ts computes its headline row (hash embedder, k = 3, macro over users).
 * Writes bench/results/selection-cost.{json,md} and prints the Markdown.
 */
import { existsSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { ATTRIBUTE_NAMES, buildIndexEntries, greedySelect, lazyGreedySelect, retrieveAttributes, screenedGreedySelect } from '../src/core';
import type { LogLikelihoodScorer, ScoreRequest, SelectionResult } from '../src/core';
import { LocalHashEmbedder } from '../src/engines/embeddings';
import { LlamaEngine } from '../src/engines/llama/llamaEngine';
import { LlamaScorer } from '../src/engines/llama/llamaScorer';
import { CORE_ATTRIBUTES } from '../tools/attribute-world/corpus';
import { flag, mean, option, pct, Progress, round, table, writeJson, writeText } from './lib/report';
import { CachedScorer, FIXTURE_MODEL, WORKER } from './lib/scoring';
import { PLANTED_USERS, splitPairs, userPairs, type PlantedPair } from './lib/world';

const MODEL = option('model', FIXTURE_MODEL);
const N_USERS = Number(option('users', '10'));
const N_PAIRS = Number(option('pairs', '20'));
const SEEDS = option('seeds', '1,2,3').split(',').map(Number);
const LIBRARY: ReadonlyArray<string> = CORE_ATTRIBUTES;
/** Pairs on which the tokens are also counted with the extension's 42-attribute library (no accuracy). */
const FULL_LIBRARY_PAIRS = Number(option('full-library-pairs', '3'));
const WORKERS = Number(option('workers', String(Math.min(availableParallelism() + 1, 4))));
const OUT = option('out', 'bench/results');
const K = 3;
const DATA_SEED = 1;

type Select = (scorer: LogLikelihoodScorer, pair: PlantedPair, library: ReadonlyArray<string>) => Promise<SelectionResult>;
const ALL_METHODS: Array<{ id: string; label: string; select: Select }> = [
  { id: 'greedy', label: 'plain greedy, one batched call per round (Algorithm 1 as the extension ran it)', select: (s, p, l) => greedySelect(s, p, l, { k: K }) },
  { id: 'greedy-early', label: 'greedy with exact early stopping', select: (s, p, l) => greedySelect(s, p, l, { k: K, earlyStopping: true }) },
  { id: 'lazy', label: 'lazy greedy (CELF), batch 1', select: (s, p, l) => lazyGreedySelect(s, p, l, { k: K }) },
  { id: 'screen-16x3', label: 'screening: first 16 tokens of each response, then the best 3 by early stopping', select: (s, p, l) => screenedGreedySelect(s, p, l, { k: K, prefixTokens: 16, finalists: 3 }) },
  { id: 'screen-8x3', label: 'screening: first 8 tokens of each response, then the best 3 by early stopping', select: (s, p, l) => screenedGreedySelect(s, p, l, { k: K, prefixTokens: 8, finalists: 3 }) },
];
const chosenIds = option('methods', ALL_METHODS.map((m) => m.id).join(',')).split(',');
const METHODS = ALL_METHODS.filter((m) => chosenIds.includes(m.id));
if (!METHODS.some((m) => m.id === 'greedy')) METHODS.unshift(ALL_METHODS[0]!);

if (!existsSync(MODEL)) {
  console.error(`No model at ${MODEL}; build the fixture (tools/train-fixture/build.sh) or pass --model.`);
  process.exit(1);
}
const log = (s: string): void => {
  process.stderr.write(`${s}\n`);
};
const machine = { cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', node: process.version, loadAverageAtStart: loadavg().map((x) => round(x, 2)) };

// ------------------------------------------------------------------------------ data

const users = PLANTED_USERS.slice(0, N_USERS);
const pairsByUser = users.map((u) => userPairs(u, N_PAIRS, DATA_SEED));
const allPairs = pairsByUser.flat();
/** bench:quality's splits: per seed and user, 80/20 after a seeded shuffle. */
const splits = SEEDS.map((seed) => pairsByUser.map((pairs, i) => splitPairs(pairs, seed * 1000 + i)));
const fullLibraryPairs = pairsByUser.slice(0, FULL_LIBRARY_PAIRS).map((pairs) => pairs[0]!);
log(`selection cost: ${users.length} users x ${N_PAIRS} pairs (${allPairs.length}), splits ${SEEDS.join(',')}; library core (${LIBRARY.length}), k = ${K}; ${WORKERS} workers; load ${machine.loadAverageAtStart.join(' ')}`);

const workers = Array.from({ length: WORKERS }, () => new LlamaScorer({ modelPath: MODEL, workerPath: WORKER, engine: { threads: 1 } }));
/** In this process, for tokenization only (plain Algorithm 1's token count). */
const tokenizer = await LlamaEngine.load(MODEL, { threads: 1 });

/** Records the requests it forwards (plain greedy's, to count what plain Algorithm 1 evaluates). */
class RecordingScorer implements LogLikelihoodScorer {
  readonly requests: ScoreRequest[] = [];
  constructor(private readonly inner: LogLikelihoodScorer) {}
  scoreBatch(requests: ReadonlyArray<ScoreRequest>, signal?: AbortSignal): Promise<number[]> {
    this.requests.push(...requests);
    return this.inner.scoreBatch(requests, signal);
  }
}

/** Tokens plain Algorithm 1 feeds for these requests: each sequence from scratch, all but its last token. */
function plainTokens(requests: ReadonlyArray<ScoreRequest>): number {
  return requests.reduce((sum, r) => sum + tokenizer.scoringTokens(r).tokens.length - 1, 0);
}

interface PairRun {
  readonly pair: string;
  readonly attributes: string[];
  readonly objective: number;
  readonly gain: number;
  readonly evaluatedTokens: number;
  readonly scoredTokens: number;
  readonly skippedTokens: number;
  readonly scorerCalls: number;
  readonly ms: number;
  readonly plainTokens?: number;
}

/** Runs `select` on the pairs, each pair on one worker, and measures each pair alone. */
async function runMethod(id: string, select: Select, pairs: ReadonlyArray<PlantedPair>, library: ReadonlyArray<string>): Promise<{ runs: Map<string, PairRun>; wallMs: number }> {
  const runs = new Map<string, PairRun>();
  const progress = new Progress(`${id} (${library.length} attributes)`, pairs.length);
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  await Promise.all(
    workers.map(async (worker) => {
      for (;;) {
        const pair = pairs[next++];
        if (pair === undefined) return;
        // Start from a KV cache that shares nothing with this pair.
        await worker.scoreBatch([{ prompt: 'Unrelated warm-up prompt.', attributes: [], response: 'Unrelated.' }]);
        const before = (await worker.info()).stats;
        const recorder = id === 'greedy' ? new RecordingScorer(worker) : undefined;
        const t = performance.now();
        const r = await select(recorder ?? worker, pair, library);
        const ms = performance.now() - t;
        const after = (await worker.info()).stats;
        runs.set(pair.id, {
          pair: pair.id,
          attributes: r.attributes,
          objective: r.objective,
          gain: r.gain,
          evaluatedTokens: after.evaluatedTokens - before.evaluatedTokens,
          scoredTokens: after.scoredTokens - before.scoredTokens,
          skippedTokens: after.skippedTokens - before.skippedTokens,
          scorerCalls: r.scorerCalls,
          ms,
          ...(recorder !== undefined ? { plainTokens: plainTokens(recorder.requests) } : {}),
        });
        progress.update(++done);
      }
    }),
  );
  progress.finish();
  return { runs, wallMs: performance.now() - t0 };
}

// ------------------------------------------------------------------------------ selections

const results = new Map<string, { runs: Map<string, PairRun>; wallMs: number }>();
for (const m of METHODS) results.set(m.id, await runMethod(m.id, m.select, allPairs, LIBRARY));
const greedyRuns = results.get('greedy')!.runs;
const fullResults = new Map<string, Map<string, PairRun>>();
for (const m of FULL_LIBRARY_PAIRS > 0 ? METHODS : []) fullResults.set(m.id, (await runMethod(m.id, m.select, fullLibraryPairs, ATTRIBUTE_NAMES)).runs);

/** Plain Algorithm 1 for real on the first pair: a call per set, no prefix reuse. */
let plainCheck: { pair: string; counted: number; measured: number } | undefined;
if (!flag('no-plain-check')) {
  const first = allPairs[0]!;
  const scratch = await LlamaEngine.load(MODEL, { threads: 1, prefixReuse: false });
  const perSet: LogLikelihoodScorer = {
    async scoreBatch(requests, signal) {
      const out: number[] = [];
      for (let i = 0; i < requests.length; i += 2) out.push(...(await scratch.score(requests.slice(i, i + 2), signal)));
      return out;
    },
  };
  log(`plain Algorithm 1 for real on ${first.id}`);
  const r = await greedySelect(perSet, first, LIBRARY, { k: K });
  if (r.attributes.join('|') !== greedyRuns.get(first.id)!.attributes.join('|')) throw new Error('plain Algorithm 1 and batched greedy disagree');
  plainCheck = { pair: first.id, counted: greedyRuns.get(first.id)!.plainTokens!, measured: scratch.scoreStats.evaluatedTokens };
  await scratch.dispose();
  if (plainCheck.counted !== plainCheck.measured) throw new Error(`plain token count ${plainCheck.counted} != measured ${plainCheck.measured}`);
}

// ------------------------------------------------------------------------------ accuracy

const embedder = new LocalHashEmbedder();
const vectors = new Map<string, number[]>();
(await embedder.embed(allPairs.map((p) => p.prompt))).forEach((v, i) => vectors.set(allPairs[i]!.id, v));
// Scores for J of the retrieved sets on the test pairs: shared by the methods, cached.
let nextWorker = 0;
const evaluator = new CachedScorer({ scoreBatch: (r, s) => workers[nextWorker++ % workers.length]!.scoreBatch(r, s) });

/** Per split seed: gap-widening accuracy of top-1 retrieval over the training pairs' selections, macro over users. */
async function gapAccuracy(runs: Map<string, PairRun>, users: ReadonlyArray<{ train: PlantedPair[]; test: PlantedPair[] }>): Promise<number> {
  const perUser: number[] = [];
  for (const { train: tr, test } of users) {
    const entries = buildIndexEntries(tr.map((p) => ({ pairId: p.id, prompt: p.prompt, attributes: runs.get(p.id)!.attributes, objective: runs.get(p.id)!.objective, gain: runs.get(p.id)!.gain })));
    const items = entries.map((e) => ({ id: e.pairId, prompt: e.prompt, attributes: e.attributes, embedding: vectors.get(e.pairId)! }));
    const hits = await Promise.all(
      test.map(async (p) => {
        const attributes = retrieveAttributes(vectors.get(p.id)!, items, { mode: 'top1' }).attributes;
        if (attributes.length === 0) return false;
        const sets = [[], attributes];
        const s = await evaluator.scoreBatch(sets.flatMap((a) => [p.chosen, p.rejected].map((response) => ({ prompt: p.prompt, attributes: a, response }))));
        return s[2]! - s[3]! - (s[0]! - s[1]!) > 0;
      }),
    );
    perUser.push(hits.filter(Boolean).length / hits.length);
  }
  return mean(perUser);
}

// ------------------------------------------------------------------------------ report

/** Tokens, calls and agreement with plain greedy of one method's runs. */
function costs(runs: Map<string, PairRun>, reference: Map<string, PairRun>) {
  const list = [...runs.values()];
  const sum = (f: (r: PairRun) => number): number => list.reduce((s, r) => s + f(r), 0);
  const plain = [...reference.values()].reduce((s, r) => s + r.plainTokens!, 0);
  return {
    tokensVsPlain: round(sum((r) => r.evaluatedTokens) / plain, 4),
    evaluatedTokensPerChoice: round(sum((r) => r.evaluatedTokens) / list.length, 1),
    scoredTokensPerChoice: round(sum((r) => r.scoredTokens) / list.length, 1),
    skippedTokensPerChoice: round(sum((r) => r.skippedTokens) / list.length, 1),
    scorerCallsPerChoice: round(sum((r) => r.scorerCalls) / list.length, 1),
    differsFromGreedy: list.filter((r) => r.attributes.join('|') !== reference.get(r.pair)!.attributes.join('|')).length,
    differentSetFromGreedy: list.filter((r) => [...r.attributes].sort().join('|') !== [...reference.get(r.pair)!.attributes].sort().join('|')).length,
    pairs: list.length,
  };
}

const rows = [];
for (const m of METHODS) {
  const { runs, wallMs } = results.get(m.id)!;
  const perSeed: number[] = [];
  for (const split of splits) perSeed.push(await gapAccuracy(runs, split));
  const full = fullResults.get(m.id);
  rows.push({
    id: m.id,
    label: m.label,
    ...costs(runs, greedyRuns),
    gapAccuracy: round(mean(perSeed), 4),
    gapAccuracyPerSeed: perSeed.map((x) => round(x, 4)),
    wallSeconds: round(wallMs / 1000, 1),
    fullLibrary: full === undefined ? undefined : costs(full, fullResults.get('greedy')!),
    perPair: [...runs.values()].map((r) => ({ ...r, objective: round(r.objective, 4), gain: round(r.gain, 4), ms: round(r.ms, 1) })),
  });
}
await Promise.all(workers.map((w) => w.dispose()));
await tokenizer.dispose();

const greedyAccuracy = rows[0]!.gapAccuracy;
const eligible = rows.filter((r) => r.gapAccuracy >= greedyAccuracy - 0.01);
const cheapest = eligible.reduce((a, b) => (b.tokensVsPlain < a.tokensVsPlain ? b : a));
const testPairs = splits[0]!.reduce((s, x) => s + x.test.length, 0);
const seconds = Math.round(performance.now() / 1000);
const report = {
  command: `npx tsx bench/selectionCost.ts ${process.argv.slice(2).join(' ')}`.trim(),
  seconds,
  machine: { ...machine, loadAverageAtEnd: loadavg().map((x) => round(x, 2)) },
  model: MODEL,
  data: { users: users.length, pairsPerUser: N_PAIRS, dataSeed: DATA_SEED, splitSeeds: SEEDS, pairs: allPairs.length, testPairsPerSplit: testPairs, library: 'core', librarySize: LIBRARY.length, k: K, fullLibraryPairs: fullLibraryPairs.map((p) => p.id) },
  plainAlgorithm1: { evaluatedTokensPerChoice: round([...greedyRuns.values()].reduce((s, r) => s + r.plainTokens!, 0) / allPairs.length, 1), check: plainCheck },
  cheapestWithinOnePoint: cheapest.id,
  methods: rows,
};
writeJson(join(OUT, 'selection-cost.json'), report);

const fullRows = rows.filter((r) => r.fullLibrary !== undefined);
const md = `# Selection cost: tokens per choice against plain Algorithm 1

Command: \`${report.command}\` (${seconds} s here). Machine: ${machine.cores} cores (${machine.cpu}), Node ${machine.node}, load average
${machine.loadAverageAtStart.join(' ')} at the start and ${report.machine.loadAverageAtEnd.join(' ')} at the end: other jobs shared the machine, so wall
times move with them; token counts and selections do not.

**Data.** The quality benchmark's planted users (bench/lib/world.ts, data seed ${DATA_SEED}), ${users.length} users x ${N_PAIRS} pairs
(bench:quality's \`--quick\` set). Every method selects k = ${K} of the ${LIBRARY.length} core attributes (bench:quality's library) for each of the
${allPairs.length} pairs; the fixture model (\`${MODEL}\`) scores everything through the extension's llama.cpp worker (1 thread, prefix reuse on),
each pair alone on one worker, starting from a KV cache that shares nothing with it. Accuracy: gap-widening accuracy (C.5.2) of top-1
retrieval (hash embedder) over the training pairs' selections, on the test pairs of bench:quality's ${SEEDS.length} 80/20 splits
(seeds ${SEEDS.join(', ')}; ${testPairs} test pairs each), macro over users, mean over the splits: the headline row of bench:quality.
Not covered: other models, k other than ${K}, the vote retrieval mode.

**Plain Algorithm 1** is a scorer call per attribute set, every sequence evaluated from scratch: ${report.plainAlgorithm1.evaluatedTokensPerChoice} tokens
per choice here (counted from the requests plain greedy makes: n - 1 for an n-token sequence${plainCheck !== undefined ? `; a real run without prefix reuse on ${plainCheck.pair} fed exactly the ${plainCheck.measured} counted` : ''}).
*Tokens*: fed to llama.cpp (prompt and response). *Scored / cut*: log-probabilities read, and response tokens early stopping did not
need. *Differs*: pairs whose selection (in order) is not plain greedy's; in brackets, as a set.

${table(
  ['method', 'tokens vs plain Alg. 1', 'tokens / choice', 'scored / cut per choice', 'scorer calls / choice', 'differs from greedy', 'gap acc. (per split)', 'wall'],
  rows.map((r) => [
    r.id === cheapest.id ? `**${r.label}**` : r.label,
    `${r.tokensVsPlain.toFixed(3)}x`,
    String(r.evaluatedTokensPerChoice),
    `${r.scoredTokensPerChoice} / ${r.skippedTokensPerChoice}`,
    String(r.scorerCallsPerChoice),
    `${r.differsFromGreedy} (${r.differentSetFromGreedy}) of ${r.pairs}`,
    `${pct(r.gapAccuracy)} (${r.gapAccuracyPerSeed.map((x) => pct(x)).join(', ')})`,
    `${r.wallSeconds} s`,
  ]),
)}

Cheapest method whose accuracy is within 1 point of plain greedy's (${pct(greedyAccuracy)}): **${cheapest.id}** (${cheapest.tokensVsPlain.toFixed(3)}x the tokens of plain Algorithm 1).
${
  fullRows.length === 0
    ? ''
    : `
**The extension's 42-attribute library** (tokens only, no accuracy), on ${fullLibraryPairs.length} pairs (${fullLibraryPairs.map((p) => p.id).join(', ')}):

${table(
  ['method', 'tokens vs plain Alg. 1', 'tokens / choice', 'scored / cut per choice', 'scorer calls / choice', 'differs from greedy'],
  fullRows.map((r) => [r.label, `${r.fullLibrary!.tokensVsPlain.toFixed(3)}x`, String(r.fullLibrary!.evaluatedTokensPerChoice), `${r.fullLibrary!.scoredTokensPerChoice} / ${r.fullLibrary!.skippedTokensPerChoice}`, String(r.fullLibrary!.scorerCallsPerChoice), `${r.fullLibrary!.differsFromGreedy} (${r.fullLibrary!.differentSetFromGreedy}) of ${r.fullLibrary!.pairs}`]),
)}
`
}`;
writeText(join(OUT, 'selection-cost.md'), md);
process.stdout.write(md);
