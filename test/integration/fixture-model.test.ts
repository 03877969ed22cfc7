/**
 * The project's tiny trained model (test/fixtures/model/exact-tiny.gguf, trained on the
 * attribute world by tools/train-fixture) through the exact llama.cpp scorer: on held-out
 * prompts it should prefer the response written for the attributes it is given, and follow
 * Concise vs. Storyteller when generating. Skipped until the fixture exists; EXACT_FIXTURE_MODEL
 * points it at another checkpoint.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CONFLICTING_PAIRS, heldOutPrompts, makeRng, sampleAttributeSet, writeResponse } from '../../tools/attribute-world/corpus';
import { LlamaEngine } from '../../src/engines/llama/llamaEngine';
import { PrefixReference } from '../support/llamaReference';

const FIXTURE = process.env.EXACT_FIXTURE_MODEL ?? fileURLToPath(new URL('../fixtures/model/exact-tiny.gguf', import.meta.url));

const conflict = (a: ReadonlyArray<string>, b: ReadonlyArray<string>): boolean =>
  a.some((x) => b.includes(x) || CONFLICTING_PAIRS.some(([p, q]) => (p === x && b.includes(q)) || (q === x && b.includes(p))));

describe('fixture model', () => {
  let engine: LlamaEngine;
  before(async () => {
    assert.ok(existsSync(FIXTURE), `no fixture model at ${FIXTURE}: it is committed; rebuild it with bash tools/train-fixture/build.sh`);
    engine = await LlamaEngine.load(FIXTURE, { contextSize: 1024 });
  });
  after(async () => engine?.dispose());

  test('uses ChatML and ends turns with <|im_end|>', () => {
    assert.equal(engine.promptFormat.id, 'chatml');
    assert.deepEqual(engine.tokenize('<|im_end|>', true), [engine.modelInfo.eos]);
  });

  test('the response written for A is likelier under (x, A) than under (x, B) on held-out prompts', async (t) => {
    const rng = makeRng(20250101);
    const prompts = heldOutPrompts(77, 48);
    const requests = [];
    for (const [i, prompt] of prompts.entries()) {
      const a = sampleAttributeSet(rng);
      let b = sampleAttributeSet(rng);
      while (conflict(a, b)) b = sampleAttributeSet(rng);
      const response = writeResponse(prompt, a, i);
      requests.push({ prompt: prompt.text, attributes: a, response }, { prompt: prompt.text, attributes: b, response });
    }
    const t0 = performance.now();
    const scores = await engine.score(requests);
    const ms = performance.now() - t0;
    let wins = 0;
    for (let i = 0; i < prompts.length; i++) if (scores[2 * i]! > scores[2 * i + 1]!) wins++;
    const rate = wins / prompts.length;
    const margins = prompts.map((_, i) => scores[2 * i]! - scores[2 * i + 1]!).sort((x, y) => x - y);
    t.diagnostic(
      `follow rate ${wins}/${prompts.length} = ${(rate * 100).toFixed(0)}% (median margin ${margins[margins.length >> 1]!.toFixed(2)} nats); ` +
        `${requests.length} sequences scored in ${ms.toFixed(0)} ms`,
    );
    // Measured 48/48 on the first trained fixture (median margin 42 nats); the bar is well below.
    assert.ok(rate >= 0.75, `follow rate ${rate}`);
  });

  test('per-token log-probs agree with a float64 log-softmax of all logits (max 1e-4) and with the whole-distribution path', async (t) => {
    // Held-out pairs as indexing scores them: the model's greedy choice is the response token at
    // most positions but not all.
    const rng = makeRng(20250202);
    const requests = heldOutPrompts(79, 12).flatMap((prompt, i) => {
      const a = sampleAttributeSet(rng);
      const response = writeResponse(prompt, a, i);
      return [a, [], sampleAttributeSet(rng)].map((attributes) => ({ prompt: prompt.text, attributes, response }));
    });
    const slow = await LlamaEngine.load(FIXTURE, { contextSize: 1024, probabilityPath: 'distribution' });
    const reference = await PrefixReference.load(FIXTURE, 1024);
    try {
      assert.equal(engine.modelInfo.probabilityPath, 'logits');
      assert.equal(slow.modelInfo.probabilityPath, 'distribution');
      engine.resetStats();
      let t0 = performance.now();
      const read = await engine.scoreDetailed(requests);
      const fastMs = performance.now() - t0;
      t0 = performance.now();
      const whole = await slow.scoreDetailed(requests);
      const slowMs = performance.now() - t0;
      const { scoredTokens, greedyHits } = engine.scoreStats;
      let max = 0;
      let sum = 0;
      let vsWhole = 0;
      for (const [i, r] of requests.entries()) {
        const { tokens, start } = engine.scoringTokens(r);
        const ref = await reference.float64(tokens, start);
        assert.equal(read[i]!.tokens.length, ref.length);
        read[i]!.tokens.forEach((x, k) => {
          const d = Math.abs(x.logprob - ref[k]!);
          max = Math.max(max, d);
          sum += d;
          vsWhole = Math.max(vsWhole, Math.abs(x.logprob - whole[i]!.tokens[k]!.logprob));
        });
      }
      assert.ok(greedyHits > 0 && greedyHits < scoredTokens, `${greedyHits} of ${scoredTokens} positions were greedy hits`);
      t.diagnostic(
        `${requests.length} sequences, ${scoredTokens} scored tokens (${((100 * greedyHits) / scoredTokens).toFixed(0)}% the greedy token): ` +
          `|logits path - float64 reference| max ${max.toExponential(2)}, mean ${(sum / scoredTokens).toExponential(2)} per token; ` +
          `|logits path - whole distribution| max ${vsWhole.toExponential(2)}; logits path ${fastMs.toFixed(0)} ms, whole distribution ${slowMs.toFixed(0)} ms`,
      );
      assert.ok(max < 1e-4, `max per-token difference ${max}`);
      assert.ok(vsWhole < 1e-4, `max per-token difference from the whole distribution ${vsWhole}`);
    } finally {
      await slow.dispose();
      await reference.dispose();
    }
  });

  test('asked to be Concise it writes less than asked to be Storyteller', async (t) => {
    const prompts = heldOutPrompts(78, 6);
    const lengths: Record<string, number[]> = { Concise: [], Storyteller: [] };
    const t0 = performance.now();
    let tokens = 0;
    for (const [i, prompt] of prompts.entries()) {
      for (const attribute of ['Concise', 'Storyteller']) {
        const g = await engine.generate({ prompt: prompt.text, attributes: [attribute] }, { seed: i, temperature: 0.7, topK: 50, topP: 0.95, maxTokens: 300 });
        lengths[attribute]!.push(g.text.length);
        tokens += g.tokens.length;
      }
    }
    const ms = performance.now() - t0;
    const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;
    t.diagnostic(
      `mean length: Concise ${mean(lengths.Concise!).toFixed(0)} chars, Storyteller ${mean(lengths.Storyteller!).toFixed(0)} chars ` +
        `(${prompts.length} held-out prompts each; ${tokens} tokens generated in ${ms.toFixed(0)} ms)`,
    );
    // Measured 45 vs 198 characters on the first trained fixture.
    assert.ok(mean(lengths.Concise!) < mean(lengths.Storyteller!));
  });
});
