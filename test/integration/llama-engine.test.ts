/**
 * LlamaEngine on real llama.cpp with random-weight models written on the fly: exact
 * teacher-forced log-probs, prefix reuse, batching, cancellation, generation, embeddings.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ScoreRequest } from '../../src/core';
import { renderPrompt } from '../../src/engines/promptFormat';
import { defaultThreads, LlamaEngine, llamaRuntime, type GenerationChunk } from '../../src/engines/llama/llamaEngine';
import { ModelFileError } from '../../src/engines/llama/modelFile';
import { logitReader, logProbabilityFromLogits } from '../../src/engines/llama/targetProbabilities';
import { buildRandomLlamaGguf, randomLlamaModelPath } from '../support/randomGguf';
import { PrefixReference } from '../support/llamaReference';

const MODEL = randomLlamaModelPath({ seed: 7 });
const MODEL_FILE_MODULE = fileURLToPath(new URL('../../src/engines/llama/modelFile.ts', import.meta.url));

/** A greedy-selection-like batch: one prompt, several attribute sets, two responses each. */
function pairBatch(prompt = 'How do I boil an egg?'): ScoreRequest[] {
  const sets = [[], ['Concise'], ['Formal'], ['Concise', 'Formal'], ['Vivid', 'Humor', 'Direct']];
  const responses = ['Put it in boiling water for nine minutes.', 'Eggs! Boil them, friend, until the yolk sets just so.'];
  return sets.flatMap((attributes) => responses.map((response) => ({ prompt, attributes, response })));
}

