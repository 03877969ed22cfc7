/**
 * Crash and concurrency behaviour of the preference memory: torn log lines, a writer killed
 * mid-append, stale locks of killed processes, corrupt or missing vector indexes, and several
 * processes writing at once. Child processes run test/support/storageChild.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, readFile, rm, stat, truncate, writeFile, readdir } from 'node:fs/promises';
import * as path from 'node:path';
import type { SelectionResult } from '../../src/core';
import { FileLock, INDEX_FOLDER, INDEX_LOCK_FILE, LockTimeoutError, LOG_FILE, MEMORY_LOCK_FILE, PreferenceMemory } from '../../src/storage';
import { PromptRetriever } from '../../src/services/retrieval';
import { collect, expectedSelection, HashEmbedder, MODELS, spawnTs, tempFolder, testPair } from '../support/storageFakes';

const embedder = new HashEmbedder();
const CHILD = 'test/support/storageChild.ts';

async function rawLines(dir: string): Promise<{ lines: string[]; tail: string }> {
  const text = await readFile(path.join(dir, LOG_FILE), 'utf8');
  const parts = text.split('\n');
  return { lines: parts.slice(0, -1), tail: parts[parts.length - 1]! };
}

async function seed(memory: PreferenceMemory, n: number, tag = 't'): Promise<void> {
  for (let i = 0; i < n; i++) {
    const p = testPair(i, tag);
    await memory.recordPair(p);
    await memory.storeSelection({ pairId: p.id, result: await expectedSelection(p), embedding: embedder.vector(p.prompt), scorerKind: 'fake', algorithm: 'greedy', k: 2, durationMs: 1 });
  }
}

test('a torn last line is ignored by readers and truncated by the next append; earlier lines are untouched', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    await memory.recordPair(testPair(1));
    await memory.recordPair(testPair(2));
    const intact = await readFile(path.join(dir, LOG_FILE));
    const fragment = '{"v":1,"type":"pair","id":"torn","prompt":"half a rec';
    await appendFile(path.join(dir, LOG_FILE), fragment);
    const reader = await PreferenceMemory.open(dir, { models: MODELS });
    assert.deepEqual((await reader.listPairs()).map((p) => p.id), ['t-1', 't-2']);
    const s = await reader.stats();
    assert.equal(s.log.tornTailBytes, fragment.length);
    assert.equal(s.log.invalidLines, 0);

    await reader.recordPair(testPair(3));
    const after = await readFile(path.join(dir, LOG_FILE));
    assert.ok(after.subarray(0, intact.length).equals(intact), 'bytes before the torn line are unchanged');
    const { lines, tail } = await rawLines(dir);
    assert.equal(tail, '');
    assert.deepEqual(lines.map((l) => (JSON.parse(l) as { id?: string }).id), [undefined, 't-1', 't-2', 't-3']);
    assert.equal((await reader.stats()).log.repairedTails, 1);
    assert.deepEqual((await memory.listPairs()).map((p) => p.id), ['t-1', 't-2', 't-3']);
  } finally {
    await cleanup();
  }
});

test('a last line that is a whole record missing only its newline is kept (completed), not dropped', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    await memory.recordPair(testPair(1));
    const whole = JSON.stringify({ v: 1, type: 'pair', id: 'whole', prompt: 'p', chosen: 'c', rejected: 'r', source: 'drafts', createdAt: new Date().toISOString() });
    await appendFile(path.join(dir, LOG_FILE), whole);
    assert.deepEqual((await memory.listPairs()).map((p) => p.id), ['t-1'], 'not visible while it has no newline');
    await memory.recordPair(testPair(2));
    assert.deepEqual((await memory.listPairs()).map((p) => p.id), ['t-1', 'whole', 't-2']);
  } finally {
    await cleanup();
  }
});

test('a corrupt line in the middle is skipped and counted, the rest is read', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    await memory.recordPair(testPair(1));
    await appendFile(path.join(dir, LOG_FILE), 'garbage\n{"v":1,"type":"pair","id":"no-fields"}\n{"v":7,"type":"future"}\n');
    await memory.recordPair(testPair(2));
    const reader = await PreferenceMemory.open(dir, { models: MODELS });
    assert.deepEqual((await reader.listPairs()).map((p) => p.id), ['t-1', 't-2']);
    const s = await reader.stats();
    assert.deepEqual([s.log.invalidLines, s.log.unsupportedRecords], [2, 1]);
  } finally {
    await cleanup();
  }
});

test('a log replaced in place with other content (same inode, as after inode reuse) is re-read from the start', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const a = await PreferenceMemory.open(dir, { models: MODELS });
    await a.recordPair(testPair(1));
    const b = await PreferenceMemory.open(dir, { models: MODELS });
    assert.deepEqual((await b.listPairs()).map((p) => p.id), ['t-1']);
    const file = path.join(dir, LOG_FILE);
    const ino = (await stat(file)).ino;
    // Another log, longer than what b has read, written into the same inode.
    const header = JSON.stringify({ v: 1, type: 'header', format: 'exact-preference-log', createdAt: new Date().toISOString(), logId: 'other' });
    const pair = (id: string) => JSON.stringify({ v: 1, type: 'pair', id, prompt: `p ${id} ${'x'.repeat(200)}`, chosen: 'c', rejected: 'r', source: 'drafts', createdAt: new Date().toISOString() });
    await writeFile(file, [header, pair('n-1'), pair('n-2')].join('\n') + '\n');
    assert.equal((await stat(file)).ino, ino);
    assert.deepEqual((await b.listPairs()).map((p) => p.id), ['n-1', 'n-2']);
  } finally {
    await cleanup();
  }
});

test('a process killed mid-append (SIGKILL) leaves a torn line and a stale lock; the next writer recovers both', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    await seed(memory, 3);
    const child = spawnTs(CHILD, ['torn', dir]);
    const done = collect(child, (line) => {
      if (line === 'PARTIAL') child.kill('SIGKILL');
    });
    const res = await done;
    assert.equal(res.signal, 'SIGKILL', res.stderr);
    assert.doesNotMatch(res.stdout, /UNEXPECTED/);
    const { tail } = await rawLines(dir);
    assert.ok(tail.length > 0 && tail.length <= 8, `a torn tail of one 8-byte piece: ${JSON.stringify(tail)}`);
    await stat(path.join(dir, MEMORY_LOCK_FILE)); // the dead child's lock is still there

    const t0 = Date.now();
    await memory.recordPair(testPair(10));
    assert.ok(Date.now() - t0 < 3_000, 'the dead holder is detected by pid, not by waiting out the stale age');
    const { lines, tail: after } = await rawLines(dir);
    assert.equal(after, '');
    for (const l of lines) JSON.parse(l);
    assert.deepEqual((await memory.listPairs()).map((p) => p.id), ['t-0', 't-1', 't-2', 't-10']);
    assert.equal((await memory.verifyIndex()).health, 'ok');
  } finally {
    await cleanup();
  }
});

test('a live lock holder makes writers wait, and they time out with the holder named', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const child = spawnTs(CHILD, ['hold-lock', dir]);
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => (locked = r));
    const done = collect(child, (line) => line === 'LOCKED' && locked());
    await isLocked;
    const memory = await PreferenceMemory.open(dir, { models: MODELS, lock: { timeoutMs: 300 } });
    await assert.rejects(memory.recordPair(testPair(1)), (err: unknown) => err instanceof LockTimeoutError && err.holder?.pid === child.pid);
    child.kill('SIGKILL');
    await done;
    await memory.recordPair(testPair(1));
    assert.equal((await memory.stats()).pairs, 1);
  } finally {
    await cleanup();
  }
});

test('recording a choice never waits for an index rewrite (separate log and index locks)', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS, indexLock: { timeoutMs: 20_000 } });
    await seed(memory, 2);
    const indexHeld = await new FileLock(path.join(dir, INDEX_LOCK_FILE)).acquire(); // an index writer elsewhere
    const t0 = performance.now();
    await memory.recordPair(testPair(5));
    await memory.storeSelection({ pairId: 't-5', result: await expectedSelection(testPair(5)), embedding: embedder.vector(testPair(5).prompt), scorerKind: 'fake', algorithm: 'greedy', k: 2, durationMs: 1, deferIndex: true });
    assert.ok(performance.now() - t0 < 2_000, 'appends went through while index.lock was held');
    const sync = memory.syncIndex();
    await new Promise((r) => setTimeout(r, 200));
    await indexHeld.release();
    assert.equal((await sync).rewritten, true);
    assert.equal((await memory.verifyIndex()).health, 'ok');
  } finally {
    await cleanup();
  }
});

test('a lock whose holder is alive but stopped refreshing it is taken over after staleMs; the old holder then knows it lost it', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const file = path.join(dir, 'x.lock');
    const slow = new FileLock(file, { staleMs: 200, heartbeatMs: 1e9 }); // a holder whose heartbeat never runs
    const held = await slow.acquire();
    const other = new FileLock(file, { staleMs: 200, timeoutMs: 5_000 });
    assert.equal(await other.tryAcquire(), undefined, 'fresh: not stale yet');
    const t0 = Date.now();
    const taken = await other.acquire();
    assert.ok(Date.now() - t0 >= 100, 'taken over only after the stale age');
    await assert.rejects(held.assertHeld(), { name: 'LockLostError' });
    await held.release(); // must not remove the new holder's lock
    await taken.assertHeld();
    await taken.release();
    await assert.rejects(stat(file), { code: 'ENOENT' });
  } finally {
    await cleanup();
  }
});

test('a heartbeating holder is not taken over even after staleMs', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const file = path.join(dir, 'x.lock');
    const held = await new FileLock(file, { staleMs: 150 }).acquire();
    await assert.rejects(new FileLock(file, { staleMs: 150, timeoutMs: 600 }).acquire(), LockTimeoutError);
    await held.assertHeld();
    await held.release();
  } finally {
    await cleanup();
  }
});

async function corruptAndRecover(name: string, damage: (indexFile: string, dir: string) => Promise<void>, expected: string): Promise<void> {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    await seed(memory, 6);
    const good = await memory.indexEntries();
    const query = embedder.vector('Question 4 topic 4');
    const answer = await new PromptRetriever(memory).retrieve(query);
    assert.ok(good.length >= 3);
    await damage(path.join(dir, INDEX_FOLDER, 'index.json'), dir);
    const fresh = await PreferenceMemory.open(dir, { models: MODELS });
    const check = await fresh.verifyIndex();
    assert.equal(check.health, expected, `${name}: ${check.detail}`);
    const report = await fresh.syncIndex();
    assert.equal(report.rewritten, true);
    assert.equal((await fresh.verifyIndex()).health, 'ok');
    assert.deepEqual(await fresh.indexEntries(), good, name);
    // Retrieval also repairs on its own.
    await damage(path.join(dir, INDEX_FOLDER, 'index.json'), dir);
    const third = await PreferenceMemory.open(dir, { models: MODELS });
    assert.deepEqual(await new PromptRetriever(third).retrieve(query), answer, name);
    assert.equal((await third.verifyIndex()).health, 'ok');
  } finally {
    await cleanup();
  }
}

test('a garbage index.json is detected as corrupt and rebuilt from the log', () =>
  corruptAndRecover('garbage', (f) => writeFile(f, 'not json at all \u0000\u0001'), 'corrupt'));

test('a truncated index.json is detected as corrupt and rebuilt', () =>
  corruptAndRecover('truncated', async (f) => truncate(f, Math.floor((await stat(f)).size / 2)), 'corrupt'));

test('a missing index.json (or index folder) is detected and rebuilt', async () => {
  await corruptAndRecover('missing file', (f) => rm(f), 'missing');
  await corruptAndRecover('missing folder', (_f, dir) => rm(path.join(dir, INDEX_FOLDER), { recursive: true }), 'missing');
});

test('an index of another schema version is rebuilt', () =>
  corruptAndRecover(
    'schema',
    async (f) => {
      const data = JSON.parse(await readFile(f, 'utf8')) as { items: Array<{ metadata: { schema: number } }> };
      for (const it of data.items) it.metadata.schema = 99;
      await writeFile(f, JSON.stringify(data));
    },
    'schema',
  ));

test('an index whose items disagree with the log (missing, extra, edited, reordered, other vector) is rewritten', async () => {
  type Data = { items: Array<{ id: string; vector: number[]; metadata: Record<string, unknown> }> };
  const edit = (fn: (d: Data) => void) => async (f: string) => {
    const data = JSON.parse(await readFile(f, 'utf8')) as Data;
    fn(data);
    await writeFile(f, JSON.stringify(data));
  };
  await corruptAndRecover('one item dropped', edit((d) => void d.items.pop()), 'stale');
  await corruptAndRecover('an extra item', edit((d) => void d.items.push({ ...d.items[0]!, id: 'intruder' })), 'stale');
  await corruptAndRecover('attributes edited', edit((d) => void (d.items[0]!.metadata.attributes = '["Sycophant"]')), 'stale');
  await corruptAndRecover('order swapped', edit((d) => void d.items.reverse()), 'stale');
  await corruptAndRecover('vector changed', edit((d) => void (d.items[1]!.vector[0] = 42)), 'stale');
  await corruptAndRecover('item without vector', edit((d) => void (d.items[1]!.vector = 'x' as never)), 'corrupt');
});

test('index.json is replaced atomically (new inode each write) and no temp files are left behind', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    await seed(memory, 2);
    const file = path.join(dir, INDEX_FOLDER, 'index.json');
    const before = (await stat(file)).ino;
    await seed(memory, 1, 'u');
    assert.notEqual((await stat(file)).ino, before, 'vectra wrote through AtomicFileStorage (rename), not in place');
    assert.deepEqual((await readdir(path.join(dir, INDEX_FOLDER))).sort(), ['index.json']);
    assert.deepEqual((await readdir(dir)).sort(), [INDEX_FOLDER, LOG_FILE]);
  } finally {
    await cleanup();
  }
});

interface WriterRun {
  readonly dir: string;
  readonly results: Awaited<ReturnType<typeof collect>>[];
}

async function concurrentWriters(dir: string, writers: number, count: number, extra: string[]): Promise<WriterRun> {
  const children = Array.from({ length: writers }, (_, w) => spawnTs(CHILD, ['writer', dir, `w${w}`, String(count), ...extra]));
  const results = await Promise.all(children.map((c) => collect(c)));
  return { dir, results };
}

async function anomalies(dir: string, writers: number, count: number): Promise<string[]> {
  const problems: string[] = [];
  const { lines, tail } = await rawLines(dir);
  if (tail !== '') problems.push(`torn tail ${tail.length} bytes`);
  const ids = new Map<string, number>();
  let selections = 0;
  let bad = 0;
  for (const l of lines) {
    try {
      const r = JSON.parse(l) as { type: string; id: string };
      if (r.type === 'pair') ids.set(r.id, (ids.get(r.id) ?? 0) + 1);
      if (r.type === 'selection') selections++;
    } catch {
      bad++;
    }
  }
  if (bad > 0) problems.push(`${bad} unparseable lines`);
  for (let w = 0; w < writers; w++)
    for (let i = 0; i < count; i++) {
      const n = ids.get(`w${w}-${i}`) ?? 0;
      if (n !== 1) problems.push(`pair w${w}-${i} appears ${n} times`);
    }
  if (selections !== writers * count) problems.push(`${selections} selection records, expected ${writers * count}`);
  const check = await (await PreferenceMemory.open(dir, { models: MODELS })).verifyIndex();
  if (check.health !== 'ok') problems.push(`index ${check.health}: ${check.detail}`);
  return problems;
}

const WRITERS = 4;
const PER_WRITER = 12;

test('several processes appending pairs and selections at once lose nothing and corrupt nothing', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    // Appends are written in 48-byte pieces with pauses, so unguarded writers would interleave.
    const run = await concurrentWriters(dir, WRITERS, PER_WRITER, ['48', '1']);
    for (const r of run.results) assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(await anomalies(dir, WRITERS, PER_WRITER), []);
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    const s = await memory.stats();
    assert.deepEqual([s.pairs, s.selected, s.log.invalidLines, s.log.tornTailBytes], [WRITERS * PER_WRITER, WRITERS * PER_WRITER, 0, 0]);
    assert.equal((await memory.indexEntries()).length, s.indexEntries);
  } finally {
    await cleanup();
  }
});

test('control: the same workload without the lock does corrupt or lose data (so the test above can fail)', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    await concurrentWriters(dir, WRITERS, PER_WRITER, ['48', '1', 'nolock']);
    const problems = await anomalies(dir, WRITERS, PER_WRITER);
    assert.ok(problems.length > 0, 'expected interleaved lines or a stale index without the lock');
  } finally {
    await cleanup();
  }
});

test('selection results stored for the right pair survive reopening bit for bit', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    const p = testPair(5);
    await memory.recordPair(p);
    const r: SelectionResult = await expectedSelection(p);
    const v = embedder.vector(p.prompt).map((x, i) => x / 3 + i * 1e-17 + Math.PI);
    await memory.storeSelection({ pairId: p.id, result: r, embedding: v, scorerKind: 'fake', algorithm: 'greedy', k: 2, durationMs: 3 });
    const reopened = await PreferenceMemory.open(dir, { models: MODELS });
    const sel = (await reopened.getPair(p.id))!.selection!;
    assert.deepEqual([sel.attributes, sel.objective, sel.baseObjective, sel.gain, sel.steps], [r.attributes, r.objective, r.baseObjective, r.gain, r.steps]);
    const entry = (await reopened.indexEntries()).find((e) => e.pairId === p.id);
    if (r.gain > 0) assert.deepEqual([...entry!.embedding], v);
  } finally {
    await cleanup();
  }
});
