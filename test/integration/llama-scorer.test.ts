/**
 * LlamaScorer: llama.cpp in a worker thread behind the core's LogLikelihoodScorer port. It must
 * give the in-process engine's numbers bit for bit, cancel, survive worker crashes, release the
 * model when idle, and drive greedySelect end to end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { ATTRIBUTE_NAMES, greedySelect, type ScoreRequest } from '../../src/core';
import { LlamaEngine, type LlamaEngineOptions } from '../../src/engines/llama/llamaEngine';
import { LlamaScorer } from '../../src/engines/llama/llamaScorer';
import { randomLlamaModelPath } from '../support/randomGguf';
import { heldOutPrompts, writeResponse } from '../../tools/attribute-world/corpus';

const WORKER = new URL('../../src/engines/llama/scorerWorker.ts', import.meta.url);
const BROKEN = new URL('../support/brokenWorkers.ts', import.meta.url);
const MODEL = randomLlamaModelPath({ seed: 7 });
const FIXTURE = process.env.EXACT_FIXTURE_MODEL ?? fileURLToPath(new URL('../fixtures/model/exact-tiny.gguf', import.meta.url));
const ENGINE: LlamaEngineOptions = { contextSize: 512 };

const batch: ScoreRequest[] = [[], ['Concise'], ['Formal', 'Vivid']].flatMap((attributes) =>
  ['Boil it for nine minutes.', 'Eggs are best boiled gently, then cooled in ice water.'].map((response) => ({
    prompt: 'How do I boil an egg?',
    attributes,
    response,
  })),
);

describe('LlamaScorer (worker thread)', () => {
  let scorer: LlamaScorer;
  let engine: LlamaEngine;
  before(async () => {
    scorer = new LlamaScorer({ modelPath: MODEL, workerPath: WORKER, engine: ENGINE });
    engine = await LlamaEngine.load(MODEL, ENGINE);
  });
  after(async () => {
    await scorer.dispose();
    await engine.dispose();
  });

  test('gives the in-process engine\'s scores bit for bit', async (t) => {
    const t0 = performance.now();
    const viaWorker = await scorer.scoreBatch(batch);
    const first = performance.now() - t0;
    assert.deepEqual(viaWorker, await engine.score(batch));
    assert.deepEqual(await scorer.scoreDetailed(batch), await engine.scoreDetailed(batch));
    const { info, loadMilliseconds } = await scorer.info();
    assert.equal(info.promptFormat, 'chatml');
    t.diagnostic(`first call (worker start + model load + scoring) ${first.toFixed(0)} ms, of which model load ${loadMilliseconds.toFixed(0)} ms`);
  });

  test('streams generation like the engine, and implements the TextGenerator port', async () => {
    const options = { seed: 4, maxTokens: 16, topLogprobs: 2 };
    const chunks: string[] = [];
    const viaWorker = await scorer.generateStream({ prompt: 'Hi', attributes: ['Concise'] }, options, (c) => chunks.push(c.text));
    const inProcess = await engine.generate({ prompt: 'Hi', attributes: ['Concise'] }, options);
    assert.deepEqual(viaWorker.tokens, inProcess.tokens);
    assert.equal(chunks.join(''), viaWorker.text);
    const pieces: string[] = [];
    const { text, stoppedAtLimit } = await scorer.generate('Hi', ['Concise'], { seed: 4, maxTokens: 16 }, (s) => pieces.push(s));
    assert.equal(text, inProcess.text);
    assert.equal(stoppedAtLimit, inProcess.doneReason === 'length');
    assert.equal(pieces.join(''), text);
  });

  test('embeds and tokenizes through the worker', async () => {
    assert.deepEqual(await scorer.embed(['a b c']), await engine.embed(['a b c']));
    assert.deepEqual(await scorer.tokenize('<|im_end|>', true), [4]);
    assert.match(scorer.id, /^llama\.cpp:random-llama-/u);
  });

  test('cancellation reaches the worker, which stops and stays usable', async (t) => {
    const long = 'The quick brown fox jumps over the lazy dog. '.repeat(4);
    const big: ScoreRequest[] = Array.from({ length: 60 }, (_, i) => ({ prompt: `Q${i}?`, attributes: [], response: long }));
    const controller = new AbortController();
    const running = scorer.scoreBatch(big, controller.signal);
    setTimeout(() => controller.abort(), 100);
    await assert.rejects(running, (e: Error) => e.name === 'AbortError');
    // The worker must have stopped the batch: the next request does not wait for 60 sequences.
    const t0 = performance.now();
    assert.deepEqual(await scorer.scoreBatch(batch), await engine.score(batch));
    const next = performance.now() - t0;
    const t1 = performance.now();
    await engine.score(big);
    const whole = performance.now() - t1;
    t.diagnostic(`after cancelling, the next request answered in ${next.toFixed(0)} ms (the whole batch takes ${whole.toFixed(0)} ms)`);
    assert.ok(next < whole / 2, `next request took ${next} ms`);
    await assert.rejects(scorer.scoreBatch(batch, AbortSignal.abort()), (e: Error) => e.name === 'AbortError');
  });

  test('release() unloads the model; the next request loads it again', async () => {
    await scorer.release();
    assert.ok(scorer.workerRunning);
    assert.deepEqual(await scorer.scoreBatch(batch.slice(0, 2)), await engine.score(batch.slice(0, 2)));
    await scorer.release(true);
    assert.equal(scorer.workerRunning, false);
    assert.deepEqual(await scorer.scoreBatch(batch.slice(0, 2)), await engine.score(batch.slice(0, 2)));
  });
});

describe('LlamaScorer lifecycle and failures', () => {
  test('releases the model after an idle period and loads it again on demand', async () => {
    // (endWorkerOnRelease goes through release(true), tested above.)
    const scorer = new LlamaScorer({ modelPath: MODEL, workerPath: WORKER, engine: ENGINE, idleReleaseMs: 100 });
    try {
      await scorer.scoreBatch(batch.slice(0, 1));
      assert.ok(scorer.modelMayBeLoaded);
      const t0 = performance.now();
      while (scorer.modelMayBeLoaded && performance.now() - t0 < 10_000) await new Promise((r) => setTimeout(r, 25));
      assert.equal(scorer.modelMayBeLoaded, false);
      assert.ok(scorer.workerRunning);
      assert.equal((await scorer.scoreBatch(batch.slice(0, 1))).length, 1);
      assert.equal((await scorer.info()).loads, 2);
      assert.equal(scorer.usage.workerStarts, 1);
    } finally {
      await scorer.dispose();
    }
  });

  test('model file errors arrive with their name, code and advice', async () => {
    const scorer = new LlamaScorer({ modelPath: '/no/such/model.gguf', workerPath: WORKER });
    try {
      await assert.rejects(scorer.scoreBatch(batch), (e: Error & { code?: string }) => {
        assert.equal(e.name, 'ModelFileError');
        assert.equal(e.code, 'NOT_FOUND');
        assert.match(e.message, /Model file not found: \/no\/such\/model\.gguf\. Check the path/u);
        return true;
      });
    } finally {
      await scorer.dispose();
    }
  });

  for (const mode of ['exit', 'throw'] as const) {
    test(`a worker that dies (${mode}) fails pending requests with a clear error, and a new one starts`, async () => {
      const scorer = new LlamaScorer({ modelPath: MODEL, workerPath: BROKEN, engine: { mode } as LlamaEngineOptions });
      try {
        const a = scorer.scoreBatch(batch);
        const b = scorer.embed(['x']);
        const expected = mode === 'exit' ? /llama\.cpp worker exited unexpectedly \(exit code 7\)/u : /llama\.cpp worker failed: boom in the worker/u;
        await assert.rejects(a, expected);
        await assert.rejects(b, expected);
        assert.equal(scorer.workerRunning, false);
        await assert.rejects(scorer.scoreBatch(batch), expected);
        assert.equal(scorer.usage.workerStarts, 2);
      } finally {
        await scorer.dispose();
      }
    });
  }

  test('a worker entry that does not exist is reported', async () => {
    const scorer = new LlamaScorer({ modelPath: MODEL, workerPath: new URL('../support/no-such-worker.mjs', import.meta.url) });
    try {
      await assert.rejects(scorer.scoreBatch(batch), /llama\.cpp worker (failed|exited)/u);
    } finally {
      await scorer.dispose();
    }
  });
});

describe('greedySelect on the real scorer', () => {
  test('selects k attributes with one batched scorer call per round, through the bundled worker', async (t) => {
    const useFixture = existsSync(FIXTURE);
    const modelPath = useFixture ? FIXTURE : MODEL;
    // The worker bundled as scripts/build.mjs bundles it for the extension (written under .cache,
    // inside the repository, so that node-llama-cpp resolves from node_modules).
    const outfile = fileURLToPath(new URL(`../../.cache/llama-test-${process.pid}/scorerWorker.mjs`, import.meta.url));
    await build({ entryPoints: [fileURLToPath(WORKER)], outfile, bundle: true, platform: 'node', format: 'esm', target: 'node20', external: ['node-llama-cpp'], logLevel: 'warning' });
    const scorer = new LlamaScorer({ modelPath, workerPath: outfile, engine: ENGINE });
    const engine = await LlamaEngine.load(modelPath, ENGINE);
    try {
      // On the fixture, a held-out attribute-world pair whose chosen answer was written Concise and
      // Formal and the rejected one as a Storyteller; on a random model any pair will do.
      const world = heldOutPrompts(5, 1)[0]!;
      const pair = useFixture
        ? { prompt: world.text, chosen: writeResponse(world, ['Concise', 'Formal'], 1), rejected: writeResponse(world, ['Storyteller'], 1) }
        : {
            prompt: 'How do I make pancakes for a birthday breakfast?',
            chosen: 'Whisk flour, eggs and milk, then fry thin rounds in butter.',
            rejected: 'Pancakes are a delightful tradition! First, gather your ingredients with care, because every great breakfast begins with love.',
          };
      const library = [...ATTRIBUTE_NAMES.slice(0, 11), 'Storyteller'];
      const t0 = performance.now();
      const result = await greedySelect(scorer, pair, library, { k: 3 });
      const ms = performance.now() - t0;
      assert.equal(result.attributes.length, 3);
      assert.equal(result.scorerCalls, 3);
      assert.equal(result.scoredSequences, 2 * (13 + 11 + 10));
      assert.equal(scorer.usage.scoreCalls, 3);
      const inProcess = await greedySelect({ scoreBatch: (r, s) => engine.score(r, s) }, pair, library, { k: 3 });
      assert.deepEqual(result.attributes, inProcess.attributes);
      assert.equal(result.objective, inProcess.objective);
      t.diagnostic(
        `${useFixture ? 'fixture model' : 'random model (fixture not present)'}: selected [${result.attributes.join(', ')}], gain ${result.gain.toFixed(3)}, ` +
          `${result.scorerCalls} scorer calls, ${result.scoredSequences} sequences, ${ms.toFixed(0)} ms`,
      );
    } finally {
      await scorer.dispose();
      await engine.dispose();
      rmSync(dirname(outfile), { recursive: true, force: true });
    }
  });
});
