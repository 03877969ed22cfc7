/**
 * The background indexing queue against the real preference memory (files + vectra) with
 * deterministic fake scorers and embedders; a child process (test/support/indexingChild.ts)
 * is killed mid-indexing to show that the log alone is enough to resume.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { greedySelect, lazyGreedySelect } from '../../src/core';
import { LOG_FILE, PreferenceMemory } from '../../src/storage';
import { IndexingQueue, type IndexingEvent, type IndexingQueueOptions } from '../../src/services/indexingQueue';
import { classifyIndexingError } from '../../src/services/indexingErrors';
import { collect, expectedSelection, HashEmbedder, HashScorer, MODELS, spawnTs, TEST_LIBRARY, tempFolder, testPair } from '../support/storageFakes';

function queueFor(memory: PreferenceMemory, over: Partial<IndexingQueueOptions> = {}): { queue: IndexingQueue; events: IndexingEvent[] } {
  const queue = new IndexingQueue({
    memory,
    scorer: new HashScorer(),
    embedder: new HashEmbedder(),
    model: MODELS.model,
    scorerKind: 'fake',
    library: TEST_LIBRARY,
    k: 2,
    algorithm: 'greedy',
    retry: { maxAttempts: 3, baseDelayMs: 5, maxDelayMs: 50 },
    busyRetryMs: 20,
    ...over,
  });
  const events: IndexingEvent[] = [];
  queue.onEvent((e) => events.push(e));
  return { queue, events };
}

async function withMemory(n: number, fn: (memory: PreferenceMemory, dir: string) => Promise<void>): Promise<void> {
  const { dir, cleanup } = await tempFolder('exact-indexing-');
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    for (let i = 0; i < n; i++) await memory.recordPair(testPair(i));
    await fn(memory, dir);
  } finally {
    await cleanup();
  }
}

function compact(events: IndexingEvent[]): string[] {
  return events.map((e) => {
    switch (e.type) {
      case 'queued':
        return `queued ${e.pairIds.length} total=${e.total}`;
      case 'started':
        return `started ${e.pairId} ${e.position}/${e.total} #${e.attempt}`;
      case 'retrying':
        return `retrying ${e.pairId} #${e.attempt}`;
      case 'done':
        return `done ${e.pairId} ${e.position}/${e.total}`;
      case 'failed':
        return `failed ${e.pairId} ${e.position}/${e.total} ${e.errorClass} x${e.attempts}`;
      case 'waiting':
        return 'waiting';
      case 'idle':
        return `idle ${e.reason} done=${e.done} failed=${e.failed} total=${e.total} remaining=${e.remaining}`;
    }
  });
}

async function selectionRecords(dir: string): Promise<Array<{ pairId: string; model: string; attributes: string[] }>> {
  const text = await readFile(path.join(dir, LOG_FILE), 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { type: string; pairId: string; model: string; attributes: string[] })
    .filter((r) => r.type === 'selection');
}

test('a run selects every pending pair one at a time, reports n/total, stores the core result, updates the index, then goes idle', async () => {
  await withMemory(3, async (memory) => {
    const idle: unknown[] = [];
    const { queue, events } = queueFor(memory, { onIdle: (s) => void idle.push(s) });
    const summary = await queue.run();
    assert.deepEqual(compact(events), [
      'queued 3 total=3',
      'started t-0 1/3 #1',
      'done t-0 1/3',
      'started t-1 2/3 #1',
      'done t-1 2/3',
      'started t-2 3/3 #1',
      'done t-2 3/3',
      'idle complete done=3 failed=0 total=3 remaining=0',
    ]);
    assert.equal(idle.length, 1);
    assert.deepEqual(idle[0], summary);
    for (let i = 0; i < 3; i++) {
      const want = await expectedSelection(testPair(i));
      const view = await memory.getPair(`t-${i}`);
      assert.equal(view?.status, 'selected');
      assert.deepEqual([view?.selection?.attributes, view?.selection?.gain, view?.selection?.scorer.calls], [want.attributes, want.gain, want.scorerCalls]);
      const done = events.find((e) => e.type === 'done' && e.pairId === `t-${i}`);
      assert.deepEqual(done?.type === 'done' && done.attributes, want.attributes);
    }
    assert.equal((await memory.verifyIndex()).health, 'ok', 'the run brought the index up to date');
    assert.deepEqual(await memory.pendingPairs(), []);
    // Nothing to do: an immediate idle.
    events.length = 0;
    await queue.run();
    assert.deepEqual(compact(events), ['idle complete done=0 failed=0 total=0 remaining=0']);
  });
});

// Kills the mutation "the queue ignores the lazy setting (always runs greedy)": the record's label
// alone would survive it, the scored sequences do not.
test('lazy greedy is used when configured: its scorer work, not greedy\'s, and the same attributes on a modular objective', async () => {
  await withMemory(2, async (memory, dir) => {
    const scorer = new HashScorer();
    const { queue } = queueFor(memory, { algorithm: 'lazy', scorer });
    await queue.run();
    const recs = await selectionRecords(dir);
    let lazyRequests = 0;
    let greedyRequests = 0;
    for (const r of recs) {
      const i = Number(r.pairId.slice(2));
      assert.deepEqual(r.attributes, (await expectedSelection(testPair(i))).attributes);
      assert.equal((r as unknown as { algorithm: string }).algorithm, 'lazy');
      const lazy = new HashScorer();
      await lazyGreedySelect(lazy, testPair(i), TEST_LIBRARY, { k: 2 });
      lazyRequests += lazy.requests;
      const greedy = new HashScorer();
      await greedySelect(greedy, testPair(i), TEST_LIBRARY, { k: 2 });
      greedyRequests += greedy.requests;
    }
    assert.equal(recs.length, 2);
    assert.notEqual(lazyRequests, greedyRequests, 'the two algorithms must differ in work for this test to tell them apart');
    assert.equal(scorer.requests, lazyRequests, `the queue scored ${scorer.requests} sequences; lazy greedy needs ${lazyRequests}, greedy ${greedyRequests}`);
  });
});

test('pairs recorded during a run are picked up by the same run and the total grows', async () => {
  await withMemory(2, async (memory) => {
    let added = false;
    const { queue, events } = queueFor(memory);
    queue.onEvent((e) => {
      if (e.type === 'done' && !added) {
        added = true;
        void memory.recordPair(testPair(9)).then(() => queue.kick());
      }
    });
    await queue.run();
    // The new pair is either picked up by this run or by the kicked follow-up run.
    while (queue.running) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(await memory.pendingPairs(), []);
    assert.ok(events.some((e) => e.type === 'done' && e.pairId === 't-9'));
  });
});

test('transient errors are retried with growing backoff, then succeed', async () => {
  await withMemory(1, async (memory) => {
    const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:11434'), { code: 'ECONNREFUSED' });
    const scorer = new HashScorer({ failOn: (call) => (call < 2 ? refused() : undefined) });
    const { queue, events } = queueFor(memory, { scorer, retry: { maxAttempts: 4, baseDelayMs: 20, maxDelayMs: 1000 } });
    const summary = await queue.run();
    assert.deepEqual(compact(events), [
      'queued 1 total=1',
      'started t-0 1/1 #1',
      'retrying t-0 #1',
      'started t-0 1/1 #2',
      'retrying t-0 #2',
      'started t-0 1/1 #3',
      'done t-0 1/1',
      'idle complete done=1 failed=0 total=1 remaining=0',
    ]);
    const delays = events.flatMap((e) => (e.type === 'retrying' ? [e.delayMs] : []));
    assert.ok(delays[0]! >= 15 && delays[0]! <= 25 && delays[1]! >= 30 && delays[1]! <= 50, `backoff doubles with jitter: ${delays}`);
    assert.match((events[2] as { error: string }).error, /ECONNREFUSED/);
    assert.equal(summary.reason, 'complete');
  });
});

test('when transient errors outlast the retries the run stops as unavailable and the pair stays pending', async () => {
  await withMemory(2, async (memory) => {
    const timeout = () => Object.assign(new Error('The operation timed out.'), { name: 'TimeoutError' });
    const { queue, events } = queueFor(memory, { scorer: new HashScorer({ failOn: () => timeout() }), retry: { maxAttempts: 3, baseDelayMs: 1 } });
    const summary = await queue.run();
    assert.deepEqual(compact(events).filter((l) => !l.startsWith('retrying')), [
      'queued 2 total=2',
      'started t-0 1/2 #1',
      'started t-0 1/2 #2',
      'started t-0 1/2 #3',
      'failed t-0 1/2 transient x3',
      'idle unavailable done=0 failed=1 total=2 remaining=2',
    ]);
    assert.match(summary.error!, /timed out/);
    // The thrown error itself travels with the summary, so the UI can offer the fix for its kind.
    assert.ok(summary.cause instanceof Error && summary.cause.name === 'TimeoutError', String(summary.cause));
    const idle = events.find((e) => e.type === 'idle');
    assert.equal(idle?.type === 'idle' ? idle.cause : undefined, summary.cause);
    assert.equal((await memory.pendingPairs()).length, 2);
    assert.equal(queue.failedPairs.size, 0, 'not remembered as a bad pair: the next run tries again');
  });
});

test('a pair error is reported with its message, the pair is skipped, the others are done; retryFailed tries it again', async () => {
  await withMemory(3, async (memory) => {
    let broken = true;
    const scorer = new HashScorer({ failOn: (_c, prompts) => (broken && prompts.includes(testPair(1).prompt) ? new Error('The prompt exceeds the context size (4096 tokens).') : undefined) });
    const { queue, events } = queueFor(memory, { scorer });
    const summary = await queue.run();
    assert.deepEqual(compact(events), [
      'queued 3 total=3',
      'started t-0 1/3 #1',
      'done t-0 1/3',
      'started t-1 2/3 #1',
      'failed t-1 2/3 pair x1',
      'started t-2 3/3 #1',
      'done t-2 3/3',
      'idle complete done=2 failed=1 total=3 remaining=1',
    ]);
    const failed = events.find((e) => e.type === 'failed');
    assert.match(failed?.type === 'failed' ? failed.error : '', /context size/);
    assert.deepEqual(summary.remaining, 1);
    assert.deepEqual([...queue.failedPairs.keys()], ['t-1']);
    events.length = 0;
    await queue.run();
    assert.deepEqual(compact(events), ['idle complete done=0 failed=0 total=1 remaining=1'], 'skipped while remembered as failed');
    broken = false;
    queue.retryFailed();
    events.length = 0;
    await queue.run();
    assert.deepEqual(compact(events), ['queued 1 total=1', 'started t-1 1/1 #1', 'done t-1 1/1', 'idle complete done=1 failed=0 total=1 remaining=0']);
  });
});

test('a fatal error (model missing) stops the run at once, surfaced with its message', async () => {
  await withMemory(3, async (memory) => {
    const missing = () => Object.assign(new Error("model 'llama3:8b' not found, try pulling it first"), { status_code: 404 });
    const scorer = new HashScorer({ failOn: () => missing() });
    const { queue, events } = queueFor(memory, { scorer });
    const summary = await queue.run();
    assert.deepEqual(compact(events), ['queued 3 total=3', 'started t-0 1/3 #1', 'failed t-0 1/3 fatal x1', 'idle fatal done=0 failed=1 total=3 remaining=3']);
    assert.match(summary.error!, /not found/);
    assert.equal(scorer.calls, 1, 'no retries, no further pairs');
  });
});

test('embedder failures are classified too, and a bad vector is a pair error', async () => {
  await withMemory(2, async (memory) => {
    const embedder = new HashEmbedder('fake-embed', 16, { failOn: (call) => (call === 0 ? Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }) : undefined) });
    const { queue, events } = queueFor(memory, { embedder });
    await queue.run();
    assert.ok(compact(events).includes('retrying t-0 #1'));
    assert.equal((await memory.pendingPairs()).length, 0);
  });
  await withMemory(1, async (memory) => {
    const nan = { id: 'fake-embed', embed: async () => [[Number.NaN, 1]] };
    const { queue, events } = queueFor(memory, { embedder: nan });
    await queue.run();
    assert.ok(compact(events).includes('failed t-0 1/1 pair x1'));
  });
});

// No clock here: the scorer call for t-1 never finishes on its own, so the run can only end by
// cancelling that call (it would hang otherwise), and the scorer sees the abort.
test('cancellation stops the run within the scorer call in flight, stores nothing for that pair, and a later run finishes', async () => {
  await withMemory(4, async (memory, dir) => {
    const scorer = new HashScorer({ hangOn: (prompts) => prompts.includes(testPair(1).prompt) });
    const { queue, events } = queueFor(memory, { scorer });
    let callsAtCancel = -1;
    queue.onEvent((e) => {
      if (e.type === 'started' && e.pairId === 't-1') {
        setImmediate(() => {
          callsAtCancel = scorer.calls;
          queue.cancel();
        });
      }
    });
    const summary = await queue.run();
    assert.equal(summary.reason, 'cancelled');
    assert.equal(scorer.aborted, 1, 'the call in flight was aborted');
    assert.equal(scorer.calls, callsAtCancel, 'no scorer call after the cancellation');
    assert.deepEqual((await selectionRecords(dir)).map((r) => r.pairId), ['t-0']);
    assert.deepEqual(compact(events).slice(-2), ['started t-1 2/4 #1', 'idle cancelled done=1 failed=0 total=4 remaining=3']);
    const fresh = queueFor(memory);
    assert.equal((await fresh.queue.run()).done, 3);
    assert.deepEqual((await selectionRecords(dir)).map((r) => r.pairId), ['t-0', 't-1', 't-2', 't-3']);
  });
});

test('an AbortSignal passed to run() cancels, also during a retry backoff', async () => {
  await withMemory(1, async (memory) => {
    const ctl = new AbortController();
    const scorer = new HashScorer({ failOn: () => Object.assign(new Error('busy'), { status: 503 }) });
    // A backoff of about 11 days: run() returns only because the abort ends the wait.
    const { queue, events } = queueFor(memory, { scorer, retry: { maxAttempts: 5, baseDelayMs: 1e9, maxDelayMs: 1e9 } });
    queue.onEvent((e) => e.type === 'retrying' && ctl.abort());
    const summary = await queue.run(ctl.signal);
    assert.equal(summary.reason, 'cancelled');
    assert.equal(scorer.calls, 1, 'no retry after the abort');
    assert.deepEqual(compact(events).slice(-1), ['idle cancelled done=0 failed=0 total=1 remaining=1']);
  });
});

test('two indexers on one folder: the second waits for the first and nothing is selected twice', async () => {
  await withMemory(4, async (memory, dir) => {
    const other = await PreferenceMemory.open(dir, { models: MODELS });
    const a = queueFor(memory, { scorer: new HashScorer({ delayMs: 15 }) });
    const b = queueFor(other, { scorer: new HashScorer({ delayMs: 15 }) });
    const first = a.queue.run();
    await new Promise<void>((r) => a.queue.onEvent((e) => e.type === 'started' && r()));
    const second = await b.queue.run();
    await first;
    assert.equal(b.events[0]?.type, 'waiting');
    assert.equal(second.done, 0);
    assert.equal((await first).done, 4);
    const recs = await selectionRecords(dir);
    assert.deepEqual(recs.map((r) => r.pairId).sort(), ['t-0', 't-1', 't-2', 't-3']);
  });
});

test('a child process killed (SIGKILL) mid-indexing loses no pair, and a restart finishes the work exactly once per pair', async () => {
  const N = 8;
  await withMemory(N, async (memory, dir) => {
    const child = spawnTs('test/support/indexingChild.ts', [dir, '40']);
    let done = 0;
    const res = await collect(child, (line) => {
      if (line.startsWith('{') && (JSON.parse(line) as IndexingEvent).type === 'done' && ++done === 3) child.kill('SIGKILL');
    });
    assert.equal(res.signal, 'SIGKILL', res.stderr);
    const afterKill = await selectionRecords(dir);
    assert.ok(afterKill.length >= 3 && afterKill.length < N, `${afterKill.length} selections stored before the kill`);
    assert.equal((await memory.stats()).pairs, N, 'every pair is still there');

    const restart = spawnTs('test/support/indexingChild.ts', [dir, '0']);
    const res2 = await collect(restart);
    assert.equal(res2.code, 0, res2.stderr);
    const summary = JSON.parse(res2.stdout.split('\n').find((l) => l.startsWith('SUMMARY '))!.slice(8)) as { reason: string; done: number };
    assert.equal(summary.reason, 'complete');
    assert.equal(summary.done, N - afterKill.length, 'the restart only did what was missing');
    const all = await selectionRecords(dir);
    const perPair = new Map<string, number>();
    for (const r of all) perPair.set(r.pairId, (perPair.get(r.pairId) ?? 0) + 1);
    assert.deepEqual([...perPair.keys()].sort(), Array.from({ length: N }, (_, i) => `t-${i}`).sort());
    assert.ok([...perPair.values()].every((n) => n === 1), 'no pair selected twice');
    for (const r of all) assert.deepEqual(r.attributes, (await expectedSelection(testPair(Number(r.pairId.slice(2))))).attributes);
    assert.deepEqual(await memory.pendingPairs(), []);
    assert.equal((await memory.verifyIndex()).health, 'ok');
  });
});

test('error classification', () => {
  const e = (message: string, extra: Record<string, unknown> = {}) => Object.assign(new Error(message), extra);
  const cases: Array<[unknown, string]> = [
    [e('x', { name: 'AbortError' }), 'abort'],
    [e('connect ECONNREFUSED 127.0.0.1:11434', { code: 'ECONNREFUSED' }), 'transient'],
    [e('fetch failed', { cause: e('connect ECONNREFUSED', { code: 'ECONNREFUSED' }) }), 'transient'],
    [e('x', { name: 'TimeoutError' }), 'transient'],
    [e('Service Unavailable', { status: 503 }), 'transient'],
    [e('Too Many Requests', { status_code: 429 }), 'transient'],
    [e('Timed out waiting for the lock /x (held by pid 1)', { name: 'LockTimeoutError' }), 'transient'],
    [e("model 'llama3' not found, try pulling it first", { status_code: 404 }), 'fatal'],
    [e('failed to load model /models/x.gguf'), 'fatal'],
    [e('Embedding has 3 dimensions but the stored ones have 16.', { name: 'DimensionMismatchError' }), 'fatal'],
    [e('input exceeds the context size'), 'pair'],
    [e('bad request', { status: 400 }), 'pair'],
    [e('something odd'), 'pair'],
    [e('whatever', { indexingClass: 'transient' }), 'transient'],
    [e('connect ECONNREFUSED', { code: 'ECONNREFUSED', indexingClass: 'fatal' }), 'fatal'],
    ['a string', 'pair'],
  ];
  for (const [err, want] of cases) assert.equal(classifyIndexingError(err), want, String((err as Error).message ?? err));
});
