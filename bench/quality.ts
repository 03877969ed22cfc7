/**
 * Planted-user benchmark of personalization (npm run bench:quality).
 *
 *   npx tsx bench/quality.ts [--quick] [--seeds 1,2,3] [--library full|core] [--users u01,u13,...]
 *       [--train-shift 15] [--train-other 8] [--test 8] [--drift] [--workers N] [--no-cache] [--out DIR]
 *
 * Synthetic users of the attribute world (bench/lib/world.ts) record preference pairs on prompts
 * the fixture model never saw; every data seed draws new prompts and responses for every user
 * (bench/lib/benchData.ts). Users whose style shifts with the topic record 15 choices, the others
 * 8; each method is evaluated after the first 4, 6 and all of them, on 8 test pairs per user that
 * carry the user's true preference (a careless user's flipped choices are only in training).
 * Algorithm 1 runs once per training pair (k = 3, no stopping); selection with the chance-level
 * test is read off those steps (the same as greedySelect with `significance`, checked below).
 * Methods, all on the same model and 42-attribute library (--library core: the 14 the planted
 * sets are drawn from):
 *   - the plain prompt; Base: history injection (C.1.1); the 3 most frequent attributes;
 *   - EXACT as in the paper (k = 3, gain > 0, top-1, the stored hash vectors), with B.1.2's
 *     non-negativity filter, and with a top-5 vote;
 *   - EXACT with the chance-level stopping rule, retrieval by term-weighted vectors, top-1 or
 *     abstaining (core/abstention.ts), over a grid of thresholds; the extension's default is the
 *     grid point with the best score (defined in SELECTION_RULE) on these seeds;
 *   - the planted set (oracle); --drift adds the Drift-style baseline (bench/lib/drift.ts).
 * Writes quality.{json,md,svg} and quality-train.svg to --out (bench/results; --quick: one seed,
 * .cache/bench-quick). Scores are cached in .cache/bench/ keyed by the model file's hash.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import {
  ATTRIBUTE_NAMES,
  buildIndexEntries,
  chanceLevel,
  cosineSimilarity,
  decideInjection,
  DEFAULT_ABSTENTION,
  DEFAULT_SIGNIFICANCE,
  globalProfile,
  greedySelect,
  retrieveAttributes,
  type AbstentionOptions,
  type LogLikelihoodScorer,
  type MemoryItem,
  type PairSelection,
  type ScoreRequest,
  type SelectionResult,
} from '../src/core';
import { hashEmbed, LocalHashEmbedder, TermWeights } from '../src/engines/embeddings';
import { CORE_ATTRIBUTES } from '../tools/attribute-world/corpus';
import { seedData, userGroup, type UserData, type UserGroup } from './lib/benchData';
import { driftMargin, fitDrift } from './lib/drift';
import { barChartSvg, flag, fmtMeanStd, lineChartSvg, mean, meanStd, option, pct, Progress, round, table, writeJson, writeText, type MeanStd } from './lib/report';
import { CachedScorer, fileHash, FIXTURE_MODEL, mapPool, ScorerPool } from './lib/scoring';
import { PLANTED_USERS, type PlantedPair } from './lib/world';

// ------------------------------------------------------------------------------ configuration

const QUICK = flag('quick');
const MODEL = option('model', FIXTURE_MODEL);
const SEEDS = option('seeds', QUICK ? '1' : '1,2,3').split(',').map(Number);
const LIBRARY_NAME = option('library', 'full');
const LIBRARY: ReadonlyArray<string> = LIBRARY_NAME === 'core' ? CORE_ATTRIBUTES : ATTRIBUTE_NAMES;
const DEFAULT_USERS = 'u01,u02,u14,u13,u03,u04,u05,u15,u16,u17,u18';
const USER_IDS = option('users', DEFAULT_USERS).split(',');
const TRAIN_SHIFT = Number(option('train-shift', '15'));
const TRAIN_OTHER = Number(option('train-other', '8'));
const N_TEST = Number(option('test', '8'));
const K = 3;
const DRIFT = flag('drift');
// One scorer process more than there are cores (each waits on llama.cpp's worker thread per token); at most 4 model copies.
const WORKERS = Number(option('workers', String(Math.min(availableParallelism() + 1, 4))));
const OUT = option('out', QUICK ? '.cache/bench-quick' : 'bench/results');
const VOTE_M = 5;
/** Chance-level thresholds tried (selection.ts chanceLevel); 0 is B.1.2's "gain > 0". */
const SIGNIFICANCES = [0, 0.25, 0.5, 0.75, 1, 1.5];
const FLOORS = [-1, 0.1, 0.15, 0.2, 0.3];
const AGREEMENTS = [0, 0.5, 0.67];
const CONFIDENCES = [0.5, 0.67];

