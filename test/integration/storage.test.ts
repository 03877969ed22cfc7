/**
 * The preference memory's operations, against the real file system and the real vectra index.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import type { SelectionResult } from '../../src/core';
import {
  exportData,
  exportToFile,
  importData,
  importFromFile,
  ImportValidationError,
  INDEX_FOLDER,
  LOG_FILE,
  PairValidationError,
  PreferenceMemory,
  ResetMismatchError,
  UnknownPairError,
  type ExportFile,
} from '../../src/storage';
import { expectedSelection, HashEmbedder, MODELS, tempFolder, testPair } from '../support/storageFakes';

const embedder = new HashEmbedder();

/** A hand-made selection result with chosen numbers. */
function result(attributes: string[], objective: number, gain: number): SelectionResult {
  return {
    attributes,
    objective,
    baseObjective: objective - gain,
    gain,
    steps: attributes.map((a, i) => ({ attribute: a, marginalGain: gain / attributes.length, objective: objective - gain + ((i + 1) * gain) / attributes.length })),
    scorerCalls: 1,
    scoredSequences: 2,
    objectiveEvaluations: 1,
  };
}

async function store(memory: PreferenceMemory, pairId: string, prompt: string, r: SelectionResult, vector = embedder.vector(prompt), models = MODELS) {
  return memory.storeSelection({ pairId, result: r, embedding: vector, models, scorerKind: 'fake', algorithm: 'greedy', k: r.attributes.length, durationMs: 1 });
}

async function logLines(dir: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(path.join(dir, LOG_FILE), 'utf8');
  assert.ok(text.endsWith('\n'), 'the log ends with a newline');
  return text
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('a recorded pair is in the log before recordPair resolves, and another instance sees it', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    const stored = await memory.recordPair({ ...testPair(1), source: 'drafts' });
    const lines = await logLines(dir);
    assert.equal(lines[0]!.type, 'header');
    assert.equal(lines[0]!.v, 1);
    assert.deepEqual(
      lines.slice(1).map((l) => [l.v, l.type, l.id, l.prompt, l.source]),
      [[1, 'pair', 't-1', testPair(1).prompt, 'drafts']],
    );
    const other = await PreferenceMemory.open(dir, { models: MODELS });
    assert.deepEqual(await other.getPair(stored.id), { ...stored, status: 'pending', attributes: [], indexed: false });
    // And writes by the second instance reach the first without reopening.
    await other.recordPair(testPair(2));
    assert.deepEqual(
      (await memory.listPairs()).map((p) => p.id),
      ['t-1', 't-2'],
    );
    assert.deepEqual(
      (await memory.pendingPairs()).map((p) => p.id),
      ['t-1', 't-2'],
    );
  } finally {
    await cleanup();
  }
});

test('recordPair validates and refuses duplicate ids', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    const p = await memory.recordPair({ prompt: 'x', chosen: 'a', rejected: 'b' });
    assert.match(p.id, /^[0-9a-f-]{36}$/);
    await assert.rejects(memory.recordPair({ prompt: '', chosen: 'a', rejected: 'b' }), PairValidationError);
    await assert.rejects(memory.recordPair({ id: 'bad id with spaces', prompt: 'x', chosen: 'a', rejected: 'b' }), PairValidationError);
    await assert.rejects(memory.recordPair({ id: p.id, prompt: 'y', chosen: 'a', rejected: 'b' }), /already exists/);
    assert.equal((await memory.stats()).pairs, 1);
  } finally {
    await cleanup();
  }
});

test('a stored selection is logged with its metadata and indexed with its prompt\'s vector', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    const pairs = [0, 1, 2, 3].map((i) => testPair(i));
    const items: Array<{ id: string; attributes: string[]; embedding: number[] }> = [];
    for (const p of pairs) {
      await memory.recordPair(p);
      const r = await expectedSelection(p);
      const info = await store(memory, p.id, p.prompt, r);
      assert.deepEqual(info?.attributes, r.attributes);
      // Indexed: a positive gain, or a choice nothing explained (no attributes).
      if (r.gain > 0 || r.attributes.length === 0) items.push({ id: p.id, embedding: embedder.vector(p.prompt), attributes: r.attributes });
    }
    const sel = (await logLines(dir)).filter((l) => l.type === 'selection');
    assert.equal(sel.length, 4);
    for (const key of ['pairId', 'attributes', 'objective', 'baseObjective', 'gain', 'steps', 'model', 'embeddingModel', 'scorer', 'algorithm', 'k', 'durationMs', 'createdAt', 'embedding']) {
      assert.ok(key in sel[0]!, `selection records carry ${key}`);
    }
    assert.deepEqual(sel[0]!.scorer, { kind: 'fake', calls: 2, scoredSequences: 24, objectiveEvaluations: 12 });
    assert.equal((await memory.verifyIndex()).health, 'ok');
    assert.ok(items.length >= 2, 'the fixture has several indexable pairs');
    const entries = await memory.indexEntries();
    assert.deepEqual(
      entries.map((e) => [e.pairId, e.attributes, e.model, e.embeddingModel, [...e.embedding]]),
      items.map((i) => [i.id, i.attributes, MODELS.model, MODELS.embeddingModel, i.embedding]),
    );
  } finally {
    await cleanup();
  }
});

