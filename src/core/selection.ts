/**
 * The pair objective of Eq. (11)-(12) and attribute selection (Algorithm 1): plain greedy (with
 * optional exact early stopping), greedy with screening, lazy greedy (CELF) and exhaustive search,
 * all counting the scorer work they cause.
 */
import type { LogLikelihoodScorer, ScoreRequest } from './ports';
import { throwIfAborted } from './ports';

export interface PairText {
  readonly prompt: string;
  readonly chosen: string;
  readonly rejected: string;
}

export interface ScorerUsage {
  /** scoreBatch invocations. */
  scorerCalls: number;
  /** Individual (prompt, attributes, response) log-likelihoods requested. */
  scoredSequences: number;
  /** Attribute sets whose objective J was computed (the empty set included). */
  objectiveEvaluations: number;
}

/**
 * J(A) = log p(y_w | x, A) - log p(y_l | x, A) for one pair, evaluated in batches.
 * Attribute order is kept as given: it is the order written into the prompt.
 */
class PairObjective {
  readonly usage: ScorerUsage = { scorerCalls: 0, scoredSequences: 0, objectiveEvaluations: 0 };
  /** log p(y_w | x) and log p(y_l | x) once the empty set has been evaluated. */
  base: BaseLikelihoods | undefined;

  constructor(
    private readonly scorer: LogLikelihoodScorer,
    private readonly pair: PairText,
    private readonly signal?: AbortSignal,
  ) {}

  /**
   * J for each set, one batch. With `prefixTokens`, an estimate from the first tokens of each
   * response only (screening; a scorer that cannot cut responses short scores them in full).
   */
  async evaluate(sets: ReadonlyArray<ReadonlyArray<string>>, prefixTokens?: number): Promise<number[]> {
    if (sets.length === 0) return [];
    const limit = prefixTokens === undefined ? {} : { prefixTokens };
    const scores = await this.score(sets.flatMap((attributes) => [this.request(attributes, 'chosen', limit), this.request(attributes, 'rejected', limit)]));
    this.usage.objectiveEvaluations += sets.length;
    const plain = sets.findIndex((a) => a.length === 0);
    if (plain >= 0 && prefixTokens === undefined) this.base = { chosen: scores[2 * plain]!, rejected: scores[2 * plain + 1]! };
    return sets.map((_, i) => scores[2 * i]! - scores[2 * i + 1]!);
  }

  /**
   * The set with the largest J (the first of `sets` among equals), by exact early stopping. The
   * sets are tried in order of `priority` (highest first; default: as given), each with two
   * calls: its rejected response, then its chosen one with `stopBelow` set so the scorer may stop
   * as soon as even a perfect rest (every remaining log-prob 0) could not beat the best so far.
   * (Scoring every rejected response in one call first would allow ordering by them, but the
   * chosen response then no longer follows its own prompt in the KV cache: on the fixture model
   * that cost more evaluated tokens than the better order saved.) With `withBase`, one call first
   * scores both responses of the empty set. `values` holds J exactly for every set scored to the
   * end (the winner among them) and an upper bound for the others.
   */
  async best(
    sets: ReadonlyArray<ReadonlyArray<string>>,
    withBase: boolean,
    priority?: ReadonlyArray<number>,
  ): Promise<{ best: number; values: number[]; base: number | undefined }> {
    let base: number | undefined;
    if (withBase) {
      const [c, r] = await this.score([this.request([], 'chosen'), this.request([], 'rejected')]);
      base = c! - r!;
      this.base = { chosen: c!, rejected: r! };
    }
    const order = sets.map((_, i) => i);
    if (priority !== undefined) order.sort((a, b) => priority[b]! - priority[a]! || a - b);
    const values: number[] = new Array<number>(sets.length);
    let best = -1;
    for (const i of order) {
      const [rejected] = await this.score([this.request(sets[i]!, 'rejected')]);
      const bound = best < 0 ? undefined : pruneBelow(values[best]!, rejected!);
      const request = this.request(sets[i]!, 'chosen', bound === undefined ? {} : { stopBelow: bound });
      const [chosen] = await this.score([request]);
      values[i] = chosen! - rejected!;
      // Below the bound the score may be a partial sum: J is at most values[i] < the best.
      if (bound !== undefined && chosen! < bound) continue;
      if (best < 0 || values[i]! > values[best]! || (values[i] === values[best] && i < best)) best = i;
    }
    this.usage.objectiveEvaluations += sets.length + (withBase ? 1 : 0);
    return { best, values, base };
  }

