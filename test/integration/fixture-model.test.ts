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

  test('the fast probability path reads exactly what the whole distribution gives', async (t) => {
    // Held-out pairs as indexing scores them: the model's greedy choice is the response token at
    // most positions but not all, so both branches of the fast path run.
    const rng = makeRng(20250202);
    const requests = heldOutPrompts(79, 12).flatMap((prompt, i) => {
      const a = sampleAttributeSet(rng);
      const response = writeResponse(prompt, a, i);
      return [a, [], sampleAttributeSet(rng)].map((attributes) => ({ prompt: prompt.text, attributes, response }));
    });
    const slow = await LlamaEngine.load(FIXTURE, { contextSize: 1024, probabilityPath: 'distribution' });
    try {
      assert.equal(engine.modelInfo.probabilityPath, 'fast');
      assert.equal(slow.modelInfo.probabilityPath, 'distribution');
      engine.resetStats();
      let t0 = performance.now();
      const fast = await engine.scoreDetailed(requests);
      const fastMs = performance.now() - t0;
      t0 = performance.now();
      const reference = await slow.scoreDetailed(requests);
      const slowMs = performance.now() - t0;
      const { scoredTokens, greedyHits } = engine.scoreStats;
      assert.deepEqual(fast, reference, 'every token log-prob bit-identical');
      assert.ok(greedyHits > 0 && greedyHits < scoredTokens, `both branches ran: ${greedyHits} of ${scoredTokens} positions were greedy hits`);
      t.diagnostic(
        `${requests.length} sequences, ${scoredTokens} scored tokens, ${greedyHits} (${((100 * greedyHits) / scoredTokens).toFixed(0)}%) read from the greedy token; ` +
          `fast ${fastMs.toFixed(0)} ms vs whole distribution ${slowMs.toFixed(0)} ms (${(slowMs / fastMs).toFixed(2)}x)`,
      );
    } finally {
      await slow.dispose();
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
