/**
 * Cheaper greedy rounds (src/core/selection.ts) against plain greedy, with a deterministic
 * token-level fake scorer: exact early stopping must select exactly what plain greedy selects
 * (ties included) from fewer scored tokens; screening and lazy greedy are measured heuristics.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attributeGain, greedySelect, screenedGreedySelect, type LogLikelihoodScorer, type ScoreRequest, type SelectionResult } from '../../src/core';
import { SetFunctionScorer, modular, pair } from './helpers';

function hash(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619) >>> 0;
  return h;
}

/**
 * Every (attributes in order, response) has its own token log-probs, multiples of 0.5 in
 * [-2, 0] (sums are exact, so equal objectives are common). It honours stopBelow by checking the
 * running sum every `every` tokens and, when it stops, returns a value strictly between the sum
 * so far and stopBelow (any v with true <= v < stopBelow is allowed). It counts scored tokens.
 */
class TokenScorer implements LogLikelihoodScorer {
  tokens = 0;
  stopped = 0;
  prefixRequests = 0;
  constructor(
    private readonly seed: number,
    private readonly every = 3,
    private readonly length = (response: string): number => (response === pair.chosen ? 12 : 9),
  ) {}

  logprobs(r: ScoreRequest): number[] {
    return Array.from({ length: this.length(r.response) }, (_, i) => -0.5 * (hash(`${this.seed}|${r.attributes.join(',')}|${r.response}|${i}`) % 5));
  }

  async scoreBatch(requests: ReadonlyArray<ScoreRequest>): Promise<number[]> {
    return requests.map((r) => {
      let terms = this.logprobs(r);
      if (r.prefixTokens !== undefined) {
        terms = terms.slice(0, r.prefixTokens);
        this.prefixRequests += 1;
      }
      let sum = 0;
      for (let i = 0; i < terms.length; i++) {
        if (r.stopBelow !== undefined && i % this.every === 0 && sum < r.stopBelow) {
          this.stopped += 1;
          return (sum + r.stopBelow) / 2;
        }
        sum += terms[i]!;
        this.tokens += 1;
      }
      return sum;
    });
  }
}

function sameSelection(a: SelectionResult, b: SelectionResult, message: string): void {
  assert.deepEqual([a.attributes, a.objective, a.baseObjective, a.gain, a.steps], [b.attributes, b.objective, b.baseObjective, b.gain, b.steps], message);
}

const names = (n: number): string[] => Array.from({ length: n }, (_, i) => `a${i}`);

test('exact early stopping selects what plain greedy selects, ties included, from fewer scored tokens', async () => {
  let plainTokens = 0;
  let earlyTokens = 0;
  let stopped = 0;
  let tiedRounds = 0;
  for (let seed = 1; seed <= 150; seed++) {
    const library = names(4 + (seed % 11));
    const k = 1 + (seed % 4);
    const every = 1 + (seed % 4);
    const plainScorer = new TokenScorer(seed, every);
    const earlyScorer = new TokenScorer(seed, every);
    const plain = await greedySelect(plainScorer, pair, library, { k });
    const early = await greedySelect(earlyScorer, pair, library, { k, earlyStopping: true });
    sameSelection(early, plain, `seed ${seed}`);
    plainTokens += plainScorer.tokens;
    earlyTokens += earlyScorer.tokens;
    stopped += earlyScorer.stopped;
    // Count rounds where the winner tied with another candidate (plain greedy's tie rule decided).
    for (let round = 0; round < plain.steps.length; round++) {
      const chosen = plain.attributes.slice(0, round);
      const values = await Promise.all(library.filter((a) => !chosen.includes(a)).map(async (a) => (await attributeGain(plainScorer, pair, [...chosen, a])).objective));
      if (values.filter((v) => v === plain.steps[round]!.objective).length > 1) tiedRounds += 1;
    }
  }
  assert.ok(tiedRounds >= 10, `only ${tiedRounds} rounds had ties: the test would not check the tie rule`);
  assert.ok(stopped > 0);
  assert.ok(earlyTokens < plainTokens, `${earlyTokens} vs ${plainTokens}`);
});

test('early stopping keeps the non-negativity filter, and makes two calls per candidate', async () => {
  for (let seed = 1; seed <= 40; seed++) {
    const library = names(8);
    const plain = await greedySelect(new TokenScorer(seed), pair, library, { k: 4, nonNegative: true });
    const early = await greedySelect(new TokenScorer(seed), pair, library, { k: 4, nonNegative: true, earlyStopping: true });
    sameSelection(early, plain, `seed ${seed}`);
  }
  const early = await greedySelect(new TokenScorer(3), pair, names(6), { k: 2, earlyStopping: true });
  // Round 1: the base, then each candidate's rejected and chosen response; round 2 likewise.
  assert.equal(early.scorerCalls, 1 + 2 * 6 + 2 * 5);
  assert.equal(early.scoredSequences, 2 + 2 * 6 + 2 * 5);
  assert.equal(early.objectiveEvaluations, 1 + 6 + 5);
});

test('a scorer that ignores stopBelow gives the same selection with early stopping', async () => {
  const f = modular({ A: 0.5, B: 2, C: -1, D: 1.5, E: 0.1, F: 1 });
  for (const k of [1, 3, 6]) {
    sameSelection(
      await greedySelect(new SetFunctionScorer(f), pair, ['A', 'B', 'C', 'D', 'E', 'F'], { k, earlyStopping: true }),
      await greedySelect(new SetFunctionScorer(f), pair, ['A', 'B', 'C', 'D', 'E', 'F'], { k }),
      `k=${k}`,
    );
  }
  const ties = modular({ A: 1, B: 1, C: 1, D: 1 });
  const tied = await greedySelect(new SetFunctionScorer(ties), pair, ['D', 'C', 'B', 'A'], { k: 2, earlyStopping: true });
  assert.deepEqual(tied.attributes, ['D', 'C']);
});

test('screening: exact values for what it picks, plain greedy when every candidate is a finalist', async () => {
  for (let seed = 1; seed <= 30; seed++) {
    const library = names(10);
    const all = await screenedGreedySelect(new TokenScorer(seed), pair, library, { k: 3, finalists: 10, prefixTokens: 4 });
    sameSelection(all, await greedySelect(new TokenScorer(seed), pair, library, { k: 3 }), `seed ${seed}`);
    const scorer = new TokenScorer(seed);
    const few = await screenedGreedySelect(scorer, pair, library, { k: 3, finalists: 2, prefixTokens: 4 });
    assert.ok(scorer.prefixRequests > 0);
    const exact = await attributeGain(new TokenScorer(seed), pair, few.attributes);
    assert.deepEqual([few.objective, few.baseObjective], [exact.objective, exact.baseObjective], `seed ${seed}`);
    let before = few.baseObjective;
    for (const step of few.steps) {
      assert.equal(step.marginalGain, step.objective - before);
      before = step.objective;
    }
  }
});