test('index entries follow buildIndexEntries: low gain filtered, duplicate prompts keep the largest objective', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    await memory.recordPair({ id: 'low', prompt: 'P low', chosen: 'c', rejected: 'r' });
    await memory.recordPair({ id: 'zero', prompt: 'P zero', chosen: 'c', rejected: 'r' });
    await memory.recordPair({ id: 'd1', prompt: 'P dup', chosen: 'c1', rejected: 'r' });
    await memory.recordPair({ id: 'd2', prompt: 'P dup', chosen: 'c2', rejected: 'r' });
    await memory.recordPair({ id: 'd3', prompt: 'P dup', chosen: 'c3', rejected: 'r' });
    await store(memory, 'low', 'P low', result(['Formal'], 1, -0.5));
    await store(memory, 'zero', 'P zero', result(['Formal'], 1, 0));
    await store(memory, 'd1', 'P dup', result(['Concise'], 2, 1));
    await store(memory, 'd2', 'P dup', result(['Vivid'], 5, 1));
    await store(memory, 'd3', 'P dup', result(['Humor'], 5, 1));
    const entries = await memory.indexEntries();
    assert.deepEqual(
      entries.map((e) => [e.pairId, e.attributes, e.duplicatePairIds]),
      [['d2', ['Vivid'], ['d1', 'd3']]],
    );
    const views = new Map((await memory.listPairs()).map((p) => [p.id, p]));
    assert.equal(views.get('low')!.notIndexedReason, 'low-gain');
    assert.equal(views.get('zero')!.notIndexedReason, 'low-gain');
    assert.equal(views.get('d1')!.notIndexedReason, 'duplicate-prompt');
    assert.equal(views.get('d3')!.notIndexedReason, 'duplicate-prompt');
    assert.equal(views.get('d2')!.indexed, true);
    const s = await memory.stats();
    assert.deepEqual([s.pairs, s.selected, s.indexEntries, s.filteredLowGain, s.duplicatePrompts], [5, 5, 1, 2, 2]);
    // A memory with a lower minGain indexes the low-gain pairs too.
    const lenient = await PreferenceMemory.open(dir, { models: MODELS, minGain: -1 });
    assert.deepEqual((await lenient.indexEntries()).map((e) => e.pairId), ['low', 'zero', 'd2']);
  } finally {
    await cleanup();
  }
});

test('delete: tombstone in the log, gone from the index file, pending and stats; the id can be recorded again', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    for (const id of ['keep', 'gone']) {
      await memory.recordPair({ id, prompt: `prompt ${id} SECRET-${id}`, chosen: 'c', rejected: 'r' });
      await store(memory, id, `prompt ${id} SECRET-${id}`, result(['Formal'], 1, 1));
    }
    assert.match(await readFile(path.join(dir, INDEX_FOLDER, 'index.json'), 'utf8'), /SECRET-gone/);
    assert.equal(await memory.deletePair('gone'), true);
    assert.equal(await memory.deletePair('gone'), false);
    assert.equal(await memory.deletePair('never'), false);
    const index = await readFile(path.join(dir, INDEX_FOLDER, 'index.json'), 'utf8');
    assert.doesNotMatch(index, /SECRET-gone/);
    assert.match(index, /SECRET-keep/);
    assert.deepEqual((await logLines(dir)).filter((l) => l.type === 'delete').map((l) => l.pairId), ['gone']);
    assert.deepEqual((await memory.listPairs()).map((p) => p.id), ['keep']);
    const s = await memory.stats();
    assert.deepEqual([s.pairs, s.deleted, s.indexEntries], [1, 1, 1]);
    // A fresh instance folds the same state from the log.
    const again = await PreferenceMemory.open(dir, { models: MODELS });
    assert.deepEqual((await again.listPairs()).map((p) => p.id), ['keep']);
    // Recording the id again revives it without the old selection.
    await again.recordPair({ id: 'gone', prompt: 'new text', chosen: 'c', rejected: 'r' });
    const revived = await again.getPair('gone');
    assert.equal(revived?.status, 'pending');
    assert.equal(revived?.prompt, 'new text');
  } finally {
    await cleanup();
  }
});