  private request(attributes: ReadonlyArray<string>, response: 'chosen' | 'rejected', extra: Partial<ScoreRequest> = {}): ScoreRequest {
    return { prompt: this.pair.prompt, attributes, response: this.pair[response], ...extra };
  }

  private async score(requests: ScoreRequest[]): Promise<number[]> {
    throwIfAborted(this.signal);
    const scores = await this.scorer.scoreBatch(requests, this.signal);
    if (!Array.isArray(scores) || scores.length !== requests.length) {
      throw new Error(`The scorer returned ${Array.isArray(scores) ? scores.length : 'no list of'} scores for ${requests.length} requests.`);
    }
    // Engines check their sources' numbers (e.g. each log-prob <= 0); this keeps a NaN, an
    // infinity or a non-number from any scorer out of a stored selection.
    const bad = scores.findIndex((s) => typeof s !== 'number' || !Number.isFinite(s));
    if (bad >= 0) {
      throw Object.assign(new Error(`The scorer returned ${typeof scores[bad] === 'string' ? JSON.stringify(scores[bad]) : String(scores[bad])} as a log-likelihood (request ${bad}); it must be a finite number. Nothing was stored.`), {
        indexingClass: 'fatal',
      });
    }
    this.usage.scorerCalls += 1;
    this.usage.scoredSequences += requests.length;
    return scores;
  }

  async evaluateOne(attributes: ReadonlyArray<string>): Promise<number> {
    const [value] = await this.evaluate([attributes]);
    return value!;
  }
}

export interface BaseLikelihoods {
  /** log p(y_w | x), the plain prompt. */
  readonly chosen: number;
  /** log p(y_l | x). */
  readonly rejected: number;
}

/**
 * When is a marginal gain more than chance? An attribute line that has nothing to do with a
 * pair still moves every token's log-probability a little, and the best of 14-42 such nudges
 * is always positive: over a pair of responses it grows with how many nats the responses
 * carry. We take that size from the pair itself, as s = sqrt(|log p(y_w | x)| + |log p(y_l | x)|)
 * (a sum of per-token perturbations whose spread grows with each token's surprisal), and add
 * an attribute only when its marginal gain exceeds `significance` x s. The test needs the
 * winner's exact gain and the plain prompt's two log-likelihoods only, never the losing
 * candidates' values (so a selection that only bounds them can apply it). The default
 * `significance` is chosen by the planted-user benchmark (bench/quality.ts), which also
 * reports how many planted and unplanted greedy steps each threshold keeps.
 */
export function chanceLevel(base: BaseLikelihoods, significance: number): number {
  return significance * Math.sqrt(Math.abs(base.chosen) + Math.abs(base.rejected));
}

/** Chosen by bench/quality.ts on data seed 1 (the best grid point there; see bench/results/quality.md). */
export const DEFAULT_SIGNIFICANCE = 0.25;

export interface SelectionStep {
  readonly attribute: string;
  /** Delta(a | A) = J(A + a) - J(A). */
  readonly marginalGain: number;
  readonly objective: number;
}

/**
 * The chosen response's stopBelow for a candidate whose rejected response scored `rejected`,
 * when the best J so far is `best`: a chosen score below it gives J < best, by a margin far above
 * the rounding of J = chosen - rejected, so a stopped candidate could not even have tied.
 * Undefined when the bound is not a finite number.
 */
function pruneBelow(best: number, rejected: number): number | undefined {
  const bound = best + rejected - 1e-9 * (1 + Math.abs(best) + Math.abs(rejected));
  return Number.isFinite(bound) ? bound : undefined;
}