if (!existsSync(MODEL)) {
  console.error(`No model at ${MODEL}. The fixture model (test/fixtures/model/exact-tiny.gguf) is built by tools/train-fixture/build.sh; or pass --model.`);
  process.exit(1);
}
const users = USER_IDS.map((id) => {
  const u = PLANTED_USERS.find((x) => x.id === id || x.id.startsWith(`${id}-`));
  if (u === undefined) throw new Error(`Unknown user ${id}; one of ${PLANTED_USERS.map((x) => x.id).join(', ')}`);
  return u;
});
const trainSize = (u: (typeof users)[number]): number => (userGroup(u) === 'shift' ? TRAIN_SHIFT : TRAIN_OTHER);
const SIZES = [...new Set([4, 6, TRAIN_OTHER, TRAIN_SHIFT])].filter((n) => n <= Math.max(TRAIN_SHIFT, TRAIN_OTHER)).sort((a, b) => a - b);

const DEFINITIONS = {
  J: 'J(A) = log p(y_w | x, A) - log p(y_l | x, A): the preferred-vs-rejected log-likelihood gap with the attribute block `Attributes: <A>` appended to the prompt (A = {} is the plain prompt), teacher-forced by the llama.cpp engine.',
  gap: 'Gap-widening accuracy (C.5.2, obj_match > 0): share of test pairs whose injected condition C widens the gap, J(C) - J({}) > 0. Every test pair counts; an empty injection widens nothing.',
  pref: 'Preference accuracy: share of test pairs ranked the right way round with the method\'s prompt, J(C) > 0 (an empty injection: the plain prompt\'s J({}) > 0). "No personalization" is the plain prompt.',
  harm: 'Harm rate: share of test pairs whose injected attributes narrow the gap, J(C) - J({}) < 0.',
  recovery: 'Planted-attribute precision: share of injected attributes in the planted set of the test prompt\'s topic (pairs with a non-empty injection); recall: share of the planted set injected (pairs whose planted set is not empty; an empty injection recalls nothing).',
  aggregation: 'Per seed: per-user rates over the user\'s 8 test pairs, averaged over the users of a group (macro); mean ± sample std over the independent data seeds.',
};
const SELECTION_RULE =
  'score = mean gap-widening accuracy over the non-plain users at every training size, minus the harm rate over all users (plain-preferring users included), averaged over seeds';

// ------------------------------------------------------------------------------ setup

const t0 = performance.now();
const phases: Record<string, number> = {};
const phase = (name: string, since: number): void => {
  phases[name] = round((performance.now() - since) / 1000, 1);
};
const data = new Map<number, UserData[]>(SEEDS.map((seed) => [seed, seedData(users, seed, trainSize, N_TEST)]));
const allTrain = [...data.values()].flatMap((ds) => ds.flatMap((d) => d.train));
const allTest = [...data.values()].flatMap((ds) => ds.flatMap((d) => d.test));
const modelHash = await fileHash(MODEL);
const pool = new ScorerPool(MODEL, WORKERS);
const cacheFile = flag('no-cache') ? undefined : join('.cache', 'bench', `scores-${modelHash.slice(0, 16)}.json`);
const scorer = new CachedScorer(pool, cacheFile);
const info = (await pool.primary.info()).info;
console.error(
  `model ${MODEL} (vocab ${info.vocabSize}, context ${info.contextSize}); ${users.length} users; seeds ${SEEDS.join(',')}; library ${LIBRARY_NAME} (${LIBRARY.length}); ` +
    `${allTrain.length} training / ${allTest.length} test pairs; ${WORKERS} workers; cache ${cacheFile ?? 'off'} (${scorer.usage.loaded} scores loaded)`,
);

const setKey = (a: ReadonlyArray<string>): string => a.join('|');

/** J for each set on a pair, one batch (the plain prompt included). */
async function objectives(s: LogLikelihoodScorer, pair: PlantedPair, sets: ReadonlyArray<ReadonlyArray<string>>): Promise<Map<string, number>> {
  const unique = [...new Map([[], ...sets].map((a) => [setKey(a), a])).values()];
  const requests: ScoreRequest[] = unique.flatMap((attributes) => [
    { prompt: pair.prompt, attributes, response: pair.chosen },
    { prompt: pair.prompt, attributes, response: pair.rejected },
  ]);
  const scores = await s.scoreBatch(requests);
  return new Map(unique.map((a, i) => [setKey(a), scores[2 * i]! - scores[2 * i + 1]!]));
}

// ------------------------------------------------------------------------------ 1. Algorithm 1 on every training pair