test('edit: the override is logged, replaces the attributes in the index, survives reopening, and can be cleared', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    await memory.recordPair({ id: 'a', prompt: 'prompt a', chosen: 'c', rejected: 'r' });
    await memory.recordPair({ id: 'low', prompt: 'prompt low', chosen: 'c', rejected: 'r' });
    await store(memory, 'a', 'prompt a', result(['Formal', 'Concise'], 3, 2));
    await store(memory, 'low', 'prompt low', result(['Humor'], 0, -1));
    assert.deepEqual((await memory.indexEntries()).map((e) => e.pairId), ['a']);

    await memory.editAttributes('a', ['Vivid']);
    await memory.editAttributes('low', ['Direct', 'Analytic']);
    const edits = (await logLines(dir)).filter((l) => l.type === 'edit');
    assert.deepEqual(edits.map((e) => [e.pairId, e.attributes]), [['a', ['Vivid']], ['low', ['Direct', 'Analytic']]]);
    const reopened = await PreferenceMemory.open(dir, { models: MODELS });
    assert.deepEqual(
      (await reopened.indexEntries()).map((e) => [e.pairId, e.attributes, e.overridden, e.gain]),
      [['a', ['Vivid'], true, 2], ['low', ['Direct', 'Analytic'], true, -1]],
    );
    const view = await reopened.getPair('a');
    assert.deepEqual([view?.override, view?.attributes, view?.selection?.attributes], [['Vivid'], ['Vivid'], ['Formal', 'Concise']]);

    await reopened.editAttributes('a', null);
    await reopened.editAttributes('low', null);
    assert.deepEqual((await memory.indexEntries()).map((e) => [e.pairId, e.attributes, e.overridden]), [['a', ['Formal', 'Concise'], false]]);
    await assert.rejects(memory.editAttributes('nope', ['Formal']), UnknownPairError);

    // An override also wins prompt deduplication against a larger measured objective.
    await memory.recordPair({ id: 'big', prompt: 'prompt a', chosen: 'other', rejected: 'r' });
    await store(memory, 'big', 'prompt a', result(['Analytic'], 9, 5));
    assert.deepEqual((await memory.indexEntries()).map((e) => e.pairId), ['big']);
    await memory.editAttributes('a', ['Easy']);
    assert.deepEqual((await memory.indexEntries()).map((e) => [e.pairId, e.attributes, e.duplicatePairIds]), [['a', ['Easy'], ['big']]]);
    await assert.rejects(memory.editAttributes('a', ['Formal', 'Formal']), PairValidationError);
    await assert.rejects(memory.editAttributes('a', ['line\nbreak']), PairValidationError);
  } finally {
    await cleanup();
  }
});

test('export then import into another workspace reproduces pairs, selections, overrides and retrieval', async () => {
  const a = await tempFolder();
  const b = await tempFolder();
  try {
    const source = await PreferenceMemory.open(a.dir, { models: MODELS });
    for (let i = 0; i < 4; i++) {
      const p = testPair(i);
      await source.recordPair({ ...p, source: i === 0 ? 'import' : 'drafts' });
      if (i < 3) await store(source, p.id, p.prompt, await expectedSelection(p));
    }
    await source.editAttributes('t-1', ['Humor']);
    const file = path.join(a.dir, 'export.json');
    const written = await exportToFile(source, file);
    assert.deepEqual([written.pairs, written.selections], [4, 3]);
    const parsed = JSON.parse(await readFile(file, 'utf8')) as ExportFile;
    assert.equal(parsed.format, 'exact-preferences');
    assert.equal(parsed.version, 1);

    const target = await PreferenceMemory.open(b.dir, { models: MODELS });
    const summary = await importFromFile(target, file);
    assert.deepEqual(summary, { added: 4, alreadyPresent: 0, conflicts: [], skippedDeleted: 0, selectionsAdded: 3, overridesApplied: 1, duplicateIds: [] });
    const strip = (v: Awaited<ReturnType<PreferenceMemory['listPairs']>>) => v.map(({ ...p }) => p);
    assert.deepEqual(strip(await target.listPairs()), strip(await source.listPairs()));
    const entriesA = await source.indexEntries();
    assert.deepEqual(await target.indexEntries(), entriesA);

    // Importing again merges by id: nothing new.
    const before = (await stat(path.join(b.dir, LOG_FILE))).size;
    assert.deepEqual(await importFromFile(target, file), { added: 0, alreadyPresent: 4, conflicts: [], skippedDeleted: 0, selectionsAdded: 0, overridesApplied: 0, duplicateIds: [] });
    assert.equal((await stat(path.join(b.dir, LOG_FILE))).size, before);
  } finally {
    await a.cleanup();
    await b.cleanup();
  }
});