function shuffled<T>(xs: ReadonlyArray<T>, seed: number): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('LlamaEngine scoring', () => {
  let engine: LlamaEngine;
  let fresh: LlamaEngine;
  let reference: PrefixReference;

  before(async () => {
    engine = await LlamaEngine.load(MODEL, { contextSize: 512 });
    fresh = await LlamaEngine.load(MODEL, { contextSize: 512, prefixReuse: false });
    reference = await PrefixReference.load(MODEL);
  });
  after(async () => {
    await engine.dispose();
    await fresh.dispose();
    await reference.dispose();
  });

  test('reads the format from the chat template and describes the model', () => {
    assert.equal(engine.promptFormat.id, 'chatml');
    const info = engine.modelInfo;
    assert.equal(info.architecture, 'llama');
    assert.equal(info.vocabSize, 512);
    assert.equal(info.promptFormat, 'chatml');
    assert.ok(info.contextSize >= 512);
    assert.match(info.chatTemplate ?? '', /<\|im_start\|>/u);
    assert.equal(info.threads, defaultThreads());
  });

  test('a request is rendered prompt (special tokens) + response (alone) + end marker', () => {
    const r: ScoreRequest = { prompt: 'Say hi.', attributes: ['Concise', 'Formal'], response: 'Hello, friend.' };
    const { tokens, start } = engine.scoringTokens(r);
    const prompt = engine.tokenize(renderPrompt(engine.promptFormat, r.prompt, r.attributes), true);
    assert.deepEqual(tokens.slice(0, start), prompt);
    assert.equal(engine.detokenize(tokens.slice(start, -1)), r.response);
    assert.deepEqual(tokens.slice(-1), engine.tokenize('<|im_end|>', true));
    assert.equal(tokens.at(-1), 4);
    assert.equal(engine.detokenize(prompt, true), '<|im_start|>user\nSay hi.\nAttributes: <Concise, Formal><|im_end|>\n<|im_start|>assistant\n');
  });

  test('per-token log-probs equal step-by-step next-token probabilities from scratch (1e-4)', async (t) => {
    const requests: ScoreRequest[] = [
      { prompt: 'How do I boil an egg?', attributes: [], response: 'Boil water, add the egg, wait nine minutes.' },
      { prompt: 'How do I boil an egg?', attributes: ['Concise'], response: 'Nine minutes.' },
      { prompt: 'Plan a trip to Rome.', attributes: ['Vivid', 'Humor'], response: 'Gelato first; ruins later. Café crème — oui! 😀' },
    ];
    const details = await engine.scoreDetailed(requests);
    let worst = 0;
    let worstSum = 0;
    for (const [i, r] of requests.entries()) {
      const { tokens, start } = engine.scoringTokens(r);
      const ref = await reference.stepByStep(tokens, start);
      const got = details[i]!.tokens.map((x) => x.logprob);
      assert.equal(got.length, ref.length);
      assert.deepEqual(details[i]!.tokens.map((x) => x.token), tokens.slice(start));
      for (let k = 0; k < ref.length; k++) worst = Math.max(worst, Math.abs(got[k]! - ref[k]!));
      const sum = ref.reduce((a, b) => a + b, 0);
      worstSum = Math.max(worstSum, Math.abs(details[i]!.logLikelihood - sum));
      assert.ok(Math.abs(details[i]!.logLikelihood - sum) < 1e-4 * ref.length, `request ${i}: ${details[i]!.logLikelihood} vs ${sum}`);
    }
    t.diagnostic(`max |per-token log-prob - from-scratch reference| = ${worst.toExponential(2)}, max |sum difference| = ${worstSum.toExponential(2)}`);
    assert.ok(worst < 1e-4, `per-token error ${worst}`);
  });

  test('prefix reuse is bit-identical to scoring each request from scratch, and saves work', async (t) => {
    const batch = [...pairBatch(), ...pairBatch('Plan a trip to Rome.')];
    engine.resetStats();
    const t0 = performance.now();
    const reused = await engine.score(batch);
    const reuseMs = performance.now() - t0;
    const stats = engine.scoreStats;
    fresh.resetStats();
    const t1 = performance.now();
    const scratch: number[] = [];
    for (const r of batch) scratch.push(...(await fresh.score([r])));
    const scratchMs = performance.now() - t1;
    assert.deepEqual(reused, scratch);
    assert.equal(fresh.scoreStats.reusedTokens, 0);
    assert.ok(stats.reusedTokens > 0);
    assert.ok(stats.evaluatedTokens < fresh.scoreStats.evaluatedTokens);
    t.diagnostic(
      `${batch.length} sequences: evaluated ${stats.evaluatedTokens} tokens with reuse vs ${fresh.scoreStats.evaluatedTokens} without ` +
        `(${stats.reusedTokens} reused); ${reuseMs.toFixed(0)} ms vs ${scratchMs.toFixed(0)} ms`,
    );
  });

  test('a batch scores the same as one request at a time, in any order', async () => {
    const batch = pairBatch();
    const together = await engine.score(batch);
    const alone: number[] = [];
    for (const r of batch) alone.push(...(await engine.score([r])));
    assert.deepEqual(together, alone);
    const order = shuffled(batch.map((_, i) => i), 3);
    const permuted = await engine.score(order.map((i) => batch[i]!));
    assert.deepEqual(permuted, order.map((i) => together[i]!));
    assert.deepEqual(await engine.score([]), []);
  });

  test('evaluation split into small batches agrees to float rounding', async (t) => {
    // llama.cpp's kernels and KV-cache layout depend on the batch size, so other batch sizes may
    // change the last bits (unlike the reuse, batching and ordering above, which give identical bits).
    const small = await LlamaEngine.load(MODEL, { contextSize: 512, batchSize: 8 });
    try {
      const batch = [...pairBatch(), { prompt: 'x', attributes: [], response: 'A longer answer, long enough to need several batches of eight tokens each.' }];
      const a = await small.score(batch);
      const b = await engine.score(batch);
      const worst = Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
      t.diagnostic(`batch size 8 vs 512: largest difference of a sequence's log-likelihood ${worst.toExponential(2)}`);
      assert.ok(worst < 1e-4);
    } finally {
      await small.dispose();
    }
  });

  test('an empty response scores only the end marker', async () => {
    const [d] = await engine.scoreDetailed([{ prompt: 'Hi', attributes: [], response: '' }]);
    assert.equal(d!.tokens.length, 1);
    assert.equal(d!.tokens[0]!.token, 4);
  });

  test('a request longer than the context is refused with advice', async () => {
    const long = 'word '.repeat(600);
    await assert.rejects(engine.score([{ prompt: 'x', attributes: [], response: long }]), /tokens long but a scoring sequence holds \d+; load the engine with a larger contextSize/u);
  });

  test('cancellation stops a long batch promptly and leaves the engine usable and exact', async (t) => {
    const long = 'The quick brown fox jumps over the lazy dog while the cat watches. '.repeat(3);
    const batch: ScoreRequest[] = Array.from({ length: 80 }, (_, i) => ({ prompt: `Question ${i}?`, attributes: ['Concise'], response: long }));
    const controller = new AbortController();
    const t0 = performance.now();
    engine.resetStats();
    const running = engine.score(batch, controller.signal);
    let abortedAt = 0;
    let workAtAbort = engine.scoreStats;
    setTimeout(() => {
      abortedAt = performance.now();
      workAtAbort = engine.scoreStats;
      controller.abort();
    }, 150);
    await assert.rejects(running, (e: Error) => e.name === 'AbortError');
    const latency = performance.now() - abortedAt;
    // Work done, not time: after the abort no further sequence is started, and the one in
    // flight stops at its next evaluation call (at most one call of tokens is fed after it).
    const workAfter = engine.scoreStats;
    assert.equal(workAfter.sequences, workAtAbort.sequences, 'no sequence is started after the abort');
    assert.ok(workAfter.sequences < batch.length, `the batch was cut short (${workAfter.sequences} of ${batch.length} sequences started)`);
    assert.ok(workAfter.evaluatedTokens - workAtAbort.evaluatedTokens <= 512, `at most one evaluation call after the abort (${workAfter.evaluatedTokens - workAtAbort.evaluatedTokens} tokens)`);
    const t1 = performance.now();
    const full = await engine.score(batch.slice(0, 8));
    const eightMs = performance.now() - t1;
    t.diagnostic(`aborted after ${(abortedAt - t0).toFixed(0)} ms; rejected ${latency.toFixed(1)} ms later (8 of the 80 sequences take ${eightMs.toFixed(0)} ms)`);
    const again: number[] = [];
    for (const r of batch.slice(0, 8)) again.push(...(await fresh.score([r])));
    assert.deepEqual(full, again);
    // An already-aborted signal rejects before any work.
    await assert.rejects(engine.score(batch, AbortSignal.abort()), (e: Error) => e.name === 'AbortError');
  });
});