let since = performance.now();
const greedy = new Map<string, SelectionResult>();
{
  const progress = new Progress(`greedy k=${K} over ${LIBRARY.length} attributes`, allTrain.length);
  let done = 0;
  await mapPool(allTrain, WORKERS, async (p) => {
    greedy.set(p.id, await greedySelect(scorer, p, LIBRARY, { k: K }));
    progress.update(++done, `cache ${scorer.usage.hits} hits / ${scorer.usage.misses} misses`);
    if (done % 50 === 0) scorer.save();
  });
  progress.finish();
  scorer.save();
}
phase('greedy', since);

/** The selection with the chance-level test at `significance` (undefined: the paper's k steps), read off the k = 3 run. */
function stopped(sel: SelectionResult, significance: number | undefined): { attributes: string[]; objective: number; gain: number } {
  let steps = sel.steps;
  if (significance !== undefined) {
    const need = Math.max(0, chanceLevel(sel.base!, significance));
    const stop = steps.findIndex((st) => !(st.marginalGain > need));
    if (stop >= 0) steps = steps.slice(0, stop);
  }
  const objective = steps.length === 0 ? sel.baseObjective : steps[steps.length - 1]!.objective;
  return { attributes: steps.map((s) => s.attribute), objective, gain: objective - sel.baseObjective };
}

// The post-hoc reading must equal what the extension runs: greedySelect with `significance` (all cache hits).
for (const p of allTrain.slice(0, 12)) {
  for (const sig of [0, DEFAULT_SIGNIFICANCE]) {
    const direct = await greedySelect(scorer, p, LIBRARY, { k: K, significance: sig });
    if (setKey(direct.attributes) !== setKey(stopped(greedy.get(p.id)!, sig).attributes)) throw new Error(`post-hoc stopping disagrees with greedySelect on ${p.id}`);
  }
}

// ------------------------------------------------------------------------------ 2. the chance-level test: which noise scale separates planted from chance gains

/** Every greedy step of a pair, labelled: is the attribute planted (a real explanation) or not (chance)? Flipped pairs left out. */
const stepRows = allTrain
  .filter((p) => p.flipped !== true)
  .flatMap((p) => {
    const sel = greedy.get(p.id)!;
    const nats = Math.abs(sel.base!.chosen) + Math.abs(sel.base!.rejected);
    return sel.steps.map((st) => ({ planted: p.planted.includes(st.attribute), gain: st.marginalGain, nats }));
  });
/** Area under the ROC curve of a score separating planted steps from the others. */
function auc(rows: ReadonlyArray<{ planted: boolean; score: number }>): number {
  const pos = rows.filter((r) => r.planted).map((r) => r.score);
  const neg = rows.filter((r) => !r.planted).map((r) => r.score);
  let wins = 0;
  for (const a of pos) for (const b of neg) wins += a > b ? 1 : a === b ? 0.5 : 0;
  return pos.length * neg.length === 0 ? NaN : wins / (pos.length * neg.length);
}
const noiseScales = {
  absoluteNats: round(auc(stepRows.map((r) => ({ planted: r.planted, score: r.gain })))),
  perSqrtNats: round(auc(stepRows.map((r) => ({ planted: r.planted, score: r.gain / Math.sqrt(r.nats) })))),
  perNat: round(auc(stepRows.map((r) => ({ planted: r.planted, score: r.gain / r.nats })))),
};
const stepsAbove = SIGNIFICANCES.map((sig) => {
  const above = (r: (typeof stepRows)[number]): boolean => r.gain > Math.max(0, sig * Math.sqrt(r.nats));
  const planted = stepRows.filter((r) => r.planted);
  const other = stepRows.filter((r) => !r.planted);
  return { significance: sig, plantedStepsAbove: round(mean(planted.map((r) => (above(r) ? 1 : 0)))), otherStepsAbove: round(mean(other.map((r) => (above(r) ? 1 : 0)))) };
});

// ------------------------------------------------------------------------------ 3. evaluation

interface Outcome {
  readonly gap: boolean;
  readonly harm: boolean;
  readonly pref: boolean;
  readonly precision?: number;
  readonly recall?: number;
}
/** method -> seed -> user -> train size -> outcomes. */
const outcomes = new Map<string, Map<number, Map<string, Map<number, Outcome[]>>>>();
function record(method: string, seed: number, user: string, size: number, o: Outcome): void {
  const bySeed = outcomes.get(method) ?? new Map<number, Map<string, Map<number, Outcome[]>>>();
  outcomes.set(method, bySeed);
  const byUser = bySeed.get(seed) ?? new Map<string, Map<number, Outcome[]>>();
  bySeed.set(seed, byUser);
  const bySize = byUser.get(user) ?? new Map<number, Outcome[]>();
  byUser.set(user, bySize);
  const list = bySize.get(size) ?? [];
  list.push(o);
  bySize.set(size, list);
}