export interface SelectionResult extends ScorerUsage {
  /** Selected attributes in the order they were added. */
  readonly attributes: string[];
  /** J(A). */
  readonly objective: number;
  /** J(empty set): the base prompt. */
  readonly baseObjective: number;
  /** J(A) - J(empty set), Eq. (12). */
  readonly gain: number;
  readonly steps: SelectionStep[];
  /** The plain prompt's log-likelihoods (absent only when nothing was scored). */
  readonly base?: BaseLikelihoods;
}

export interface SelectionOptions {
  /** Budget k (default 3). */
  readonly k?: number;
  /** B.1.2: only add an attribute whose marginal gain is strictly positive. */
  readonly nonNegative?: boolean;
  /**
   * Only add an attribute whose marginal gain exceeds chanceLevel(base, significance) (and 0):
   * k becomes a maximum, and a pair nothing explains selects no attribute. Undefined: off.
   */
  readonly significance?: number;
  readonly signal?: AbortSignal;
  /**
   * Exact early stopping (PairObjective.best): the same selection, ties included, from fewer
   * scored tokens, in more (smaller) scorer calls. Candidates are tried in order of the previous
   * round's J (the first round: library order), so the best tends to be found early.
   */
  readonly earlyStopping?: boolean;
}

/** The smallest marginal gain an attribute needs under these options (-Infinity: any). */
function requiredGain(options: SelectionOptions, base: BaseLikelihoods | undefined): number {
  let need = options.nonNegative === true ? 0 : Number.NEGATIVE_INFINITY;
  if (options.significance !== undefined && base !== undefined) need = Math.max(need, 0, chanceLevel(base, options.significance));
  return need;
}

/** Whether a marginal gain clears the bar (strictly: a tie with chance adds nothing). */
function clears(gain: number, need: number): boolean {
  return need === Number.NEGATIVE_INFINITY || gain > need;
}

export const DEFAULT_K = 3;

function checkInputs(library: ReadonlyArray<string>, k: number): void {
  if (!Number.isInteger(k) || k < 0) throw new RangeError(`k must be a non-negative integer, got ${k}.`);
  if (new Set(library).size !== library.length) throw new Error('The attribute library contains duplicate names.');
}

function result(
  objective: PairObjective,
  base: number,
  steps: SelectionStep[],
): SelectionResult {
  const value = steps.length === 0 ? base : steps[steps.length - 1]!.objective;
  return {
    attributes: steps.map((s) => s.attribute),
    objective: value,
    baseObjective: base,
    gain: value - base,
    steps,
    ...(objective.base !== undefined ? { base: objective.base } : {}),
    ...objective.usage,
  };
}

/** What one greedy round found: the candidate to add (its index), its J, and J(empty set) when asked. */
interface RoundPick {
  readonly best: number;
  readonly value: number;
  readonly base: number | undefined;
}

/**
 * The greedy loop shared by plain greedy and screening: k rounds, each adding the candidate
 * `pick` finds (which also scores the empty set when `withBase`).
 */
async function greedyRounds(
  objective: PairObjective,
  library: ReadonlyArray<string>,
  options: Omit<SelectionOptions, 'earlyStopping'>,
  pick: (candidates: string[], chosen: ReadonlyArray<string>, withBase: boolean, round: number) => Promise<RoundPick>,
): Promise<SelectionResult> {
  const k = options.k ?? DEFAULT_K;
  checkInputs(library, k);
  const chosen: string[] = [];
  const steps: SelectionStep[] = [];
  let base: number | undefined;
  let current = 0;
  for (let round = 0; round < k; round++) {
    const candidates = library.filter((a) => !chosen.includes(a));
    if (candidates.length === 0) break;
    const found = await pick(candidates, chosen, base === undefined, round);
    if (base === undefined) current = base = found.base!;
    const marginalGain = found.value - current;
    if (!clears(marginalGain, requiredGain(options, objective.base))) break;
    chosen.push(candidates[found.best]!);
    current = found.value;
    steps.push({ attribute: candidates[found.best]!, marginalGain, objective: current });
  }
  if (base === undefined) base = await objective.evaluateOne([]);
  return result(objective, base, steps);
}