/** Largest and mean absolute difference between the engine's per-token log-probs and the float64 reference. */
async function againstFloat64(engine: LlamaEngine, reference: PrefixReference, requests: ReadonlyArray<ScoreRequest>): Promise<{ max: number; mean: number; tokens: number; lowest: number }> {
  const details = await engine.scoreDetailed(requests);
  let max = 0;
  let sum = 0;
  let tokens = 0;
  let lowest = 0;
  for (const [i, r] of requests.entries()) {
    const { tokens: seq, start } = engine.scoringTokens(r);
    const ref = await reference.float64(seq, start);
    const got = details[i]!.tokens.map((x) => x.logprob);
    assert.equal(got.length, ref.length);
    for (let k = 0; k < ref.length; k++) {
      const d = Math.abs(got[k]! - ref[k]!);
      max = Math.max(max, d);
      sum += d;
      lowest = Math.min(lowest, ref[k]!);
    }
    tokens += ref.length;
  }
  return { max, mean: sum / tokens, tokens, lowest };
}

describe('LlamaEngine probability paths', () => {
  test('log p(target) = l_target - l_max - ln W, in double precision; -Infinity only for a logit of -Infinity', () => {
    assert.equal(logProbabilityFromLogits(2, 2, 1), 0);
    assert.equal(logProbabilityFromLogits(-1, 2, 2), -3 - Math.log(2));
    // Far below float32's smallest probability (about e^-103), still exact.
    assert.equal(logProbabilityFromLogits(-500, 100, 1.5), -600 - Math.log(1.5));
    assert.equal(logProbabilityFromLogits(-Infinity, 3, 1.2), -Infinity);
    assert.throws(() => logProbabilityFromLogits(3, 2, 1.1), /did not select the argmax/u);
    assert.throws(() => logProbabilityFromLogits(Number.NaN, 2, 1.1), /unusable logits/u);
    assert.throws(() => logProbabilityFromLogits(1, 2, 0.5), /unusable logits/u);
  });

  test('the logits path agrees with a float64 log-softmax of all logits, and with the whole-distribution path (1e-4 per token)', async (t) => {
    const engine = await LlamaEngine.load(MODEL, { contextSize: 512 });
    const whole = await LlamaEngine.load(MODEL, { contextSize: 512, probabilityPath: 'distribution' });
    const reference = await PrefixReference.load(MODEL);
    try {
      assert.equal(engine.modelInfo.probabilityPath, 'logits');
      assert.equal(whole.modelInfo.probabilityPath, 'distribution');
      // Text the random model would not write, and what it writes at temperature 0 after the same
      // prompt (some of whose tokens survive re-tokenization as its greedy choice).
      const batch = [...pairBatch(), ...pairBatch('Plan a trip to Rome.')];
      for (const prompt of ['How do I boil an egg?', 'Plan a trip to Rome.']) {
        const own = await engine.generate({ prompt, attributes: [] }, { temperature: 0, maxTokens: 60, seed: 1 });
        batch.push({ prompt, attributes: [], response: own.text });
      }
      const f64 = await againstFloat64(engine, reference, batch);
      assert.ok(engine.scoreStats.greedyHits > 0, 'some scored tokens were the greedy choice');
      const a = await engine.scoreDetailed(batch);
      const b = await whole.scoreDetailed(batch);
      let vsWhole = 0;
      a.forEach((d, i) => d.tokens.forEach((x, k) => (vsWhole = Math.max(vsWhole, Math.abs(x.logprob - b[i]!.tokens[k]!.logprob)))));
      t.diagnostic(
        `vocabulary 512, ${f64.tokens} scored tokens: |logits path - float64 reference| max ${f64.max.toExponential(2)}, mean ${f64.mean.toExponential(2)} per token; ` +
          `|logits path - whole distribution| max ${vsWhole.toExponential(2)}`,
      );
      assert.ok(f64.max < 1e-4, `max per-token difference ${f64.max}`);
      assert.ok(vsWhole < 1e-4, `max per-token difference from the distribution path ${vsWhole}`);
    } finally {
      await engine.dispose();
      await whole.dispose();
      await reference.dispose();
    }
  });

  test('at a 32k vocabulary the logits path agrees with the float64 reference (max 1e-3, mean 1e-4 per token)', async (t) => {
    // W is a float32 sum over the vocabulary: its rounding error grows with the vocabulary
    // (worst case about V x 2^-24 relative, 1.9e-3 at 32k; typically far less).
    const path = randomLlamaModelPath({ seed: 7, vocabSize: 32_000, embeddingLength: 64, layers: 1 });
    const engine = await LlamaEngine.load(path, { contextSize: 512 });
    const reference = await PrefixReference.load(path);
    try {
      const f64 = await againstFloat64(engine, reference, pairBatch().slice(0, 4));
      t.diagnostic(`vocabulary 32000, ${f64.tokens} scored tokens: |logits path - float64 reference| max ${f64.max.toExponential(2)}, mean ${f64.mean.toExponential(2)} per token`);
      assert.ok(f64.max < 1e-3, `max per-token difference ${f64.max}`);
      assert.ok(f64.mean < 1e-4, `mean per-token difference ${f64.mean}`);
    } finally {
      await engine.dispose();
      await reference.dispose();
    }
  });

  test('the greedy sampler selects the largest logit, also when two tokens tie for it', async () => {
    // Find the greedy token after a prompt, then build the same model with a second token whose
    // output row copies it: the two logits tie for the maximum there.
    const plain = await LlamaEngine.load(MODEL, { contextSize: 256 });
    const prompt = plain.tokenize(renderPrompt(plain.promptFormat, 'How do I boil an egg?', []), true);
    const [own] = (await plain.generate({ prompt: 'How do I boil an egg?', attributes: [] }, { temperature: 0, maxTokens: 1 })).tokens;
    await plain.dispose();
    const greedy = own!.id;
    const twin = greedy === 300 ? 301 : 300;
    const tiedPath = randomLlamaModelPath({ seed: 7, tiedOutputRows: [[greedy, twin]] });
    const reference = await PrefixReference.load(tiedPath);
    const model = await (await llamaRuntime(false)).loadModel({ modelPath: tiedPath, gpuLayers: 0 });
    const context = await model.createContext({ contextSize: 256, threads: 1, flashAttention: false });
    try {
      const [refGreedy] = await reference.float64([...prompt, greedy], prompt.length);
      const [refTwin] = await reference.float64([...prompt, twin], prompt.length);
      assert.equal(refGreedy, refTwin, 'the two tokens tie');
      assert.ok(Number.isFinite(refGreedy));
      const reads = [];
      for (const target of [greedy, twin]) {
        const sequence = context.getSequence();
        const reader = logitReader(sequence);
        assert.equal(reader.path, 'logits');
        const r = await reader.read(prompt, prompt.map((_, i) => (i === prompt.length - 1 ? target : undefined)));
        await sequence.dispose();
        reads.push(r);
      }
      // Whichever of the two the sampler picked, its logit is the maximum: both read the same log p.
      assert.equal(reads[0]!.logProbabilities.at(-1), reads[1]!.logProbabilities.at(-1));
      assert.ok(Math.abs(reads[0]!.logProbabilities.at(-1)! - refGreedy!) < 1e-5);
      assert.equal(reads[0]!.greedyHits + reads[1]!.greedyHits, 1, 'exactly one of the tied tokens was the selected one');
    } finally {
      await context.dispose();
      await model.dispose();
      await reference.dispose();
    }
  });
});