const hashEmbedder = new LocalHashEmbedder();
const stored = new Map<string, number[]>([...allTrain, ...allTest].map((p) => [p.id, hashEmbed(p.prompt, hashEmbedder.dimension)]));
/** Same-topic nearest neighbour: embedder -> size -> seed -> [hits, n]. */
const topicHits = new Map<string, Map<number, Map<number, [number, number]>>>();
function countTopic(embedder: string, size: number, seed: number, same: boolean): void {
  const bySize = topicHits.get(embedder) ?? new Map<number, Map<number, [number, number]>>();
  topicHits.set(embedder, bySize);
  const bySeed = bySize.get(size) ?? new Map<number, [number, number]>();
  bySize.set(size, bySeed);
  const c = bySeed.get(seed) ?? [0, 0];
  bySeed.set(seed, [c[0] + (same ? 1 : 0), c[1] + 1]);
}

interface GridPoint {
  readonly id: string;
  readonly significance: number;
  readonly abstention: AbstentionOptions;
}
const GRID: GridPoint[] = SIGNIFICANCES.flatMap((significance) =>
  FLOORS.flatMap((similarityFloor) =>
    AGREEMENTS.flatMap((minAgreement) =>
      CONFIDENCES.map((profileConfidence) => ({
        id: `grid:sig=${significance},floor=${similarityFloor},agree=${minAgreement},conf=${profileConfidence}`,
        significance,
        abstention: { ...DEFAULT_ABSTENTION, similarityFloor, minAgreement, profileConfidence, k: K },
      })),
    ),
  ),
);
const historyFits: number[] = [];

since = performance.now();
const evalProgress = new Progress('evaluating seeds x users x training sizes', SEEDS.length * users.length * SIZES.length);
let evalDone = 0;
for (const seed of SEEDS) {
  for (const d of data.get(seed)!) {
    const uid = d.user.id;
    for (const size of SIZES) {
      if (size > d.train.length) {
        evalProgress.update(++evalDone);
        continue;
      }
      const train = d.train.slice(0, size);
      const full = size === d.train.length;
      const selections = (sig: number | undefined): PairSelection[] => train.map((p) => ({ pairId: p.id, prompt: p.prompt, ...stopped(greedy.get(p.id)!, sig) }));
      const items = (sig: number | undefined, vectors: (p: PlantedPair) => number[]): MemoryItem[] => {
        const byId = new Map(train.map((p) => [p.id, p]));
        return buildIndexEntries(selections(sig)).map((e) => ({ id: e.pairId, prompt: e.prompt, attributes: e.attributes, gain: e.gain, embedding: vectors(byId.get(e.pairId)!) }));
      };
      const terms = new TermWeights(train.map((p) => p.prompt));
      const weighted = new Map([...train, ...d.test].map((p) => [p.id, hashEmbed(p.prompt, hashEmbedder.dimension, terms)]));
      const paperItems = items(undefined, (p) => stored.get(p.id)!);
      const nonnegItems = items(0, (p) => stored.get(p.id)!);
      const gridItems = new Map(SIGNIFICANCES.map((sig) => [sig, items(sig, (p) => weighted.get(p.id)!)]));
      const freq = globalProfile(paperItems, K);
      const history = full ? await historyPrompt(train, d.test) : undefined;
      if (history !== undefined) historyFits.push(history.used / train.length);
      const drift = DRIFT && full ? fitDrift(await mapPool(train, WORKERS, (p) => singleRewards(p))) : undefined;

      await mapPool(d.test, WORKERS, async (p) => {
        const sets = new Map<string, string[]>();
        const qStored = stored.get(p.id)!;
        const qWeighted = weighted.get(p.id)!;
        sets.set('exact-global-freq', freq);
        sets.set('exact-top1-paper', retrieveAttributes(qStored, paperItems, { mode: 'top1' }).attributes);
        sets.set('exact-top1-nonneg', retrieveAttributes(qStored, nonnegItems, { mode: 'top1' }).attributes);
        sets.set('exact-vote', retrieveAttributes(qStored, paperItems, { mode: 'vote', m: VOTE_M, k: K }).attributes);
        sets.set('exact-top1-stop', retrieveAttributes(qWeighted, gridItems.get(DEFAULT_SIGNIFICANCE)!, { mode: 'top1' }).attributes);
        sets.set('oracle-planted', [...p.planted]);
        for (const g of GRID) sets.set(g.id, decideInjection(qWeighted, gridItems.get(g.significance)!, g.abstention).attributes);
        const nearest = (q: number[], vectors: (t: PlantedPair) => number[]): PlantedPair =>
          train.map((t, i) => ({ t, i, s: cosineSimilarity(q, vectors(t)) })).sort((a, b) => b.s - a.s || a.i - b.i)[0]!.t;
        countTopic('hash', size, seed, nearest(qStored, (t) => stored.get(t.id)!).topic === p.topic);
        countTopic('hash + term weights', size, seed, nearest(qWeighted, (t) => weighted.get(t.id)!).topic === p.topic);

        const js = await objectives(scorer, p, [...sets.values()]);
        const j0 = js.get('')!;
        record('none', seed, uid, size, { gap: false, harm: false, pref: j0 > 0 });
        for (const [method, a] of sets) {
          const j = js.get(setKey(a))!;
          const hit = a.filter((x) => p.planted.includes(x)).length;
          record(method, seed, uid, size, {
            gap: a.length > 0 && j - j0 > 0,
            harm: a.length > 0 && j - j0 < 0,
            pref: j > 0,
            ...(a.length > 0 ? { precision: hit / a.length } : {}),
            ...(p.planted.length > 0 ? { recall: hit / p.planted.length } : {}),
          });
        }
        if (history !== undefined) {
          const [hw, hl] = await scorer.scoreBatch([
            { prompt: history.head + p.prompt, attributes: [], response: p.chosen },
            { prompt: history.head + p.prompt, attributes: [], response: p.rejected },
          ]);
          const jh = hw! - hl!;
          record('base-history', seed, uid, size, { gap: jh - j0 > 0, harm: jh - j0 < 0, pref: jh > 0 });
        }
        if (drift !== undefined) {
          const margin = driftMargin(drift, await singleRewards(p));
          record('drift-policy', seed, uid, size, { gap: margin > 0, harm: margin < 0, pref: j0 + margin > 0 });
        }
      });
      evalProgress.update(++evalDone, `cache ${scorer.usage.hits} hits / ${scorer.usage.misses} misses`);
    }
  }
  scorer.save();
}
evalProgress.finish();
phase('evaluation', since);

