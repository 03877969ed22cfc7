/**
 * Measures the preference memory on this machine:
 *   node --import tsx test/support/storageBench.ts [entries=1000] [dims=384]
 * Prints one JSON object. Not a test: numbers depend on the disk and the load.
 */
import { stat } from 'node:fs/promises';
import * as path from 'node:path';
import type { SelectionResult } from '../../src/core';
import { FileLock, INDEX_FOLDER, JsonlLog, LOG_FILE, PreferenceMemory } from '../../src/storage';
import { PromptRetriever } from '../../src/services/retrieval';
import { hashUnit, MODELS, tempFolder } from './storageFakes';

const entries = Number(process.argv[2] ?? 1000);
const dims = Number(process.argv[3] ?? 384);

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Number(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!.toFixed(3));
}

function summary(xs: number[]): { n: number; p50: number; p95: number; p99: number; max: number } {
  return { n: xs.length, p50: pct(xs, 50), p95: pct(xs, 95), p99: pct(xs, 99), max: pct(xs, 100) };
}

function vector(seed: string): number[] {
  return Array.from({ length: dims }, (_, i) => hashUnit(`${seed}:${i}`));
}

function result(i: number): SelectionResult {
  const gain = 0.5 + (i % 10) / 10;
  return {
    attributes: ['Concise', 'Formal', 'Vivid'].slice(0, 1 + (i % 3)),
    objective: gain,
    baseObjective: 0,
    gain,
    steps: [{ attribute: 'Concise', marginalGain: gain, objective: gain }],
    scorerCalls: 3,
    scoredSequences: 246,
    objectiveEvaluations: 123,
  };
}

async function time<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await fn();
  return [v, performance.now() - t0];
}

async function main(): Promise<void> {
  const { dir, cleanup } = await tempFolder('exact-bench-');
  const out: Record<string, unknown> = { entries, dims, node: process.version };
  try {
    // 1. Raw durable append (no lock) vs lock acquire/release vs recordPair (lock + append + refresh).
    const log = new JsonlLog(path.join(dir, 'raw.jsonl'));
    const raw: number[] = [];
    for (let i = 0; i < 200; i++) {
      const rec = { v: 1, type: 'pair' as const, id: `r-${i}`, prompt: `prompt ${i}`, chosen: 'c', rejected: 'r', source: 'bench', createdAt: new Date().toISOString() };
      raw.push((await time(() => log.append([rec])))[1]);
    }
    out.rawAppendWithFdatasyncMs = summary(raw);
    const lock = new FileLock(path.join(dir, 'bench.lock'));
    const locks: number[] = [];
    for (let i = 0; i < 200; i++) locks.push((await time(async () => (await lock.acquire()).release()))[1]);
    out.lockAcquireReleaseMs = summary(locks);

    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    const record: number[] = [];
    for (let i = 0; i < entries; i++) {
      record.push((await time(() => memory.recordPair({ id: `p-${i}`, prompt: `Prompt number ${i} about topic ${i % 37}`, chosen: `chosen ${i}`, rejected: `rejected ${i}` })))[1]);
    }
    out.recordPairMs = summary(record);
    const store: number[] = [];
    for (let i = 0; i < entries; i++) {
      store.push(
        (await time(() => memory.storeSelection({ pairId: `p-${i}`, result: result(i), embedding: vector(`p-${i}`), scorerKind: 'bench', algorithm: 'greedy', k: 3, durationMs: 1, deferIndex: true })))[1],
      );
    }
    out.storeSelectionDeferredMs = summary(store);
    out.logBytes = (await stat(path.join(dir, LOG_FILE))).size;

    // 2. Opening = reading and folding the whole log.
    const [reopened, openMs] = await time(() => PreferenceMemory.open(dir, { models: MODELS }));
    out.openMs = Number(openMs.toFixed(1));
    // 3. vectra's first load, then a full build of the index from the log.
    const [, vectraLoadMs] = await time(() => import('vectra'));
    out.vectraImportMs = Number(vectraLoadMs.toFixed(1));
    const [first, firstMs] = await time(() => reopened.syncIndex());
    out.buildFromMissingMs = Number(firstMs.toFixed(1));
    out.indexHealthBefore = first.before.health;
    out.indexEntries = first.entries;
    out.indexJsonBytes = (await stat(path.join(dir, INDEX_FOLDER, 'index.json'))).size;
    const rebuilds: number[] = [];
    for (let i = 0; i < 3; i++) rebuilds.push((await time(() => reopened.rebuildIndex()))[1]);
    out.rebuildExistingMs = summary(rebuilds);
    // 4. Verify (fresh process view: load index.json and compare with the log).
    const [, verifyColdMs] = await time(async () => (await PreferenceMemory.open(dir, { models: MODELS })).verifyIndex());
    out.openAndVerifyColdMs = Number(verifyColdMs.toFixed(1));
    const verify: number[] = [];
    for (let i = 0; i < 5; i++) verify.push((await time(() => reopened.verifyIndex()))[1]);
    out.verifyWarmMs = summary(verify);
    // 5. One more selection with the index kept in sync (a full index.json rewrite).
    await reopened.recordPair({ id: 'extra', prompt: 'one more', chosen: 'c', rejected: 'r' });
    const [, syncedMs] = await time(() => reopened.storeSelection({ pairId: 'extra', result: result(1), embedding: vector('extra'), scorerKind: 'bench', algorithm: 'greedy', k: 3, durationMs: 1 }));
    out.storeSelectionWithIndexWriteMs = Number(syncedMs.toFixed(1));
    // 6. Retrieval (core ranking over all entries).
    const retriever = new PromptRetriever(reopened);
    const retrieve: number[] = [];
    for (let i = 0; i < 50; i++) retrieve.push((await time(() => retriever.retrieve(vector(`q-${i}`))))[1]);
    out.retrieveMs = summary(retrieve);
    const vote: number[] = [];
    for (let i = 0; i < 50; i++) vote.push((await time(() => retriever.retrieve(vector(`q-${i}`), { mode: 'vote', m: 5 })))[1]);
    out.retrieveVoteMs = summary(vote);
  } finally {
    await cleanup();
  }
  process.stdout.write(JSON.stringify(out, null, 1) + '\n');
}

void main();