describe('LlamaEngine parallel sequences', () => {
  test('scoring on several context sequences at once equals one sequence (1e-4 per request), over repeated batches', async (t) => {
    // node-llama-cpp 3.21.1 now and then scored a request against another's distributions when
    // several sequences evaluated at once (off by hundreds of nats); this checks every request.
    const one = await LlamaEngine.load(MODEL, { contextSize: 512 });
    const batch = [...pairBatch(), ...pairBatch('Plan a trip to Rome.'), ...pairBatch('Write a haiku about rain.')];
    const expected = await one.scoreDetailed(batch);
    await one.dispose();
    let worst = 0;
    let identical = 0;
    let compared = 0;
    for (const parallelSequences of [2, 3, 4]) {
      const engine = await LlamaEngine.load(MODEL, { contextSize: 512, parallelSequences });
      try {
        assert.equal(engine.modelInfo.parallelSequences, parallelSequences);
        for (let round = 0; round < 3; round++) {
          const order = shuffled(batch.map((_, i) => i), 10 * parallelSequences + round);
          const got = await engine.scoreDetailed(order.map((i) => batch[i]!));
          got.forEach((d, j) => {
            const e = expected[order[j]!]!;
            assert.equal(d.tokens.length, e.tokens.length);
            const diff = Math.abs(d.logLikelihood - e.logLikelihood);
            assert.ok(diff < 1e-4, `${parallelSequences} sequences, round ${round}, request ${order[j]}: ${d.logLikelihood} vs ${e.logLikelihood}`);
            worst = Math.max(worst, diff);
            if (diff === 0) identical++;
            compared++;
          });
        }
        assert.ok(engine.scoreStats.reusedTokens > 0, 'each sequence keeps its prefix reuse');
      } finally {
        await engine.dispose();
      }
    }
    t.diagnostic(`${compared} requests scored on 2-4 sequences: largest difference from one sequence ${worst.toExponential(2)} nats, ${identical} bit-identical`);
  });
});