/** Drift-style features: each library attribute's reward difference J({a}) - J({}). */
async function singleRewards(p: PlantedPair): Promise<number[]> {
  const m = await objectives(scorer, p, LIBRARY.map((a) => [a]));
  return LIBRARY.map((a) => m.get(a)! - m.get('')!);
}

/** Base (C.1.1): the training history serialized into the user message, as much as fits the context. */
async function historyPrompt(train: ReadonlyArray<PlantedPair>, test: ReadonlyArray<PlantedPair>): Promise<{ head: string; used: number }> {
  const count = async (s: string): Promise<number> => (await pool.primary.tokenize(s)).length;
  let longest = 0;
  for (const p of test) longest = Math.max(longest, (await count(p.prompt)) + Math.max(await count(p.chosen), await count(p.rejected)));
  const intro = 'My earlier choices between two replies (the one I preferred, and the one I rejected):\n\n';
  const outro = 'Reply to this in the style I prefer:\n';
  const budget = info.contextSize - longest - (await count(intro + outro)) - 32;
  let head = intro;
  let used = 0;
  let tokens = 0;
  for (const p of train) {
    const block = `Prompt: ${p.prompt}\nPreferred reply: ${p.chosen}\nRejected reply: ${p.rejected}\n\n`;
    const n = await count(block);
    if (tokens + n > budget) break;
    head += block;
    tokens += n;
    used += 1;
  }
  return { head: head + outro, used };
}

// ------------------------------------------------------------------------------ 4. aggregate

const groupOf = new Map(users.map((u) => [u.id, userGroup(u)]));
type Metric = 'gap' | 'harm' | 'pref' | 'precision' | 'recall';
interface Slice {
  readonly groups: ReadonlyArray<UserGroup>;
  /** 'full': each user's whole history; a number: that many training pairs. */
  readonly size: number | 'full';
}

/** Macro rate per seed over the users of the slice (users without a value in the slice are skipped). */
function perSeed(method: string, metric: Metric, slice: Slice): number[] {
  return SEEDS.map((seed) => {
    const rates: number[] = [];
    for (const u of users) {
      if (!slice.groups.includes(groupOf.get(u.id)!)) continue;
      const bySize = outcomes.get(method)?.get(seed)?.get(u.id);
      if (bySize === undefined) continue;
      const sizes = slice.size === 'full' ? [trainSize(u)] : [slice.size];
      for (const size of sizes) {
        const os = bySize.get(size);
        if (os === undefined) continue;
        const vals = os.map((o) => (metric === 'precision' || metric === 'recall' ? o[metric] : o[metric] ? 1 : 0)).filter((v): v is number => v !== undefined);
        if (vals.length > 0) rates.push(mean(vals));
      }
    }
    return rates.length === 0 ? NaN : mean(rates);
  });
}
const ms = (method: string, metric: Metric, slice: Slice): MeanStd => meanStd(perSeed(method, metric, slice));