/**
 * Algorithm 1: add, k times, the attribute with the largest J(A + a). Each round is one
 * batched scorer call (the first also scores the empty set); with `earlyStopping`, two calls per
 * candidate. Ties go to the attribute that comes first in the library.
 */
export async function greedySelect(
  scorer: LogLikelihoodScorer,
  pair: PairText,
  library: ReadonlyArray<string>,
  options: SelectionOptions = {},
): Promise<SelectionResult> {
  const objective = new PairObjective(scorer, pair, options.signal);
  // J of each candidate in the previous round (an upper bound where early stopping cut it short).
  let previous = new Map<string, number>();
  return greedyRounds(objective, library, options, async (candidates, chosen, withBase, round) => {
    const sets = candidates.map((a) => [...chosen, a]);
    if (options.earlyStopping === true) {
      const found = await objective.best(sets, withBase, round === 0 ? undefined : candidates.map((a) => previous.get(a) ?? Infinity));
      previous = new Map(candidates.map((a, i) => [a, found.values[i]!]));
      return { best: found.best, value: found.values[found.best]!, base: found.base };
    }
    const values = await objective.evaluate(withBase ? [[], ...sets] : sets);
    const base = withBase ? values.shift() : undefined;
    let best = 0;
    for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
    return { best, value: values[best]!, base };
  });
}

export interface ScreeningOptions extends Omit<SelectionOptions, 'earlyStopping'> {
  /** Scored tokens per response in the screening pass (default 16). */
  readonly prefixTokens?: number;
  /** Candidates per round whose whole responses are scored (default 3). */
  readonly finalists?: number;
}

/**
 * Greedy with screening, a heuristic: each round first estimates J for every candidate from the
 * first `prefixTokens` tokens of both responses (one call), then picks among the `finalists`
 * best estimates by exact early stopping on the whole responses (best estimate first). It
 * differs from plain greedy when the best candidate does not look best on the responses' first
 * tokens. Ties among the finalists go to the library order.
 */
export async function screenedGreedySelect(
  scorer: LogLikelihoodScorer,
  pair: PairText,
  library: ReadonlyArray<string>,
  options: ScreeningOptions = {},
): Promise<SelectionResult> {
  const prefixTokens = Math.max(1, Math.floor(options.prefixTokens ?? 16));
  const finalists = Math.max(1, Math.floor(options.finalists ?? 3));
  const objective = new PairObjective(scorer, pair, options.signal);
  return greedyRounds(objective, library, options, async (candidates, chosen, withBase) => {
    let shortlist = candidates.map((_, i) => i);
    let estimates: number[] | undefined;
    if (candidates.length > finalists) {
      const screened = await objective.evaluate(candidates.map((a) => [...chosen, a]), prefixTokens);
      shortlist = shortlist.sort((a, b) => screened[b]! - screened[a]! || a - b).slice(0, finalists).sort((a, b) => a - b);
      estimates = shortlist.map((i) => screened[i]!);
    }
    const found = await objective.best(shortlist.map((i) => [...chosen, candidates[i]!]), withBase, estimates);
    return { best: shortlist[found.best]!, value: found.values[found.best]!, base: found.base };
  });
}

export interface LazySelectionOptions extends Omit<SelectionOptions, 'earlyStopping'> {
  /** How many stale candidates to re-evaluate per scorer call (default 1). */
  readonly batchSize?: number;
}

/**
 * Lazy greedy (CELF): marginal gains from earlier rounds are upper bounds on later ones when
 * the objective is submodular, so only the candidate on top of the bound queue is re-evaluated.
 * The top is accepted once its gain is fresh for this round; with diminishing returns the result
 * is exactly the plain greedy set (same tie-breaking) with fewer objective evaluations. Without
 * diminishing returns it is still a valid heuristic, but may differ from plain greedy.
 */