test('import merges by id: conflicts kept ours, deletions win unless restoreDeleted, missing selections are added', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    await memory.recordPair({ id: 'same', prompt: 'p same', chosen: 'c', rejected: 'r' });
    await memory.recordPair({ id: 'clash', prompt: 'p clash', chosen: 'ours', rejected: 'r' });
    await memory.recordPair({ id: 'del', prompt: 'p del', chosen: 'c', rejected: 'r' });
    await memory.deletePair('del');
    const sel = await expectedSelection({ prompt: 'p same', chosen: 'c', rejected: 'r' });
    const other = await tempFolder();
    try {
      const theirs = await PreferenceMemory.open(other.dir, { models: MODELS });
      await theirs.recordPair({ id: 'same', prompt: 'p same', chosen: 'c', rejected: 'r' });
      await store(theirs, 'same', 'p same', sel);
      await theirs.recordPair({ id: 'clash', prompt: 'p clash', chosen: 'theirs', rejected: 'r' });
      await theirs.recordPair({ id: 'del', prompt: 'p del', chosen: 'c', rejected: 'r' });
      const data = await exportData(theirs);
      assert.deepEqual(await importData(memory, data), { added: 0, alreadyPresent: 1, conflicts: ['clash'], skippedDeleted: 1, selectionsAdded: 1, overridesApplied: 0, duplicateIds: [] });
      assert.equal((await memory.getPair('same'))?.status, 'selected');
      assert.equal((await memory.getPair('clash'))?.chosen, 'ours');
      assert.equal(await memory.getPair('del'), undefined);
      assert.deepEqual(await importData(memory, data, { restoreDeleted: true }), { added: 1, alreadyPresent: 1, conflicts: ['clash'], skippedDeleted: 0, selectionsAdded: 0, overridesApplied: 0, duplicateIds: [] });
      assert.equal((await memory.getPair('del'))?.prompt, 'p del');
    } finally {
      await other.cleanup();
    }
  } finally {
    await cleanup();
  }
});

test('import validates the whole file first and writes nothing when any part is invalid', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    await memory.recordPair({ id: 'x', prompt: 'p', chosen: 'c', rejected: 'r' });
    const size = (await stat(path.join(dir, LOG_FILE))).size;
    const good = { id: 'ok', prompt: 'fine', chosen: 'a', rejected: 'b' };
    const cases: unknown[] = [
      null,
      [],
      { format: 'something-else', version: 1, pairs: [] },
      { format: 'exact-preferences', version: 99, pairs: [] },
      { format: 'exact-preferences', version: 1, pairs: [good, { id: 'no-prompt', chosen: 'a', rejected: 'b' }] },
      { format: 'exact-preferences', version: 1, pairs: [good, { ...good, id: 'bad', override: ['A', 'A'] }] },
      { format: 'exact-preferences', version: 1, pairs: [{ ...good, selections: [{ id: 's', attributes: ['A'], objective: 'high' }] }] },
    ];
    for (const c of cases) await assert.rejects(importData(memory, c), ImportValidationError, JSON.stringify(c));
    const file = path.join(dir, 'broken.json');
    await writeFile(file, '{"format": "exact-preferences", "version": 1, "pairs": [');
    await assert.rejects(importFromFile(memory, file), ImportValidationError);
    assert.equal((await stat(path.join(dir, LOG_FILE))).size, size);
    // Pairs without ids get content ids, so a second import does not duplicate them.
    const plain = { format: 'exact-preferences', version: 1, pairs: [{ prompt: 'p1', chosen: 'a', rejected: 'b' }] };
    assert.equal((await importData(memory, plain)).added, 1);
    assert.equal((await importData(memory, plain)).alreadyPresent, 1);
    const imported = (await memory.listPairs()).find((p) => p.prompt === 'p1');
    assert.equal(imported?.source, 'import');
    assert.match(imported!.id, /^h[0-9a-f]{31}$/);
  } finally {
    await cleanup();
  }
});