const NON_PLAIN: UserGroup[] = ['shift', 'consistent'];
/** The selection score of a method (SELECTION_RULE), per seed. */
function selectionScore(method: string): number {
  const gap = SIZES.map((n) => perSeed(method, 'gap', { groups: NON_PLAIN, size: n }));
  const harm = SIZES.map((n) => perSeed(method, 'harm', { groups: ['shift', 'consistent', 'plain'], size: n }));
  return mean(SEEDS.map((_, s) => mean(gap.map((g) => g[s]!).filter(Number.isFinite)) - mean(harm.map((h) => h[s]!).filter(Number.isFinite))));
}
const gridScores = GRID.map((g) => ({ ...g, score: selectionScore(g.id) })).sort((a, b) => b.score - a.score);
const best = gridScores[0]!;
const coreDefaultId = GRID.find(
  (g) =>
    g.significance === DEFAULT_SIGNIFICANCE &&
    g.abstention.similarityFloor === DEFAULT_ABSTENTION.similarityFloor &&
    g.abstention.minAgreement === DEFAULT_ABSTENTION.minAgreement &&
    g.abstention.profileConfidence === DEFAULT_ABSTENTION.profileConfidence,
)?.id;

const METHODS: Array<{ id: string; label: string }> = [
  { id: 'none', label: 'No personalization (plain prompt)' },
  { id: 'base-history', label: 'Base: history injection (C.1.1), whole history only' },
  { id: 'exact-global-freq', label: 'EXACT without retrieval: 3 most frequent attributes' },
  { id: 'exact-top1-paper', label: 'EXACT as in the paper: k = 3, top-1 retrieval, hash vectors' },
  { id: 'exact-top1-nonneg', label: "EXACT top-1 with B.1.2's non-negativity filter" },
  { id: 'exact-vote', label: `EXACT top-${VOTE_M} similarity-weighted vote` },
  { id: 'exact-top1-stop', label: `EXACT top-1, chance-level stopping (significance ${DEFAULT_SIGNIFICANCE}), term-weighted vectors` },
  ...(coreDefaultId !== undefined ? [{ id: coreDefaultId, label: 'EXACT, the extension default: chance-level stopping + abstaining retrieval (core defaults)' }] : []),
  ...(best.id !== coreDefaultId ? [{ id: best.id, label: `EXACT, best grid point on these seeds (${best.id.slice(5)})` }] : []),
  ...(DRIFT ? [{ id: 'drift-policy', label: 'Drift-style weights as a decoding policy (beta = 1), whole history only' }] : []),
  { id: 'oracle-planted', label: 'Reference: the planted set injected (oracle)' },
];

const COLUMNS: Array<{ label: string; metric: Metric; slice: Slice }> = [
  { label: 'gap acc., shift users, 15 pairs', metric: 'gap', slice: { groups: ['shift'], size: TRAIN_SHIFT } },
  { label: 'gap acc., shift users, 6 pairs', metric: 'gap', slice: { groups: ['shift'], size: 6 } },
  { label: 'gap acc., shift users, 4 pairs', metric: 'gap', slice: { groups: ['shift'], size: 4 } },
  { label: `gap acc., consistent users, ${TRAIN_OTHER} pairs`, metric: 'gap', slice: { groups: ['consistent'], size: TRAIN_OTHER } },
  { label: 'pref. acc., all users, whole history', metric: 'pref', slice: { groups: ['shift', 'consistent', 'plain'], size: 'full' } },
  { label: 'harm, all users, whole history', metric: 'harm', slice: { groups: ['shift', 'consistent', 'plain'], size: 'full' } },
  { label: 'plain user: pref. acc.', metric: 'pref', slice: { groups: ['plain'], size: 'full' } },
  { label: 'plain user: harm', metric: 'harm', slice: { groups: ['plain'], size: 'full' } },
  { label: 'planted precision', metric: 'precision', slice: { groups: NON_PLAIN, size: 'full' } },
  { label: 'planted recall', metric: 'recall', slice: { groups: NON_PLAIN, size: 'full' } },
];

const results = METHODS.map((m) => ({ id: m.id, label: m.label, columns: Object.fromEntries(COLUMNS.map((c) => [c.label, ms(m.id, c.metric, c.slice)])) }));
const perUser = users.map((u) => ({
  user: u.id,
  group: groupOf.get(u.id),
  methods: Object.fromEntries(
    METHODS.map((m) => [
      m.id,
      Object.fromEntries(SIZES.map((n) => [n, { gap: round(mean(perSeed(m.id, 'gap', { groups: [groupOf.get(u.id)!], size: n }))) }])),
    ]),
  ),
}));
const topicMatch = [...topicHits].map(([embedder, bySize]) => ({
  embedder,
  bySize: Object.fromEntries([...bySize].map(([n, bySeed]) => [n, meanStd(SEEDS.map((s) => (bySeed.get(s)?.[0] ?? 0) / Math.max(1, bySeed.get(s)?.[1] ?? 0)))])),
}));

