import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attributeGain, chanceLevel, exhaustiveSelect, greedySelect, lazyGreedySelect, subsetsUpTo } from '../../src/core';
import { SetFunctionScorer, coverage, modular, pair } from './helpers';

const lib = ['A', 'B', 'C', 'D', 'E', 'F'];

test('modular objective: greedy equals exhaustive, in order of weight', async () => {
  const f = modular({ A: 0.5, B: 2, C: -1, D: 1.5, E: 0.1, F: 1 });
  const g = await greedySelect(new SetFunctionScorer(f), pair, lib, { k: 3 });
  const x = await exhaustiveSelect(new SetFunctionScorer(f), pair, lib, { k: 3 });
  assert.deepEqual(g.attributes, ['B', 'D', 'F']);
  assert.deepEqual([...x.attributes].sort(), ['B', 'D', 'F']);
  assert.equal(g.objective, 4.5);
  assert.equal(x.objective, 4.5);
  assert.equal(g.gain, 4.5);
  assert.deepEqual(g.steps.map((s) => s.marginalGain), [2, 1.5, 1]);
});

test('the objective is log p(chosen | x, A) - log p(rejected | x, A), and gain is relative to the base prompt', async () => {
  // chosen gets 10 + f(A), rejected gets 4 + 2*|A|: J(A) = 6 + f(A) - 2|A|.
  const scorer = {
    async scoreBatch(reqs: ReadonlyArray<{ attributes: ReadonlyArray<string>; response: string; prompt: string }>) {
      return reqs.map((r) => {
        assert.equal(r.prompt, pair.prompt);
        return r.response === pair.chosen ? 10 + (r.attributes.includes('A') ? 5 : 0) : 4 + 2 * r.attributes.length;
      });
    },
  };
  const g = await greedySelect(scorer, pair, ['A', 'B'], { k: 1 });
  assert.deepEqual(g.attributes, ['A']);
  assert.equal(g.baseObjective, 6);
  assert.equal(g.objective, 9);
  assert.equal(g.gain, 3);
  assert.deepEqual(await attributeGain(scorer, pair, ['B']), { objective: 4, baseObjective: 6, gain: -2 });
});

test('greedy reports its scorer work: one batched call per round', async () => {
  const scorer = new SetFunctionScorer(modular({ A: 1, B: 2, C: 3 }));
  const g = await greedySelect(scorer, pair, lib, { k: 3 });
  assert.equal(g.scorerCalls, 3);
  assert.equal(scorer.calls, 3);
  // the empty set, then 6 + 5 + 4 candidate sets, two sequences each
  assert.equal(g.objectiveEvaluations, 1 + 6 + 5 + 4);
  assert.equal(g.scoredSequences, 2 * 16);
  assert.equal(scorer.sequences, g.scoredSequences);
});

test('ties break deterministically toward the library order', async () => {
  const f = modular({ A: 1, B: 1, C: 1, D: 1 });
  const g = await greedySelect(new SetFunctionScorer(f), pair, ['D', 'C', 'B', 'A'], { k: 2 });
  assert.deepEqual(g.attributes, ['D', 'C']);
  const l = await lazyGreedySelect(new SetFunctionScorer(f), pair, ['D', 'C', 'B', 'A'], { k: 2 });
  assert.deepEqual(l.attributes, ['D', 'C']);
});

test('non-negativity filter stops when no candidate has a positive marginal gain', async () => {
  const f = modular({ A: 2, B: -1, C: 0, D: -3, E: -0.5, F: -2 });
  const plain = await greedySelect(new SetFunctionScorer(f), pair, lib, { k: 3 });
  assert.deepEqual(plain.attributes, ['A', 'C', 'E']);
  const filtered = await greedySelect(new SetFunctionScorer(f), pair, lib, { k: 3, nonNegative: true });
  assert.deepEqual(filtered.attributes, ['A']);
  assert.equal(filtered.gain, 2);
  const none = await greedySelect(new SetFunctionScorer(modular({})), pair, lib, { k: 3, nonNegative: true });
  assert.deepEqual(none.attributes, []);
  assert.equal(none.gain, 0);
  const lazy = await lazyGreedySelect(new SetFunctionScorer(f), pair, lib, { k: 3, nonNegative: true });
  assert.deepEqual(lazy.attributes, ['A']);
});

test('constructed non-submodular objective: greedy falls below exhaustive, ratio measured', async () => {
  // B and C are weak alone but strong together (complementary attributes).
  const f = (a: ReadonlyArray<string>): number => {
    const s = new Set(a);
    let v = 0;
    if (s.has('A')) v += 1;
    if (s.has('B')) v += 0.4;
    if (s.has('C')) v += 0.4;
    if (s.has('B') && s.has('C')) v += 2;
    return v;
  };
  const g = await greedySelect(new SetFunctionScorer(f), pair, ['A', 'B', 'C', 'D'], { k: 2 });
  const x = await exhaustiveSelect(new SetFunctionScorer(f), pair, ['A', 'B', 'C', 'D'], { k: 2 });
  assert.deepEqual(g.attributes, ['A', 'B']);
  assert.deepEqual(x.attributes, ['B', 'C']);
  const ratio = g.gain / x.gain;
  console.log(`non-submodular example: greedy F=${g.gain.toFixed(2)}, exhaustive F=${x.gain.toFixed(2)}, ratio=${ratio.toFixed(3)}`);
  assert.ok(Math.abs(ratio - 1.4 / 2.8) < 1e-12);
  assert.equal(x.objectiveEvaluations, 1 + 4 + 6);
});