describe('LlamaEngine floor', () => {
  test('log-probabilities far below float32 underflow stay exact; the distribution path floors them', async (t) => {
    // A very peaked model: most next-token probabilities are below e^-103, 0 in float32.
    const path = randomLlamaModelPath({ seed: 3, outputScale: 400 });
    const engine = await LlamaEngine.load(path, { contextSize: 256 });
    const whole = await LlamaEngine.load(path, { contextSize: 256, probabilityPath: 'distribution', logProbFloor: -40 });
    const reference = await PrefixReference.load(path, 256);
    try {
      const r: ScoreRequest = { prompt: 'Tell me a story.', attributes: ['Vivid'], response: 'Once upon a time, zebras quizzed jackals.' };
      const f64 = await againstFloat64(engine, reference, [r]);
      const { tokens, start } = engine.scoringTokens(r);
      const float32 = await reference.stepByStep(tokens, start);
      assert.ok(float32.some((x) => x === -Infinity), 'float32 probabilities underflow somewhere');
      assert.ok(f64.lowest < -1000, `the float64 reference goes far below -103 (${f64.lowest})`);
      // Relative to the size of the numbers: the logits themselves are float32.
      assert.ok(f64.max < 1e-6 * Math.abs(f64.lowest), `max difference ${f64.max} at log-probs down to ${f64.lowest}`);
      const [d] = await engine.scoreDetailed([r]);
      assert.ok(d!.tokens.every((x) => Number.isFinite(x.logprob)));
      const [w] = await whole.scoreDetailed([r]);
      w!.tokens.forEach((x, k) => (float32[k] === -Infinity ? assert.equal(x.logprob, -40) : assert.ok(Math.abs(x.logprob - float32[k]!) < 1e-4)));
      assert.ok(w!.tokens.some((x) => x.logprob === -40), 'the check path floors underflowed tokens');
      t.diagnostic(`lowest log-prob ${f64.lowest.toFixed(1)}; largest difference from float64 ${f64.max.toExponential(2)}`);
    } finally {
      await engine.dispose();
      await whole.dispose();
      await reference.dispose();
    }
  });
});