const poolStats = await pool.stats();
const totalSeconds = round((performance.now() - t0) / 1000, 1);
const command = `npx tsx bench/quality.ts ${process.argv.slice(2).join(' ')}`.trim();
const json = {
  generatedAt: new Date().toISOString(),
  command,
  config: {
    model: MODEL,
    modelSha256: modelHash,
    users: users.map((u) => ({ id: u.id, description: u.description, group: groupOf.get(u.id), trainingPairs: trainSize(u), preferences: u.preferences, flipRate: u.flipRate ?? 0, rejects: u.rejects ?? 'other' })),
    seeds: SEEDS,
    data: 'independent per seed: every seed draws new held-out prompts and responses for every user (bench/lib/benchData.ts)',
    trainingSizes: SIZES,
    testPairsPerUser: N_TEST,
    library: { name: LIBRARY_NAME, size: LIBRARY.length },
    k: K,
    grid: { significances: SIGNIFICANCES, floors: FLOORS, agreements: AGREEMENTS, confidences: CONFIDENCES, neighbors: DEFAULT_ABSTENTION.neighbors },
    selectionRule: SELECTION_RULE,
    coreDefaults: { significance: DEFAULT_SIGNIFICANCE, abstention: DEFAULT_ABSTENTION },
    workers: WORKERS,
  },
  definitions: DEFINITIONS,
  results,
  grid: gridScores.map((g) => ({ id: g.id, score: round(g.score, 4) })),
  best: { id: best.id, score: round(best.score, 4) },
  coreDefault: coreDefaultId,
  chanceTest: { aucByNoiseScale: noiseScales, stepsAboveThreshold: stepsAbove, steps: stepRows.length },
  topicMatch,
  baseHistory: { shareOfTrainingPairsThatFit: round(mean(historyFits)) },
  perUser,
  cost: { seconds: totalSeconds, phases, cache: { ...scorer.usage, size: scorer.size }, engine: poolStats },
};

// ------------------------------------------------------------------------------ 5. write

const md: string[] = [];
md.push('# Planted-user benchmark: does EXACT inject only what helps?');
md.push('');
md.push(`Generated by \`${command}\` on the fixture model \`${MODEL}\` (sha256 ${modelHash.slice(0, 12)}…), ${new Date().toISOString().slice(0, 10)}.`);
md.push('');
md.push(
  `${users.length} planted users (${users.filter((u) => groupOf.get(u.id) === 'shift').length} whose style shifts with the topic, ${users.filter((u) => groupOf.get(u.id) === 'consistent').length} consistent, ${users.filter((u) => groupOf.get(u.id) === 'plain').length} preferring plain answers); ` +
    `${TRAIN_SHIFT} recorded choices for shift users and ${TRAIN_OTHER} for the others, evaluated after the first ${SIZES.join(', ')}; ${N_TEST} test pairs per user; ` +
    `independent data seeds ${SEEDS.join(', ')} (new prompts and responses per seed); library: ${LIBRARY.length} attributes; k = ${K} at most. Mean ± std over seeds, in %.`,
);
md.push('');
md.push('## Metrics');
md.push('');
for (const v of Object.values(DEFINITIONS)) md.push(`- ${v}`);
md.push('');
md.push('## Results');
md.push('');
md.push(table(['method', ...COLUMNS.map((c) => c.label)], results.map((r) => [r.label, ...COLUMNS.map((c) => fmtMeanStd(r.columns[c.label]))])));
md.push('');
md.push('![accuracy by method](quality.svg)');
md.push('');
md.push('![gap-widening by training pairs](quality-train.svg)');
md.push('');
md.push('## Choosing the defaults');
md.push('');
md.push(`Selection rule: ${SELECTION_RULE}. The ${GRID.length} grid points (significance x similarity floor x agreement x profile confidence), best ten:`);
md.push('');
md.push(table(['grid point', 'score'], gridScores.slice(0, 10).map((g) => [g.id.slice(5), (100 * g.score).toFixed(1)])));
md.push('');
md.push(
  `The core defaults (significance ${DEFAULT_SIGNIFICANCE}, floor ${DEFAULT_ABSTENTION.similarityFloor}, agreement ${DEFAULT_ABSTENTION.minAgreement}, confidence ${DEFAULT_ABSTENTION.profileConfidence}) score ` +
    `${coreDefaultId !== undefined ? (100 * gridScores.find((g) => g.id === coreDefaultId)!.score).toFixed(1) : 'n/a'}; the best grid point ${(100 * best.score).toFixed(1)}. ` +
    'Chosen on the same seeds it is reported on, so the best row is optimistic by the selection.',
);
md.push('');
md.push('## The chance-level test');
md.push('');
md.push(
  `Each greedy step's marginal gain, labelled by whether its attribute is planted for the pair (${stepRows.length} steps; careless users' flipped pairs left out). ` +
    `How well a normalization separates planted from other steps (ROC AUC): absolute nats ${noiseScales.absoluteNats}, per sqrt(|log p(y_w)| + |log p(y_l)|) ${noiseScales.perSqrtNats}, per nat ${noiseScales.perNat}.`,
);
md.push('');
md.push(table(['significance', 'planted steps kept', 'other steps kept'], stepsAbove.map((s) => [String(s.significance), pct(s.plantedStepsAbove), pct(s.otherStepsAbove)])));
md.push('');
md.push('## Prompt matching');
md.push('');
md.push(
  table(
    ['embedder', ...SIZES.map((n) => `nearest stored prompt on the test prompt's topic, ${n} stored`)],
    topicMatch.map((t) => [t.embedder, ...SIZES.map((n) => fmtMeanStd((t.bySize as Record<number, MeanStd>)[n]))]),
  ),
);
md.push('');
md.push(`Base history: on average ${pct(json.baseHistory.shareOfTrainingPairsThatFit)}% of a user's training pairs fit the ${info.contextSize}-token context.`);
md.push('');
md.push('## Cost');
md.push('');
md.push(
  `${totalSeconds} s in total (${Object.entries(phases).map(([k, v]) => `${k} ${v} s`).join(', ')}); ${scorer.usage.misses} log-likelihoods computed, ${scorer.usage.hits} served from the cache ` +
    `(${scorer.usage.loaded} loaded from a previous run); engine: ${poolStats.sequences} sequences, ${poolStats.evaluatedTokens} tokens evaluated. Other jobs shared the 2-core machine.`,
);
const mdText = md.join('\n');