test('submodular objective: lazy greedy returns the plain greedy set with fewer evaluations', async () => {
  const universe = 'abcdefghijklmnopqrst'.split('');
  const names = Array.from({ length: 42 }, (_, i) => `attr${i}`);
  // deterministic pseudo-random coverage sets
  let seed = 7;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const covers: Record<string, string[]> = {};
  for (const n of names) covers[n] = universe.filter(() => rand() < 0.15);
  const weight: Record<string, number> = {};
  universe.forEach((e, i) => (weight[e] = 1 + (i % 5) * 0.37));
  const f = coverage(covers, weight);
  for (const k of [1, 3, 5, 10]) {
    const plain = await greedySelect(new SetFunctionScorer(f), pair, names, { k });
    const lazy = await lazyGreedySelect(new SetFunctionScorer(f), pair, names, { k });
    assert.deepEqual(lazy.attributes, plain.attributes, `k=${k}`);
    assert.ok(Math.abs(lazy.objective - plain.objective) < 1e-9);
    if (k > 1) assert.ok(lazy.objectiveEvaluations < plain.objectiveEvaluations, `k=${k}: ${lazy.objectiveEvaluations} vs ${plain.objectiveEvaluations}`);
  }
  const batched = await lazyGreedySelect(new SetFunctionScorer(f), pair, names, { k: 5, batchSize: 4 });
  const plain5 = await greedySelect(new SetFunctionScorer(f), pair, names, { k: 5 });
  assert.deepEqual(batched.attributes, plain5.attributes);
});

test('exhaustive search enumerates every subset of size at most k exactly once', () => {
  const all = [...subsetsUpTo(6, 3)].map((s) => s.join(','));
  assert.equal(all.length, 6 + 15 + 20);
  assert.equal(new Set(all).size, all.length);
  assert.deepEqual(all.slice(0, 7), ['0', '1', '2', '3', '4', '5', '0,1']);
  assert.equal([...subsetsUpTo(42, 3)].length, 42 + 861 + 11480);
  assert.equal([...subsetsUpTo(2, 5)].length, 3);
});

test('k = 0, an empty library and a bad k', async () => {
  const s = new SetFunctionScorer(modular({ A: 1 }));
  assert.deepEqual((await greedySelect(s, pair, ['A'], { k: 0 })).attributes, []);
  assert.deepEqual((await greedySelect(s, pair, [], { k: 3 })).attributes, []);
  assert.deepEqual((await lazyGreedySelect(s, pair, [], { k: 3 })).attributes, []);
  await assert.rejects(greedySelect(s, pair, ['A'], { k: -1 }), /non-negative integer/);
  await assert.rejects(greedySelect(s, pair, ['A', 'A'], { k: 1 }), /duplicate/);
});

test('cancellation stops selection with an AbortError', async () => {
  const controller = new AbortController();
  let calls = 0;
  const scorer = {
    async scoreBatch(reqs: ReadonlyArray<unknown>) {
      calls += 1;
      if (calls === 2) controller.abort();
      return reqs.map(() => 0);
    },
  };
  await assert.rejects(greedySelect(scorer, pair, lib, { k: 5, signal: controller.signal }), { name: 'AbortError' });
  assert.equal(calls, 2);
});

test('a scorer that returns the wrong number of scores is reported', async () => {
  const scorer = { scoreBatch: async () => [1] };
  await assert.rejects(greedySelect(scorer, pair, lib, { k: 1 }), /returned 1 scores for 14 requests/);
});

test('chance-level stopping: an attribute is added only when its gain beats significance x sqrt(|log p(y_w)| + |log p(y_l)|)', async () => {
  // log p(chosen | x, A) = -100 + f(A), log p(rejected | x, A) = -125: the pair carries 225 nats, sqrt = 15.
  const f = modular({ A: 20, B: 9, C: 6, D: 1 });
  const scorer = {
    async scoreBatch(reqs: ReadonlyArray<{ attributes: ReadonlyArray<string>; response: string }>) {
      return reqs.map((r) => (r.response === pair.chosen ? -100 + f(r.attributes) : -125));
    },
  };
  assert.equal(chanceLevel({ chosen: -100, rejected: -125 }, 0.5), 7.5);
  // At 0.5 the bar is 7.5 nats: A (20) and B (9) clear it, C (6) does not, so k = 3 is a maximum.
  const g = await greedySelect(scorer, pair, lib, { k: 3, significance: 0.5 });
  assert.deepEqual(g.attributes, ['A', 'B']);
  assert.deepEqual(g.base, { chosen: -100, rejected: -125 });
  assert.equal(g.gain, 29);
  const l = await lazyGreedySelect(scorer, pair, lib, { k: 3, significance: 0.5 });
  assert.deepEqual(l.attributes, ['A', 'B']);
  // Nothing clears a bar of 30 nats: the choice is unexplained and selects nothing.
  const none = await greedySelect(scorer, pair, lib, { k: 3, significance: 2 });
  assert.deepEqual([none.attributes, none.gain, none.objective], [[], 0, 25]);
  // Significance 0 is the non-negativity filter.
  const zero = await greedySelect(scorer, pair, lib, { k: 5, significance: 0 });
  assert.deepEqual(zero.attributes, ['A', 'B', 'C', 'D']);
  const plain = await greedySelect(scorer, pair, lib, { k: 5 });
  assert.deepEqual(plain.attributes, ['A', 'B', 'C', 'D', 'E']);
});
