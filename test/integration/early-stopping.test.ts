/**
 * Early stopping and screening on the real llama.cpp engine with the project's fixture model:
 * a stopBelow that is not reached changes no bit, one that is reached returns a partial sum
 * in [true score, stopBelow), prefixTokens scores exactly the first tokens, the worker passes
 * both through, and greedy with exact early stopping selects exactly what plain greedy selects.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { greedySelect, type LogLikelihoodScorer, type ScoreRequest } from '../../src/core';
import { LlamaEngine } from '../../src/engines/llama/llamaEngine';
import { LlamaScorer } from '../../src/engines/llama/llamaScorer';
import { CORE_ATTRIBUTES } from '../../tools/attribute-world/corpus';
import { PLANTED_USERS, userPairs } from '../../bench/lib/world';

const WORKER = new URL('../../src/engines/llama/scorerWorker.ts', import.meta.url);
const FIXTURE = process.env.EXACT_FIXTURE_MODEL ?? fileURLToPath(new URL('../fixtures/model/exact-tiny.gguf', import.meta.url));

const pair = userPairs(PLANTED_USERS[2]!, 2, 1)[0]!;
const requests: ScoreRequest[] = [[], ['Concise'], ['Storyteller', 'Vivid']].flatMap((attributes) =>
  [pair.chosen, pair.rejected].map((response) => ({ prompt: pair.prompt, attributes, response })),
);

/** The running sums of a request's token log-probs, summed in the engine's order. */
function prefixSums(logprobs: ReadonlyArray<number>): number[] {
  const sums = [0];
  for (const lp of logprobs) sums.push(sums[sums.length - 1]! + lp);
  return sums;
}

describe('early stopping on the fixture model', () => {
  let engine: LlamaEngine;
  let scorer: LlamaScorer;
  before(async () => {
    engine = await LlamaEngine.load(FIXTURE, { threads: 1 });
    scorer = new LlamaScorer({ modelPath: FIXTURE, workerPath: WORKER, engine: { threads: 1 } });
  });
  after(async () => {
    await engine.dispose();
    await scorer.dispose();
  });

  test('a stopBelow that is not reached changes no bit; one that is reached gives a partial sum in [true, stopBelow)', async () => {
    const detailed = await engine.scoreDetailed(requests);
    const full = detailed.map((d) => d.logLikelihood);
    engine.resetStats();
    assert.deepEqual(await engine.score(requests.map((r) => ({ ...r, stopBelow: -1e9 }))), full);
    assert.equal(engine.scoreStats.skippedTokens, 0);
    for (const [i, r] of requests.entries()) {
      const tokens = detailed[i]!.tokens.length;
      // Half way down: reached somewhere inside the response.
      const stopBelow = full[i]! / 2;
      engine.resetStats();
      const [v] = await engine.score([{ ...r, stopBelow }]);
      assert.ok(full[i]! <= v! && v! < stopBelow, `request ${i}: ${full[i]} <= ${v} < ${stopBelow}`);
      const sums = prefixSums(detailed[i]!.tokens.map((t) => t.logprob));
      const scored = sums.indexOf(v!);
      assert.ok(scored > 0 && scored < tokens, `request ${i}: ${v} is the sum of the first ${scored} of ${tokens} tokens`);
      assert.equal(engine.scoreStats.skippedTokens, tokens - engine.scoreStats.scoredTokens);
      assert.equal(engine.scoreStats.scoredTokens, scored);
    }
    // Above 0 nothing can reach it: no token is scored.
    engine.resetStats();
    assert.deepEqual(await engine.score([{ ...requests[0]!, stopBelow: 1 }]), [0]);
    assert.equal(engine.scoreStats.scoredTokens, 0);
    // And the engine stays exact afterwards (what the stopped requests left in the KV cache).
    assert.deepEqual(await engine.score(requests), full);
  });

  test('prefixTokens scores exactly the first tokens, and the worker passes both fields through', async () => {
    const detailed = await engine.scoreDetailed(requests);
    const cut = requests.map((r) => ({ ...r, prefixTokens: 7 }));
    const v = await engine.score(cut);
    v.forEach((x, i) => assert.equal(x, prefixSums(detailed[i]!.tokens.map((t) => t.logprob))[7]));
    assert.deepEqual(await scorer.scoreBatch(cut), v);
    const stopping = requests.map((r, i) => ({ ...r, stopBelow: detailed[i]!.logLikelihood / 2 }));
    assert.deepEqual(await scorer.scoreBatch(stopping), await engine.score(stopping));
    const { stats } = await scorer.info();
    assert.ok(stats.skippedTokens > 0);
  });

  test('greedy with exact early stopping selects exactly what plain greedy selects, from fewer evaluated tokens', async (t) => {
    const asScorer: LogLikelihoodScorer = { scoreBatch: (r, s) => engine.score(r, s) };
    const pairs = [userPairs(PLANTED_USERS[0]!, 2, 1)[0]!, userPairs(PLANTED_USERS[4]!, 3, 1)[0]!];
    for (const p of pairs) {
      engine.resetStats();
      const plain = await greedySelect(asScorer, p, CORE_ATTRIBUTES, { k: 3 });
      const plainStats = engine.scoreStats;
      engine.resetStats();
      const early = await greedySelect(asScorer, p, CORE_ATTRIBUTES, { k: 3, earlyStopping: true });
      const earlyStats = engine.scoreStats;
      assert.deepEqual([early.attributes, early.objective, early.baseObjective, early.steps], [plain.attributes, plain.objective, plain.baseObjective, plain.steps]);
      assert.ok(earlyStats.skippedTokens > 0);
      assert.ok(earlyStats.scoredTokens < plainStats.scoredTokens);
      t.diagnostic(
        `${p.id}: ${plain.attributes.join(', ')}; scored tokens ${earlyStats.scoredTokens} vs ${plainStats.scoredTokens}, ` +
          `evaluated ${earlyStats.evaluatedTokens} vs ${plainStats.evaluatedTokens}`,
      );
    }
  });
});