test('reset needs confirmation, refuses a stale confirmation, and clears log and index for every instance', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    const other = await PreferenceMemory.open(dir, { models: MODELS });
    for (let i = 0; i < 3; i++) {
      const p = testPair(i);
      await memory.recordPair(p);
      await store(memory, p.id, p.prompt, result(['Formal'], 1, 1));
    }
    await assert.rejects(memory.reset({} as never), /confirmed: true/);
    await assert.rejects(memory.reset({ confirmed: true, expectedPairs: 2 }), ResetMismatchError);
    assert.equal((await other.stats()).pairs, 3);
    await memory.reset({ confirmed: true, expectedPairs: 3 });
    const lines = await logLines(dir);
    assert.deepEqual(lines.map((l) => l.type), ['header']);
    await assert.rejects(stat(path.join(dir, INDEX_FOLDER, 'index.json')), { code: 'ENOENT' });
    assert.equal((await other.stats()).pairs, 0, 'the other instance notices the replaced log');
    assert.deepEqual(await other.indexEntries(), []);
    await other.recordPair(testPair(7));
    assert.deepEqual((await memory.listPairs()).map((p) => p.id), ['t-7']);
  } finally {
    await cleanup();
  }
});

test('re-index detection: a new scoring model makes pairs stale (still retrievable), a new embedding model empties the index', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    for (let i = 0; i < 3; i++) {
      const p = testPair(i);
      await memory.recordPair(p);
      await store(memory, p.id, p.prompt, result(['Formal'], 1, 1));
    }
    assert.deepEqual(await memory.needsReindex(), {
      needed: false,
      current: MODELS,
      stale: 0,
      selected: 3,
      pending: 0,
      storedModels: [{ ...MODELS, pairs: 3 }],
    });
    const newScorer = { model: 'other-scorer', embeddingModel: MODELS.embeddingModel };
    await memory.setModels(newScorer);
    const status = await memory.needsReindex();
    assert.equal(status.needed, true);
    assert.equal(status.stale, 3);
    assert.match(status.reason!, /fake-scorer-1/);
    assert.deepEqual((await memory.pendingPairs()).map((p) => p.id), ['t-0', 't-1', 't-2']);
    assert.deepEqual((await memory.listPairs()).map((p) => p.status), ['stale', 'stale', 'stale']);
    const entries = await memory.indexEntries();
    assert.deepEqual(entries.map((e) => [e.pairId, e.staleModel]), [['t-0', true], ['t-1', true], ['t-2', true]]);
    // Selecting one pair with the new model makes it current.
    await store(memory, 't-1', testPair(1).prompt, result(['Vivid'], 2, 2), undefined, newScorer);
    assert.equal((await memory.needsReindex()).stale, 2);
    assert.deepEqual((await memory.indexEntries()).map((e) => [e.pairId, e.attributes, e.staleModel]), [['t-0', ['Formal'], true], ['t-1', ['Vivid'], false], ['t-2', ['Formal'], true]]);

    await memory.setModels({ model: 'other-scorer', embeddingModel: 'other-embedder' });
    assert.deepEqual(await memory.indexEntries(), []);
    assert.equal((await memory.needsReindex()).stale, 3);
    assert.equal((await memory.listPairs())[0]!.notIndexedReason, 'other-embedding-model');
    // Embeddings of another size under the same embedding model are refused.
    await assert.rejects(store(memory, 't-0', 'x', result(['Formal'], 1, 1), [1, 2, 3], { model: 'other-scorer', embeddingModel: MODELS.embeddingModel }), { name: 'DimensionMismatchError' });
  } finally {
    await cleanup();
  }
});

test('storeSelection for a pair deleted meanwhile is dropped', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    await memory.recordPair({ id: 'a', prompt: 'p', chosen: 'c', rejected: 'r' });
    await memory.deletePair('a');
    assert.equal(await store(memory, 'a', 'p', result(['Formal'], 1, 1)), undefined);
    assert.equal((await logLines(dir)).filter((l) => l.type === 'selection').length, 0);
  } finally {
    await cleanup();
  }
});

test('another layer\'s lock lives in the folder under its own name and can never be the log\'s or the index\'s', async () => {
  const { dir, cleanup } = await tempFolder();
  try {
    const memory = await PreferenceMemory.open(dir, { models: MODELS });
    for (const name of ['memory', 'index', '../escape', 'Upper', '']) assert.throws(() => memory.exclusiveLock(name), /cannot name a lock/, name);
    const lock = memory.exclusiveLock('indexing', { purpose: 'indexing' });
    const handle = await lock.acquire();
    await stat(path.join(dir, 'indexing.lock'));
    await handle.release();
  } finally {
    await cleanup();
  }
});