const headline = [COLUMNS[0]!, COLUMNS[1]!, COLUMNS[3]!, COLUMNS[7]!];
const svg = barChartSvg({
  title: 'Planted users: gap-widening and harm',
  subtitle: `${users.length} users, ${SEEDS.length} independent seeds, ${LIBRARY.length} attributes, fixture model; error bars: std over seeds`,
  series: headline.map((c) => c.label),
  groups: results
    .filter((r) => r.id !== 'none')
    .map((r) => ({ label: shortLabel(r.id), values: headline.map((c) => r.columns[c.label]!.mean), errors: headline.map((c) => r.columns[c.label]!.std) })),
});
const trainSvg = lineChartSvg({
  title: 'Shift users: gap-widening accuracy by recorded choices',
  subtitle: 'error bars: std over seeds',
  xLabel: 'training pairs',
  xs: SIZES.filter((n) => n !== TRAIN_OTHER || n === TRAIN_SHIFT),
  lines: METHODS.filter((m) => m.id !== 'none' && m.id !== 'base-history' && m.id !== 'drift-policy').map((m) => {
    const xs = SIZES.filter((n) => n !== TRAIN_OTHER || n === TRAIN_SHIFT);
    const v = xs.map((n) => ms(m.id, 'gap', { groups: ['shift'], size: n }));
    return { label: shortLabel(m.id), values: v.map((x) => x.mean), errors: v.map((x) => x.std) };
  }),
});

function shortLabel(id: string): string {
  const map: Record<string, string> = {
    'base-history': 'Base (history)',
    'exact-global-freq': 'global (frequent)',
    'exact-top1-paper': 'top-1 (paper)',
    'exact-top1-nonneg': 'top-1, gain > 0',
    'exact-vote': 'vote',
    'exact-top1-stop': 'top-1 + stopping',
    'drift-policy': 'Drift-style',
    'oracle-planted': 'oracle',
  };
  if (id === coreDefaultId) return 'default (abstaining)';
  if (id === best.id) return 'best grid point';
  return map[id] ?? id;
}

writeJson(join(OUT, 'quality.json'), roundDeep(json));
writeText(join(OUT, 'quality.md'), mdText);
writeText(join(OUT, 'quality.svg'), svg);
writeText(join(OUT, 'quality-train.svg'), trainSvg);
console.log(mdText);
console.error(`wrote ${join(OUT, 'quality.{json,md,svg}')} and quality-train.svg in ${totalSeconds} s`);
await pool.dispose();

function roundDeep(v: unknown): unknown {
  if (typeof v === 'number') return Number.isFinite(v) ? round(v, 4) : null;
  if (Array.isArray(v)) return v.map(roundDeep);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, roundDeep(x)]));
  return v;
}