describe('LlamaEngine generation and embeddings', () => {
  let engine: LlamaEngine;
  let reference: PrefixReference;
  before(async () => {
    engine = await LlamaEngine.load(MODEL, { contextSize: 512 });
    reference = await PrefixReference.load(MODEL);
  });
  after(async () => {
    await engine.dispose();
    await reference.dispose();
  });

  test('is deterministic for a seed, streams chunks that add up, and reports exact log-probs', async () => {
    const chunks: GenerationChunk[] = [];
    const input = { prompt: 'Tell me about cats.', attributes: ['Concise'] };
    const a = await engine.generate(input, { seed: 11, maxTokens: 24, topLogprobs: 3, temperature: 0.9 }, (c) => chunks.push(c));
    const b = await engine.generate(input, { seed: 11, maxTokens: 24, topLogprobs: 3, temperature: 0.9 });
    const c = await engine.generate(input, { seed: 12, maxTokens: 24, temperature: 0.9 });
    assert.equal(a.text, b.text);
    assert.deepEqual(a.tokens, b.tokens);
    assert.notDeepEqual(a.tokens.map((x) => x.id), c.tokens.map((x) => x.id));
    assert.equal(chunks.map((x) => x.text).join(''), a.text);
    assert.deepEqual(chunks.flatMap((x) => x.tokens), a.tokens);
    if (a.doneReason === 'length') assert.equal(a.tokens.length, 24);
    for (const tok of a.tokens) {
      assert.equal(tok.topLogprobs?.length, 3);
      const tops = tok.topLogprobs!.map((x) => x.logprob);
      assert.deepEqual(tops, [...tops].sort((x, y) => y - x));
      assert.ok(tok.logprob <= tops[0]!);
    }
    assert.equal(Buffer.from(a.tokens.flatMap((x) => x.bytes)).toString('utf8'), engine.detokenize(a.tokens.map((x) => x.id)));
    // The reported log-probs are the model's own distribution, whatever the sampling settings.
    const prompt = engine.tokenize(renderPrompt(engine.promptFormat, input.prompt, input.attributes), true);
    const ref = await reference.stepByStep([...prompt, ...a.tokens.map((x) => x.id)], prompt.length);
    a.tokens.forEach((x, k) => assert.ok(Math.abs(x.logprob - ref[k]!) < 1e-4));
  });

  test('temperature 0 is greedy', async () => {
    const g = await engine.generate({ raw: '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n' }, { temperature: 0, maxTokens: 12, topLogprobs: 1 });
    for (const tok of g.tokens) assert.equal(tok.id, tok.topLogprobs![0]!.id);
    const again = await engine.generate({ prompt: 'Hi' }, { temperature: 0, maxTokens: 12, seed: 99 });
    assert.deepEqual(again.tokens.map((x) => x.id), g.tokens.map((x) => x.id));
    assert.ok(again.promptEvaluatedTokens < again.promptTokens, 'the repeated prompt comes from the KV cache');
  });

  test('stops before a stop string and never streams part of it', async () => {
    const base = await engine.generate({ prompt: 'Write.' }, { seed: 5, maxTokens: 40, temperature: 1 });
    const cut = Math.floor(base.text.length / 2);
    const stop = base.text.slice(cut, cut + 3);
    const streamed: string[] = [];
    const g = await engine.generate({ prompt: 'Write.' }, { seed: 5, maxTokens: 40, temperature: 1, stop: [stop] }, (c) => streamed.push(c.text));
    assert.equal(g.doneReason, 'stop');
    assert.equal(g.text, base.text.slice(0, base.text.indexOf(stop)));
    assert.equal(streamed.join(''), g.text);
  });

  test('can be cancelled', async () => {
    await assert.rejects(engine.generate({ prompt: 'Hi' }, { maxTokens: 10 }, undefined, AbortSignal.abort()), (e: Error) => e.name === 'AbortError');
    const controller = new AbortController();
    const g = engine.generate({ prompt: 'Hi' }, { maxTokens: 400, seed: 1 }, (c) => {
      if (c.tokens.length > 0) controller.abort();
    }, controller.signal);
    await assert.rejects(g, (e: Error) => e.name === 'AbortError');
  });

  test('embeddings are unit vectors, deterministic, and differ between texts', async () => {
    const [a, b, a2] = await engine.embed(['How do I boil an egg?', 'Plan a trip to Rome.', 'How do I boil an egg?']);
    assert.equal(a!.length, 64);
    assert.ok(Math.abs(Math.hypot(...a!) - 1) < 1e-9);
    assert.deepEqual(a, a2);
    assert.notDeepEqual(a, b);
    const [long] = await engine.embed(['word '.repeat(1000)]);
    assert.ok(Math.abs(Math.hypot(...long!) - 1) < 1e-9);
  });
});

