/**
 * Where the in-process scorer runs and how long it holds its model:
 *  - the compute backend (cpu / vulkan / metal / cuda) and the reason, for every branch of the
 *    explanation, and for real on this machine (no GPU): `gpu: 'auto'` falls back to the CPU and
 *    says why, also when a Vulkan loader is present but does not work;
 *  - the `unloadAfterBatch` memory policy: the worker releases the model after every scored
 *    batch (seen in the scorer's state and load / release counts), with unchanged scores, also
 *    when the indexing queue drives it.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { getLlamaGpuTypes } from 'node-llama-cpp';
import { greedySelect, type ScoreRequest } from '../../src/core';
import { explainBackend, type BackendFacts, type ComputeBackend } from '../../src/engines/llama/computeBackend';
import { LlamaEngine } from '../../src/engines/llama/llamaEngine';
import { LlamaScorer } from '../../src/engines/llama/llamaScorer';
import { IndexingQueue } from '../../src/services/indexingQueue';
import { PreferenceMemory } from '../../src/storage';
import { randomLlamaModelPath } from '../support/randomGguf';
import { tempFolder } from '../support/storageFakes';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const WORKER = new URL('../../src/engines/llama/scorerWorker.ts', import.meta.url);
const FIXTURE = fileURLToPath(new URL('../fixtures/model/exact-tiny.gguf', import.meta.url));
const MODEL = randomLlamaModelPath({ seed: 7 });
const LIBRARY = ['Concise', 'Formal', 'Vivid', 'Humor'];

const BATCH: ScoreRequest[] = [
  { prompt: 'How do I boil an egg?', attributes: [], response: 'Boil it for nine minutes.' },
  { prompt: 'How do I boil an egg?', attributes: ['Concise'], response: 'Eggs are best boiled gently, then cooled in ice water.' },
];

const LINUX_NO_GPU: BackendFacts = {
  requested: 'auto',
  build: 'cpu',
  candidates: ['cuda', 'vulkan'],
  driverFound: [],
  installed: ['vulkan'],
  gpuDevices: [],
  gpuLayers: 0,
  totalLayers: 5,
  platform: 'linux-x64',
};

describe('compute backend: which one and why', () => {
  test('each CPU fallback names its cause per GPU kind', () => {
    assert.deepEqual(explainBackend(LINUX_NO_GPU), {
      kind: 'cpu',
      build: 'cpu',
      reason: "CPU: the CUDA build is not installed with this extension; Vulkan: no Vulkan loader (libvulkan.so.1) was found: install your GPU's Vulkan driver.",
      gpuDevices: [],
      gpuLayers: 0,
      totalLayers: 5,
    });
    const loaderButNoDevice = explainBackend({ ...LINUX_NO_GPU, driverFound: ['vulkan'] });
    assert.match(loaderButNoDevice.reason, /the Vulkan build did not load \(no usable Vulkan device or driver\)/u);
    const cudaDriverNoBuild = explainBackend({ ...LINUX_NO_GPU, driverFound: ['cuda'], installed: [] });
    assert.match(cudaDriverNoBuild.reason, /^CPU: the CUDA build is not installed with this extension; the Vulkan build is not installed/u);
    assert.equal(explainBackend({ ...LINUX_NO_GPU, requested: false }).reason, 'The CPU was asked for (no GPU).');
    assert.equal(explainBackend({ ...LINUX_NO_GPU, candidates: [], platform: 'linux-arm64' }).reason, 'node-llama-cpp has no GPU build for linux-arm64.');
  });

  test('a GPU build counts as the backend only when it holds layers', () => {
    const vulkan = { ...LINUX_NO_GPU, build: 'vulkan' as const, driverFound: ['vulkan' as const], gpuDevices: ['Radeon 780M'] };
    assert.deepEqual(
      [explainBackend({ ...vulkan, gpuLayers: 5 }).kind, explainBackend({ ...vulkan, gpuLayers: 5 }).reason],
      ['vulkan', 'Vulkan (Radeon 780M): 5 of 5 layers on the GPU.'],
    );
    const none = explainBackend({ ...vulkan, gpuLayers: 0 });
    assert.deepEqual([none.kind, none.build], ['cpu', 'vulkan']);
    assert.match(none.reason, /no layer fit in the GPU's free memory/u);
    const metal = explainBackend({ ...LINUX_NO_GPU, platform: 'darwin-arm64', candidates: ['metal'], build: 'metal', gpuLayers: 5 });
    assert.deepEqual([metal.kind, metal.reason], ['metal', 'Metal: 5 of 5 layers on the GPU.']);
  });

  test("gpu 'auto' on this machine: the backend node-llama-cpp chose, with the reason", async () => {
    const engine = await LlamaEngine.load(FIXTURE, { gpu: 'auto', contextSize: 256 });
    try {
      const backend = engine.modelInfo.backend;
      const supported = await getLlamaGpuTypes('supported');
      if (supported.includes(false) && supported.length === 1) {
        // No GPU library at all (this project's machines): the CPU, and the Vulkan loader named as the cause.
        assert.deepEqual([backend.kind, backend.build, backend.gpuLayers], ['cpu', 'cpu', 0]);
        assert.match(backend.reason, process.platform === 'linux' && process.arch === 'x64' ? /Vulkan: no Vulkan loader \(libvulkan\.so\.1\) was found/u : /^(CPU|node-llama-cpp has no GPU build)/u);
      } else {
        assert.ok(backend.kind === 'cpu' ? backend.reason.length > 0 : backend.gpuLayers > 0, JSON.stringify(backend));
      }
      assert.equal(backend.totalLayers, 5, 'the fixture has 4 blocks and the output layer');
    } finally {
      await engine.dispose();
    }
  });

  test('a Vulkan loader that does not work: falls back to the CPU, says so, and scores exactly as the CPU build', { skip: process.platform !== 'linux' || process.arch !== 'x64' ? 'the Vulkan prebuilt binary here is linux-x64' : false }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'exact-fake-vulkan-'));
    try {
      // node-llama-cpp looks for the loader by file name (LD_LIBRARY_PATH included) and then test-loads its
      // Vulkan build in a child process: a file that is not a library makes that test fail, as a loader
      // without a driver or device does.
      writeFileSync(join(dir, 'libvulkan.so.1'), 'not a shared library\n');
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'test/support/backendChild.ts', FIXTURE, JSON.stringify(BATCH)], {
        cwd: ROOT,
        env: { ...process.env, LD_LIBRARY_PATH: [dir, process.env.LD_LIBRARY_PATH].filter(Boolean).join(':') },
        maxBuffer: 1 << 20,
      });
      const child = JSON.parse(stdout.trim().split('\n').at(-1)!) as { backend: ComputeBackend; scores: number[] };
      assert.deepEqual([child.backend.kind, child.backend.build], ['cpu', 'cpu']);
      assert.match(child.backend.reason, /the Vulkan build did not load \(no usable Vulkan device or driver\)/u);
      const cpu = await LlamaEngine.load(FIXTURE, { gpu: false, contextSize: 512 });
      try {
        assert.deepEqual(child.scores, await cpu.score(BATCH));
      } finally {
        await cpu.dispose();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("memory policy 'unloadAfterBatch'", () => {
  test('the model is released after every batch and loaded again for the next, with the same scores as keeping it', async () => {
    const loaded: string[] = [];
    const unloading = new LlamaScorer({ modelPath: MODEL, workerPath: WORKER, engine: { contextSize: 512 }, memory: 'unloadAfterBatch', onModelLoaded: (b) => loaded.push(b.kind) });
    const keeping = new LlamaScorer({ modelPath: MODEL, workerPath: WORKER, engine: { contextSize: 512 } });
    try {
      for (let round = 1; round <= 3; round++) {
        const scores = await unloading.scoreBatch(BATCH);
        assert.equal(unloading.modelMayBeLoaded, false, `released after batch ${round}`);
        assert.equal(unloading.workerRunning, true, 'the worker stays (endWorkerOnRelease is off)');
        assert.deepEqual([unloading.usage.modelLoads, unloading.usage.releases], [round, round]);
        assert.deepEqual(scores, await keeping.scoreBatch(BATCH));
      }
      assert.deepEqual(loaded, ['cpu', 'cpu', 'cpu'], 'each load reports its backend');
      assert.equal(unloading.backend?.kind, 'cpu');
      assert.deepEqual([keeping.usage.modelLoads, keeping.usage.releases, keeping.modelMayBeLoaded], [1, 0, true], "'keep' loads once and holds the model");
    } finally {
      await unloading.dispose();
      await keeping.dispose();
    }
  });

  test('with endWorkerOnRelease the worker ends after each batch, and a failed batch releases too', async () => {
    const scorer = new LlamaScorer({ modelPath: MODEL, workerPath: WORKER, engine: { contextSize: 64 }, memory: 'unloadAfterBatch', endWorkerOnRelease: true });
    try {
      await scorer.scoreBatch(BATCH);
      assert.deepEqual([scorer.workerRunning, scorer.modelMayBeLoaded, scorer.usage.workerStarts], [false, false, 1]);
      const tooLong: ScoreRequest = { prompt: 'x', attributes: [], response: 'word '.repeat(200) };
      await assert.rejects(scorer.scoreBatch([tooLong]), /tokens long but a scoring sequence holds/u);
      assert.deepEqual([scorer.workerRunning, scorer.modelMayBeLoaded, scorer.usage.workerStarts, scorer.usage.releases], [false, false, 2, 2]);
    } finally {
      await scorer.dispose();
    }
  });

  test('driven by the indexing queue: one load per greedy round, nothing held afterwards, the selection unchanged', async () => {
    const { dir, cleanup } = await tempFolder('exact-indexing-unload-');
    const scorer = new LlamaScorer({ modelPath: MODEL, workerPath: WORKER, engine: { contextSize: 512 }, memory: 'unloadAfterBatch' });
    const reference = new LlamaScorer({ modelPath: MODEL, workerPath: WORKER, engine: { contextSize: 512 } });
    try {
      const models = { model: 'random-llama-seed-7', embeddingModel: 'hash' };
      const memory = await PreferenceMemory.open(dir, { models });
      const pair = { id: 'egg', prompt: 'How do I boil an egg?', chosen: 'Boil it for nine minutes.', rejected: 'Eggs are best boiled gently, then cooled.' };
      await memory.recordPair(pair);
      const embedder = { id: 'hash', embed: (texts: ReadonlyArray<string>) => Promise.resolve(texts.map((t) => [t.length, 1])) };
      const queue = new IndexingQueue({ memory, scorer, embedder, model: models.model, scorerKind: 'llama.cpp', library: LIBRARY, k: 2 });
      const summary = await queue.run();
      assert.equal(summary.reason, 'complete', summary.error);
      assert.equal(scorer.modelMayBeLoaded, false);
      assert.ok(scorer.usage.scoreCalls >= 2, 'k = 2: at least two rounds');
      assert.deepEqual([scorer.usage.modelLoads, scorer.usage.releases], [scorer.usage.scoreCalls, scorer.usage.scoreCalls]);
      const direct = await greedySelect(reference, pair, LIBRARY, { k: 2 });
      const stored = (await memory.getPair('egg'))?.selection;
      assert.deepEqual([stored?.attributes, stored?.objective], [direct.attributes, direct.objective]);
      await memory.close();
    } finally {
      await scorer.dispose();
      await reference.dispose();
      await cleanup();
    }
  });
});