export async function lazyGreedySelect(
  scorer: LogLikelihoodScorer,
  pair: PairText,
  library: ReadonlyArray<string>,
  options: LazySelectionOptions = {},
): Promise<SelectionResult> {
  const k = options.k ?? DEFAULT_K;
  const batchSize = Math.max(1, options.batchSize ?? 1);
  checkInputs(library, k);
  const objective = new PairObjective(scorer, pair, options.signal);
  if (k === 0 || library.length === 0) {
    return result(objective, await objective.evaluateOne([]), []);
  }
  const first = await objective.evaluate([[], ...library.map((a) => [a])]);
  const base = first.shift()!;
  // Queue entries: library index, upper bound on the marginal gain, and the round it was computed in.
  const queue = library.map((_, index) => ({ index, bound: first[index]! - base, round: 0 }));
  const order = (a: (typeof queue)[number], b: (typeof queue)[number]): number => b.bound - a.bound || a.index - b.index;
  const chosen: string[] = [];
  const steps: SelectionStep[] = [];
  let current = base;
  for (let round = 0; round < k && queue.length > 0; round++) {
    for (;;) {
      queue.sort(order);
      const top = queue[0]!;
      if (top.round === round) {
        if (!clears(top.bound, requiredGain(options, objective.base))) return result(objective, base, steps);
        queue.shift();
        const attribute = library[top.index]!;
        chosen.push(attribute);
        current += top.bound;
        steps.push({ attribute, marginalGain: top.bound, objective: current });
        break;
      }
      const stale = queue.filter((e) => e.round !== round).slice(0, batchSize);
      const values = await objective.evaluate(stale.map((e) => [...chosen, library[e.index]!]));
      stale.forEach((e, i) => {
        e.bound = values[i]! - current;
        e.round = round;
      });
    }
  }
  return result(objective, base, steps);
}

export interface ExhaustiveOptions {
  readonly k?: number;
  /** Sets scored per scorer call (default 64). */
  readonly batchSets?: number;
  readonly signal?: AbortSignal;
}

/** All subsets of size at most k, in library order (Table 7's S*). Ties go to the first enumerated. */
export async function exhaustiveSelect(
  scorer: LogLikelihoodScorer,
  pair: PairText,
  library: ReadonlyArray<string>,
  options: ExhaustiveOptions = {},
): Promise<SelectionResult> {
  const k = options.k ?? DEFAULT_K;
  checkInputs(library, k);
  const batchSets = Math.max(1, options.batchSets ?? 64);
  const objective = new PairObjective(scorer, pair, options.signal);
  const base = await objective.evaluateOne([]);
  let bestSet: number[] = [];
  let bestValue = base;
  let batch: number[][] = [];
  const flush = async (): Promise<void> => {
    const values = await objective.evaluate(batch.map((s) => s.map((i) => library[i]!)));
    values.forEach((v, i) => {
      if (v > bestValue) {
        bestValue = v;
        bestSet = batch[i]!;
      }
    });
    batch = [];
  };
  for (const subset of subsetsUpTo(library.length, k)) {
    batch.push(subset);
    if (batch.length >= batchSets) await flush();
  }
  if (batch.length > 0) await flush();
  return { ...result(objective, base, []), attributes: bestSet.map((i) => library[i]!), objective: bestValue, gain: bestValue - base };
}

/** Index subsets of {0..n-1} with 1..k elements: by size, then lexicographically. */
export function* subsetsUpTo(n: number, k: number): Generator<number[]> {
  for (let size = 1; size <= Math.min(k, n); size++) {
    const idx = Array.from({ length: size }, (_, i) => i);
    for (;;) {
      yield [...idx];
      let i = size - 1;
      while (i >= 0 && idx[i] === n - size + i) i--;
      if (i < 0) break;
      idx[i]! += 1;
      for (let j = i + 1; j < size; j++) idx[j] = idx[j - 1]! + 1;
    }
  }
}

/** J(A) - J(empty set) for given attributes: how much they widen the preferred-vs-rejected gap. */
export async function attributeGain(
  scorer: LogLikelihoodScorer,
  pair: PairText,
  attributes: ReadonlyArray<string>,
  signal?: AbortSignal,
): Promise<{ objective: number; baseObjective: number; gain: number }> {
  const objective = new PairObjective(scorer, pair, signal);
  const [base, value] = await objective.evaluate(attributes.length === 0 ? [[]] : [[], attributes]);
  const v = value ?? base!;
  return { objective: v, baseObjective: base!, gain: v - base! };
}