describe('LlamaEngine errors', () => {
  const dir = mkdtempSync(join(tmpdir(), 'exact-llama-errors-'));

  async function loadError(path: string): Promise<ModelFileError> {
    try {
      const e = await LlamaEngine.load(path);
      await e.dispose();
    } catch (e) {
      assert.ok(e instanceof ModelFileError, String(e));
      return e;
    }
    assert.fail(`loading ${path} should fail`);
  }

  test('missing file', async () => {
    const e = await loadError(join(dir, 'nope.gguf'));
    assert.equal(e.code, 'NOT_FOUND');
    assert.match(e.message, /Model file not found: .*nope\.gguf\. Check the path/u);
  });

  test('a folder', async () => {
    const e = await loadError(dir);
    assert.equal(e.code, 'NOT_A_FILE');
    assert.match(e.message, /is a folder, not a model file/u);
  });

  test('a text file, and an empty file', async () => {
    const text = join(dir, 'notes.txt');
    writeFileSync(text, 'just some notes\n');
    const e = await loadError(text);
    assert.equal(e.code, 'NOT_GGUF');
    assert.match(e.message, /is not a GGUF model file \(it starts with "just"\)\. EXACT needs a GGUF model file/u);
    const empty = join(dir, 'empty.gguf');
    writeFileSync(empty, '');
    assert.match((await loadError(empty)).message, /it is empty/u);
  });

  test('an unreadable file', async () => {
    const path = join(dir, 'locked.gguf');
    writeFileSync(path, buildRandomLlamaGguf({ vocabSize: 400 }), { mode: 0o000 });
    if (process.getuid?.() !== 0) {
      const e = await loadError(path);
      assert.equal(e.code, 'UNREADABLE');
      assert.match(e.message, /Cannot read the model file .*Check its permissions/u);
      return;
    }
    // Root reads everything (CI runs as root), so the check runs as the unprivileged user "nobody".
    chmodSync(dir, 0o755);
    const script = `import(${JSON.stringify(MODEL_FILE_MODULE)}).then((m) => m.checkModelFile(${JSON.stringify(path)}))` +
      '.then(() => console.log(JSON.stringify({ ok: true })), (e) => console.log(JSON.stringify({ code: e.code, message: e.message })))';
    const out = execFileSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--import', 'tsx', '-e', script], { encoding: 'utf8', env: { ...process.env, HOME: dir } });
    const e = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as { code?: string; message?: string };
    assert.equal(e.code, 'UNREADABLE', out);
    assert.match(e.message ?? '', /Cannot read the model file .*Check its permissions/u);
  });

  test('an unsupported architecture', async () => {
    const e = await loadError(randomLlamaModelPath({ architecture: 'notanarch', vocabSize: 400 }));
    assert.equal(e.code, 'UNSUPPORTED');
    assert.match(e.message, /architecture "notanarch", which this llama\.cpp build .* cannot run \(unknown model architecture: 'notanarch'\)/u);
  });

  test('a truncated model file', async () => {
    const full = buildRandomLlamaGguf({ vocabSize: 400 });
    const path = join(dir, 'truncated.gguf');
    writeFileSync(path, full.subarray(0, full.length >> 1));
    const e = await loadError(path);
    assert.equal(e.code, 'LOAD_FAILED');
    assert.match(e.message, /could not load .*truncated\.gguf \(architecture "llama"\): .*not within the file bounds.* re-download or re-convert/u);
  });

  test('a disposed engine says so', async () => {
    const e = await LlamaEngine.load(MODEL, { contextSize: 256 });
    await e.dispose();
    await assert.rejects(e.score([{ prompt: 'a', attributes: [], response: 'b' }]), /disposed/u);
  });
});
