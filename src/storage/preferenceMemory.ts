/**
 * The preference memory of one workspace, all under one storage folder:
 *
 *   pairs.jsonl     the append-only log, the source of truth (pairs, selections, tombstones, edits)
 *   index/          the vectra LocalIndex of prompt embeddings: a cache, rebuilt from the log
 *   memory.lock     cross-process lock around log appends and rewrites (held for milliseconds)
 *   index.lock      cross-process lock around index writes (held while index.json is rewritten)
 *   <name>.lock     a lock another layer owns, handed out by exclusiveLock() (the indexing queue's)
 *
 * Writers (this process's calls, and other VS Code windows on the same workspace) are
 * serialized by in-process queues plus the lock files. Log appends never wait for an index
 * rewrite. An index writer reads the log under index.lock, so the last index write always
 * reflects every append that preceded it; any index that disagrees with the log is rewritten.
 * Readers refresh incrementally from the log and take no lock unless the index must be rewritten.
 * Lock order (never reversed): index mutex, index.lock, state mutex, memory.lock.
 */
import { promises as fs } from 'node:fs';
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import {
  buildIndexEntries,
  DEFAULT_MIN_GAIN,
  DimensionMismatchError,
  throwIfAborted,
  type Embedder,
  type MemoryItem,
  type PairSelection,
  type SelectionResult,
} from '../core';
import { Mutex } from '../shared/mutex';
import { FileLock, type FileLockOptions, type LockHandle } from './fileLock';
import { JsonlLog, type JsonlLogDebug } from './jsonlLog';
import { MemoryState, modelKeyString, type ModelKey, type PairEntry } from './memoryState';
import {
  checkAttributes,
  checkPairFields,
  checkSelectionFields,
  copySelectionContent,
  decodeEmbedding,
  encodeEmbedding,
  LIMITS,
  LOG_SCHEMA_VERSION,
  Problems,
  type LogRecord,
  type PairRecord,
  type ScorerInfo,
  type SelectionRecord,
} from './records';
import { INDEX_SCHEMA_VERSION, metadataSignature, VectorIndex, type IndexCheck, type IndexItemSpec, type IndexMetadata, type IndexMetadataFields } from './vectorIndex';
import type { IndexItem } from 'vectra';

export type { ModelKey } from './memoryState';

export const LOG_FILE = 'pairs.jsonl';
export const INDEX_FOLDER = 'index';
export const MEMORY_LOCK_FILE = 'memory.lock';
export const INDEX_LOCK_FILE = 'index.lock';

export interface PreferenceMemoryOptions {
  /** The scoring model and embedding model whose selections count as current. */
  readonly models: ModelKey;
  /** Index entries need gain > minGain (core default 0). */
  readonly minGain?: number;
  /** The log lock (default timeout 10 s). */
  readonly lock?: FileLockOptions;
  /** The index lock (default timeout 120 s: an index rewrite of many entries takes seconds). */
  readonly indexLock?: FileLockOptions;
  /** Test hooks only. */
  readonly debug?: JsonlLogDebug & {
    /** Skip the cross-process lock (to show what it prevents). Never set this in the product. */
    readonly unsafeNoLock?: boolean;
  };
}

export interface NewPair {
  readonly prompt: string;
  readonly chosen: string;
  readonly rejected: string;
  /** Default 'drafts'. */
  readonly source?: string;
  /** Default: a random UUID. */
  readonly id?: string;
  readonly createdAt?: string;
}

export interface StoredPair {
  readonly id: string;
  readonly prompt: string;
  readonly chosen: string;
  readonly rejected: string;
  readonly source: string;
  readonly createdAt: string;
}

export interface SelectionInfo {
  readonly id: string;
  readonly attributes: string[];
  readonly objective: number;
  readonly baseObjective: number;
  readonly gain: number;
  readonly steps: ReadonlyArray<{ attribute: string; marginalGain: number; objective: number }>;
  readonly model: string;
  readonly embeddingModel: string;
  readonly scorer: ScorerInfo;
  readonly algorithm: SelectionRecord['algorithm'];
  readonly k: number;
  readonly durationMs: number;
  readonly createdAt: string;
}

/**
 * 'selected': selected with the current models. 'stale': selected only with other models
 * (needs re-indexing). 'pending': never selected.
 */
export type PairStatus = 'selected' | 'stale' | 'pending';

export interface PairView extends StoredPair {
  readonly status: PairStatus;
  /** The current models' selection, else the most recent other one. */
  readonly selection?: SelectionInfo;
  /** The user's attributes, when they edited them. */
  readonly override?: string[];
  /** override ?? selection.attributes ?? []. */
  readonly attributes: string[];
  /** In the vector index (passed the gain filter and won deduplication). */
  readonly indexed: boolean;
  /** Why not indexed, when it has a usable selection. */
  readonly notIndexedReason?: 'low-gain' | 'duplicate-prompt' | 'other-embedding-model';
}

export interface NewSelection {
  readonly pairId: string;
  /** The core's selection result (greedySelect / lazyGreedySelect). */
  readonly result: SelectionResult;
  /** The prompt's embedding from the embedder named in models.embeddingModel. */
  readonly embedding: ReadonlyArray<number>;
  /** Default: the memory's current models. */
  readonly models?: ModelKey;
  /** 'llama.cpp', 'ollama', ... */
  readonly scorerKind: string;
  readonly algorithm: SelectionRecord['algorithm'];
  readonly k: number;
  readonly durationMs: number;
  /** Leave the vector index for a later syncIndex() (the indexing queue batches). */
  readonly deferIndex?: boolean;
}

export interface IndexEntryView {
  readonly pairId: string;
  readonly prompt: string;
  readonly attributes: string[];
  readonly overridden: boolean;
  readonly objective: number;
  readonly baseObjective: number;
  readonly gain: number;
  readonly model: string;
  readonly embeddingModel: string;
  readonly staleModel: boolean;
  readonly selectedAt: string;
  readonly duplicatePairIds: string[];
  readonly embedding: ReadonlyArray<number>;
}

export interface LogHealth {
  readonly bytes: number;
  readonly records: number;
  readonly invalidLines: number;
  readonly unsupportedRecords: number;
  /** Bytes of an unfinished last line (a torn append, or one in progress elsewhere). */
  readonly tornTailBytes: number;
  /** Torn tails this process repaired before appending. */
  readonly repairedTails: number;
}

export interface MemoryStats {
  readonly models: ModelKey;
  readonly pairs: number;
  readonly deleted: number;
  readonly selected: number;
  readonly stale: number;
  readonly pending: number;
  readonly overridden: number;
  readonly indexEntries: number;
  readonly filteredLowGain: number;
  readonly duplicatePrompts: number;
  readonly storedModels: Array<ModelKey & { readonly pairs: number }>;
  readonly log: LogHealth;
}

export interface ReindexStatus {
  /** True when some pairs were selected only with other models than the current ones. */
  readonly needed: boolean;
  readonly current: ModelKey;
  /** Pairs selected only with other models. */
  readonly stale: number;
  /** Pairs with a selection for the current models. */
  readonly selected: number;
  /** Pairs never selected. */
  readonly pending: number;
  /** Distinct model keys among the stored selections, with how many pairs use each. */
  readonly storedModels: Array<ModelKey & { readonly pairs: number }>;
  readonly reason?: string;
}

export interface SyncReport {
  readonly before: IndexCheck;
  readonly rewritten: boolean;
  readonly entries: number;
  readonly ms: number;
}

/** What reset() requires: the caller asked the user. expectedPairs guards against deleting more than was shown. */
export interface ResetConfirmation {
  readonly confirmed: true;
  readonly expectedPairs?: number;
}

export class ResetMismatchError extends Error {
  constructor(expected: number, actual: number) {
    super(`Reset was confirmed for ${expected} pairs but the memory now holds ${actual} (another window added or removed some). Ask again.`);
    this.name = 'ResetMismatchError';
  }
}

export class UnknownPairError extends Error {
  constructor(id: string) {
    super(`No preference pair with id ${id}.`);
    this.name = 'UnknownPairError';
  }
}

export class PairValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(problems.join('; '));
    this.name = 'PairValidationError';
  }
}

export function now(): string {
  return new Date().toISOString();
}

export function toStored(p: PairRecord): StoredPair {
  return { id: p.id, prompt: p.prompt, chosen: p.chosen, rejected: p.rejected, source: p.source, createdAt: p.createdAt };
}

export function toSelectionInfo(s: SelectionRecord): SelectionInfo {
  return { id: s.id, ...copySelectionContent(s), attributes: [...s.attributes] };
}

/** Decoded embeddings per selection record (records are immutable once read). */
const decodedVectors = new WeakMap<SelectionRecord, number[]>();

interface Derived {
  readonly version: number;
  readonly modelsKey: string;
  readonly specs: IndexItemSpec[];
  readonly indexed: Set<string>;
  readonly reasons: Map<string, NonNullable<PairView['notIndexedReason']>>;
  readonly filteredLowGain: number;
  readonly duplicatePrompts: number;
}

export class PreferenceMemory {
  readonly logPath: string;
  private readonly log: JsonlLog;
  private readonly index: VectorIndex;
  private readonly lock: FileLock;
  private readonly indexLock: FileLock;
  /** Guards the folded state and log appends. */
  private readonly mutex = new Mutex();
  /** Guards the VectorIndex (check / write). Taken before `mutex`, never inside it. */
  private readonly indexMutex = new Mutex();
  private state = new MemoryState();
  private models: ModelKey;
  private readonly minGain: number;
  private derived: Derived | undefined;
  /** Bumped whenever `derived` is dropped (see contentVersion). */
  private contentGeneration = 0;
  private health = { invalidLines: 0, unsupportedRecords: 0, tornTailBytes: 0, repairedTails: 0 };
  private closed = false;

  private constructor(
    readonly folder: string,
    private readonly options: PreferenceMemoryOptions,
  ) {
    checkModels(options.models);
    this.models = { ...options.models };
    this.minGain = options.minGain ?? DEFAULT_MIN_GAIN;
    this.logPath = path.join(folder, LOG_FILE);
    this.log = new JsonlLog(this.logPath, options.debug);
    this.index = new VectorIndex(path.join(folder, INDEX_FOLDER));
    this.lock = new FileLock(path.join(folder, MEMORY_LOCK_FILE), { purpose: 'memory', ...options.lock });
    this.indexLock = new FileLock(path.join(folder, INDEX_LOCK_FILE), { purpose: 'index', timeoutMs: 120_000, ...options.indexLock });
  }

  /**
   * A cross-process lock owned by another layer and kept in this folder (the folder every window
   * of the workspace shares), e.g. the indexing queue's `indexing`: `<name>.lock`. The memory's
   * own lock names are refused, so such a lock can never be taken for the log or the index.
   */
  exclusiveLock(name: string, options: FileLockOptions = {}): FileLock {
    const file = `${name}.lock`;
    if (!/^[a-z][a-z0-9-]*$/u.test(name) || file === MEMORY_LOCK_FILE || file === INDEX_LOCK_FILE) throw new Error(`"${name}" cannot name a lock of another layer here.`);
    return new FileLock(path.join(this.folder, file), options);
  }

  /** Opens (creating the folder if needed) and reads the log. Does not touch the index. */
  static async open(folder: string, options: PreferenceMemoryOptions): Promise<PreferenceMemory> {
    await fs.mkdir(folder, { recursive: true });
    const memory = new PreferenceMemory(path.resolve(folder), options);
    await memory.mutex.run(() => memory.refresh());
    return memory;
  }

  get currentModels(): ModelKey {
    return { ...this.models };
  }

  /** Switches the current scoring / embedding models (e.g. after a settings change). */
  async setModels(models: ModelKey): Promise<void> {
    checkModels(models);
    await this.mutex.run(async () => {
      this.models = { ...models };
      this.derived = undefined;
      this.contentGeneration++;
    });
  }

  // ---------------------------------------------------------------- writes

  async recordPair(input: NewPair): Promise<StoredPair> {
    const record: PairRecord = {
      v: LOG_SCHEMA_VERSION,
      type: 'pair',
      id: input.id ?? randomUUID(),
      prompt: input.prompt,
      chosen: input.chosen,
      rejected: input.rejected,
      source: input.source ?? 'drafts',
      createdAt: input.createdAt ?? now(),
    };
    const p = new Problems();
    checkPairFields(record as unknown as Record<string, unknown>, p, 'pair');
    if (!p.ok) throw new PairValidationError(p.list);
    return this.write(async () => {
      if (this.state.pairs.has(record.id)) throw new PairValidationError([`pair.id: ${record.id} already exists`]);
      await this.append([record]);
      return toStored(record);
    });
  }

  /**
   * Records a selection for a pair. Returns undefined when the pair was deleted meanwhile
   * (the selection is then dropped). Throws DimensionMismatchError when the embedding's length
   * differs from other embeddings of the same embedding model.
   */
  async storeSelection(input: NewSelection): Promise<SelectionInfo | undefined> {
    const models = input.models ?? this.models;
    checkModels(models);
    const r = input.result;
    const record: SelectionRecord = {
      v: LOG_SCHEMA_VERSION,
      type: 'selection',
      id: randomUUID(),
      pairId: input.pairId,
      ...copySelectionContent({
        ...r,
        model: models.model,
        embeddingModel: models.embeddingModel,
        scorer: { kind: input.scorerKind, calls: r.scorerCalls, scoredSequences: r.scoredSequences, objectiveEvaluations: r.objectiveEvaluations },
        algorithm: input.algorithm,
        k: input.k,
        durationMs: input.durationMs,
        createdAt: now(),
      }),
      embedding: encodeEmbedding(input.embedding),
    };
    const p = new Problems();
    checkSelectionFields(record as unknown as Record<string, unknown>, p, 'selection');
    if (!p.ok) throw new PairValidationError(p.list);
    const stored = await this.write(async () => {
      if (!this.state.pairs.has(record.pairId)) return undefined;
      const dims = this.dimsFor(models.embeddingModel);
      if (dims !== undefined && dims !== record.embedding.dims) throw new DimensionMismatchError(dims, record.embedding.dims);
      await this.append([record]);
      return toSelectionInfo(record);
    });
    if (stored !== undefined && input.deferIndex !== true) await this.ensureIndex(false);
    return stored;
  }

  /**
   * Recovers from an embedding model whose output size changed under the same name (storing and
   * retrieval then fail with DimensionMismatchError): embeds the prompts of every pair that has
   * selections from `embedder` again and appends copies of those selections with the new vectors
   * (attributes and scores are unchanged: they do not depend on the embedding), in one write,
   * then rewrites the index. Nothing happens when the sizes agree.
   */
  async reembed(embedder: Embedder, signal?: AbortSignal): Promise<{ reembedded: number; fromDims?: number; toDims?: number }> {
    const targets = await this.read(() => {
      const out: Array<{ pairId: string; prompt: string }> = [];
      for (const e of this.state.pairs.values()) {
        if ([...e.selections.values()].some((s) => s.embeddingModel === embedder.id)) out.push({ pairId: e.pair.id, prompt: e.pair.prompt });
      }
      return out;
    });
    if (targets.length === 0) return { reembedded: 0 };
    const vectors = new Map<string, number[]>();
    const batch = 32;
    for (let i = 0; i < targets.length; i += batch) {
      throwIfAborted(signal);
      const slice = targets.slice(i, i + batch);
      const got = await embedder.embed(slice.map((t) => t.prompt), signal);
      slice.forEach((t, j) => vectors.set(t.pairId, got[j]!));
    }
    const toDims = vectors.values().next().value!.length;
    for (const v of vectors.values()) {
      if (v.length !== toDims || !v.every(Number.isFinite)) throw new Error(`The embedder ${embedder.id} returned vectors of different sizes or with non-numbers; nothing was changed.`);
    }
    const fromDims = await this.read(() => this.dimsFor(embedder.id));
    if (fromDims === toDims) return { reembedded: 0, fromDims, toDims };
    const reembedded = await this.write(async () => {
      const records: SelectionRecord[] = [];
      for (const e of this.state.pairs.values()) {
        const vector = vectors.get(e.pair.id);
        if (vector === undefined) continue;
        for (const sel of e.selections.values()) {
          if (sel.embeddingModel !== embedder.id || sel.embedding.dims === toDims) continue;
          records.push({ ...sel, id: randomUUID(), createdAt: now(), embedding: encodeEmbedding(vector) });
        }
      }
      if (records.length > 0) await this.append(records);
      return records.length;
    });
    await this.ensureIndex(true);
    return { reembedded, fromDims, toDims };
  }

  /** Tombstones a pair and removes it from the index. False when there was no such pair. */
  async deletePair(id: string): Promise<boolean> {
    const deleted = await this.write(async () => {
      if (!this.state.pairs.has(id)) return false;
      await this.append([{ v: LOG_SCHEMA_VERSION, type: 'delete', pairId: id, createdAt: now() }]);
      return true;
    });
    if (deleted) await this.ensureIndex(false);
    return deleted;
  }

  /**
   * The user's own attributes for a pair (null: back to the selected ones). An override always
   * enters the index (it bypasses the gain filter) and wins deduplication for its prompt, as
   * long as the pair has a selection with the current embedding model (which gives its vector).
   */
  async editAttributes(id: string, attributes: ReadonlyArray<string> | null): Promise<void> {
    if (attributes !== null) {
      const p = new Problems();
      checkAttributes(attributes, p, 'attributes');
      if (!p.ok) throw new PairValidationError(p.list);
    }
    await this.write(async () => {
      if (!this.state.pairs.has(id)) throw new UnknownPairError(id);
      await this.append([{ v: LOG_SCHEMA_VERSION, type: 'edit', pairId: id, attributes: attributes === null ? null : [...attributes], createdAt: now() }]);
    });
    await this.ensureIndex(false);
  }

  /** Deletes everything: the log is replaced by an empty one and the index removed. */
  async reset(confirmation: ResetConfirmation): Promise<void> {
    if (confirmation?.confirmed !== true) throw new Error('reset() needs { confirmed: true } from a user confirmation.');
    // Both locks, in the global order: no index writer may be busy with the old log.
    await this.indexMutex.run(() =>
      this.withIndexLock(async (indexHandle) => {
        await this.write(async (handle) => {
          if (confirmation.expectedPairs !== undefined && confirmation.expectedPairs !== this.state.pairs.size) {
            throw new ResetMismatchError(confirmation.expectedPairs, this.state.pairs.size);
          }
          await indexHandle?.assertHeld();
          await handle?.assertHeld();
          await this.log.replace([]);
          await this.index.remove();
          this.state = new MemoryState();
          this.log.forget();
          this.derived = undefined;
          await this.refresh();
        });
      }),
    );
  }

  // ---------------------------------------------------------------- reads

  async listPairs(): Promise<PairView[]> {
    return this.read(() => {
      const d = this.derive();
      return [...this.state.pairs.values()].map((e) => this.view(e, d));
    });
  }

  async getPair(id: string): Promise<PairView | undefined> {
    return this.read(() => {
      const e = this.state.pairs.get(id);
      return e === undefined ? undefined : this.view(e, this.derive());
    });
  }

  /** Pairs without a selection for `models` (default: the current ones), oldest first. */
  async pendingPairs(models: ModelKey = this.models): Promise<StoredPair[]> {
    return this.read(() => [...this.state.pairs.values()].filter((e) => this.state.selectionFor(e, models) === undefined).map((e) => toStored(e.pair)));
  }

  async stats(): Promise<MemoryStats> {
    return this.read(async () => {
      const d = this.derive();
      let selected = 0;
      let stale = 0;
      let overridden = 0;
      for (const e of this.state.pairs.values()) {
        if (this.state.selectionFor(e, this.models) !== undefined) selected++;
        else if (e.selections.size > 0) stale++;
        if (e.override !== undefined) overridden++;
      }
      let bytes = 0;
      try {
        bytes = (await fs.stat(this.logPath)).size;
      } catch {
        bytes = 0;
      }
      return {
        models: { ...this.models },
        pairs: this.state.pairs.size,
        deleted: this.state.deleted.size,
        selected,
        stale,
        pending: this.state.pairs.size - selected - stale,
        overridden,
        indexEntries: d.specs.length,
        filteredLowGain: d.filteredLowGain,
        duplicatePrompts: d.duplicatePrompts,
        storedModels: this.storedModels(),
        log: { bytes, records: this.state.records, ...this.health },
      };
    });
  }

  async needsReindex(): Promise<ReindexStatus> {
    return this.read(() => {
      let selected = 0;
      let stale = 0;
      for (const e of this.state.pairs.values()) {
        if (this.state.selectionFor(e, this.models) !== undefined) selected++;
        else if (e.selections.size > 0) stale++;
      }
      const storedModels = this.storedModels();
      const pending = this.state.pairs.size - selected - stale;
      const others = storedModels.filter((m) => modelKeyString(m) !== modelKeyString(this.models));
      return {
        needed: stale > 0,
        current: { ...this.models },
        stale,
        selected,
        pending,
        storedModels,
        ...(stale > 0
          ? { reason: `${stale} pair(s) were analysed with ${others.map((m) => `${m.model} / ${m.embeddingModel}`).join(', ')}, not with ${this.models.model} / ${this.models.embeddingModel}.` }
          : {}),
      };
    });
  }

  // ---------------------------------------------------------------- index and retrieval

  /** Compares the index with the log without changing anything. */
  async verifyIndex(): Promise<IndexCheck> {
    const specs = await this.expectedSpecs();
    return this.indexMutex.run(() => this.index.check(specs));
  }

  /** Makes the index agree with the log (rebuilding it if missing or corrupt). */
  async syncIndex(): Promise<SyncReport> {
    const { items: _items, ...report } = await this.ensureIndex(false);
    return report;
  }

  /** Rewrites the index from the log even if it looks fine. */
  async rebuildIndex(): Promise<SyncReport> {
    const { items: _items, ...report } = await this.ensureIndex(true);
    return report;
  }

  /** The index entries (with vectors), in index order; syncs the index first. */
  async indexEntries(): Promise<IndexEntryView[]> {
    const { items } = await this.ensureIndex(false);
    return items.map((it) => {
      const m = it.metadata;
      return {
        pairId: m.pairId,
        prompt: m.prompt,
        attributes: JSON.parse(m.attributes) as string[],
        overridden: m.overridden,
        objective: m.objective,
        baseObjective: m.baseObjective,
        gain: m.gain,
        model: m.model,
        embeddingModel: m.embeddingModel,
        staleModel: m.staleModel,
        selectedAt: m.selectedAt,
        duplicatePairIds: JSON.parse(m.duplicatePairIds) as string[],
        embedding: it.vector,
      };
    });
  }

  /** The index as the core's MemoryItem list (for profile views, topic modes). */
  async memoryItems(): Promise<MemoryItem[]> {
    // An override is the user's own statement: never weak.
    return (await this.indexEntries()).map((e) => ({ id: e.pairId, prompt: e.prompt, embedding: e.embedding, attributes: e.attributes, gain: e.overridden ? Number.POSITIVE_INFINITY : e.gain }));
  }

  /**
   * Changes whenever what indexEntries() returns may change (anything new in the log, or other
   * current models), so a reader can keep what it built from the entries until then. Cheap: it
   * reads only what was appended since the last call.
   */
  async contentVersion(): Promise<string> {
    return this.read(() => String(this.contentGeneration));
  }

  // ---------------------------------------------------------------- for import / export (importExport.ts)

  /** Runs `fn` on a fresh view of the log. */
  async snapshot<T>(fn: (state: MemoryState) => T): Promise<T> {
    return this.read(() => fn(this.state));
  }

  /**
   * Under the log lock, on a fresh view of the log: `plan` says what to append; it is appended in
   * one durable write (undone when the write fails, so nothing of it counts), then the index is
   * brought up to date when anything was appended.
   */
  async appendPlanned<T>(plan: (state: MemoryState, dimsFor: (embeddingModel: string) => number | undefined) => { records: LogRecord[]; result: T }): Promise<T> {
    const { records, result } = await this.write(async () => {
      const planned = plan(this.state, (m) => this.dimsFor(m));
      if (planned.records.length > 0) await this.append(planned.records);
      return planned;
    });
    if (records.length > 0) await this.ensureIndex(false);
    return result;
  }

  /** Stops using this instance (pending operations finish first). */
  async close(): Promise<void> {
    await this.indexMutex.run(() =>
      this.mutex.run(async () => {
        this.closed = true;
      }),
    );
  }

  // ---------------------------------------------------------------- internals

  private assertOpen(): void {
    if (this.closed) throw new Error('This preference memory was closed.');
  }

  /** Read-only work on a fresh view of the log. */
  private read<T>(fn: () => T | Promise<T>): Promise<T> {
    return this.mutex.run(async () => {
      this.assertOpen();
      await this.refresh();
      return fn();
    });
  }

  /** Write work: in-process queue, then the cross-process lock, then a fresh view of the log. */
  private write<T>(fn: (handle: LockHandle | undefined) => Promise<T>): Promise<T> {
    return this.mutex.run(async () => {
      this.assertOpen();
      return this.withLock(async (handle) => {
        await this.refresh();
        return fn(handle);
      });
    });
  }

  private async withLock<T>(fn: (handle: LockHandle | undefined) => Promise<T>): Promise<T> {
    if (this.options.debug?.unsafeNoLock === true) return fn(undefined);
    return this.lock.withLock(fn);
  }

  private async withIndexLock<T>(fn: (handle: LockHandle | undefined) => Promise<T>): Promise<T> {
    if (this.options.debug?.unsafeNoLock === true) return fn(undefined);
    return this.indexLock.withLock(fn);
  }

  /** Appends under the lock, then folds the new records in (re-reading so the order is the file's). */
  private async append(records: ReadonlyArray<LogRecord>): Promise<void> {
    const result = await this.log.append(records);
    if (result.repair !== 'none') this.health.repairedTails++;
    await this.refresh();
  }

  /** Reads what other processes (or we) appended since the last refresh. */
  private async refresh(): Promise<void> {
    const r = await this.log.readNew();
    if (r.reset) {
      this.state = new MemoryState();
      this.health = { ...this.health, invalidLines: 0, unsupportedRecords: 0 };
    }
    for (const rec of r.records) this.state.apply(rec);
    this.health.invalidLines += r.invalidLines;
    this.health.unsupportedRecords += r.unsupportedRecords;
    this.health.tornTailBytes = r.tornTailBytes;
    if (r.reset || r.records.length > 0) {
      this.derived = undefined;
      this.contentGeneration++;
    }
  }

  private dimsFor(embeddingModel: string): number | undefined {
    for (const e of this.state.pairs.values()) {
      for (const s of e.selections.values()) if (s.embeddingModel === embeddingModel) return s.embedding.dims;
    }
    return undefined;
  }

  private storedModels(): Array<ModelKey & { pairs: number }> {
    const counts = new Map<string, ModelKey & { pairs: number }>();
    for (const e of this.state.pairs.values()) {
      for (const s of e.selections.values()) {
        const key = modelKeyString(s);
        const c = counts.get(key) ?? { model: s.model, embeddingModel: s.embeddingModel, pairs: 0 };
        c.pairs++;
        counts.set(key, c);
      }
    }
    return [...counts.values()];
  }

  /** What the index must contain, from the log (memoized until the log or models change). */
  private derive(): Derived {
    const modelsKey = modelKeyString(this.models);
    if (this.derived !== undefined && this.derived.version === this.state.version && this.derived.modelsKey === modelsKey) return this.derived;
    const candidates: Array<PairSelection & { selection: SelectionRecord; staleModel: boolean; overridden: boolean }> = [];
    const reasons = new Map<string, NonNullable<PairView['notIndexedReason']>>();
    for (const e of this.state.pairs.values()) {
      const usable = this.state.usableSelection(e, this.models);
      if (usable === undefined) {
        if (e.selections.size > 0) reasons.set(e.pair.id, 'other-embedding-model');
        continue;
      }
      const overridden = e.override !== undefined;
      candidates.push({
        pairId: e.pair.id,
        prompt: e.pair.prompt,
        attributes: overridden ? e.override!.attributes : usable.selection.attributes,
        // An override is the user's explicit statement: it passes the filter and wins dedup.
        objective: overridden ? Number.POSITIVE_INFINITY : usable.selection.objective,
        gain: overridden ? Number.POSITIVE_INFINITY : usable.selection.gain,
        selection: usable.selection,
        staleModel: usable.stale,
        overridden,
      });
    }
    const byId = new Map(candidates.map((c) => [c.pairId, c]));
    const passing = new Set(candidates.filter((c) => c.gain > this.minGain).map((c) => c.pairId));
    const entries = buildIndexEntries(candidates, this.minGain);
    const specs: IndexItemSpec[] = entries.map((entry) => {
      const c = byId.get(entry.pairId)!;
      const s = c.selection;
      const base: IndexMetadataFields = {
        schema: INDEX_SCHEMA_VERSION,
        pairId: c.pairId,
        prompt: c.prompt,
        attributes: JSON.stringify(entry.attributes),
        overridden: c.overridden,
        objective: s.objective,
        baseObjective: s.baseObjective,
        gain: s.gain,
        model: s.model,
        embeddingModel: s.embeddingModel,
        staleModel: c.staleModel,
        selectionId: s.id,
        selectedAt: s.createdAt,
        duplicatePairIds: JSON.stringify(entry.duplicatePairIds),
      };
      let vector = decodedVectors.get(s);
      if (vector === undefined) {
        vector = decodeEmbedding(s.embedding);
        decodedVectors.set(s, vector);
      }
      return { id: c.pairId, vector, metadata: { ...base, sig: metadataSignature(base) } };
    });
    const indexed = new Set(specs.map((s) => s.id));
    let duplicatePrompts = 0;
    for (const c of candidates) {
      if (indexed.has(c.pairId)) continue;
      if (!passing.has(c.pairId)) reasons.set(c.pairId, 'low-gain');
      else {
        reasons.set(c.pairId, 'duplicate-prompt');
        duplicatePrompts++;
      }
    }
    this.derived = {
      version: this.state.version,
      modelsKey,
      specs,
      indexed,
      reasons,
      filteredLowGain: candidates.length - passing.size,
      duplicatePrompts,
    };
    return this.derived;
  }

  private view(e: PairEntry, d: Derived): PairView {
    const exact = this.state.selectionFor(e, this.models);
    let latest: SelectionRecord | undefined;
    for (const s of e.selections.values()) latest = s;
    const selection = exact ?? latest;
    const status: PairStatus = exact !== undefined ? 'selected' : e.selections.size > 0 ? 'stale' : 'pending';
    const override = e.override === undefined ? undefined : [...e.override.attributes];
    const reason = d.reasons.get(e.pair.id);
    return {
      ...toStored(e.pair),
      status,
      ...(selection !== undefined ? { selection: toSelectionInfo(selection) } : {}),
      ...(override !== undefined ? { override } : {}),
      attributes: override ?? (selection !== undefined ? [...selection.attributes] : []),
      indexed: d.indexed.has(e.pair.id),
      ...(reason !== undefined ? { notIndexedReason: reason } : {}),
    };
  }

  /** The expected index content from a fresh read of the log. */
  private expectedSpecs(): Promise<IndexItemSpec[]> {
    return this.mutex.run(async () => {
      this.assertOpen();
      await this.refresh();
      return this.derive().specs;
    });
  }

  /**
   * Checks the index against the log and rewrites it under index.lock when they disagree
   * (or always, when forced). Returns the items now on disk.
   */
  private ensureIndex(force: boolean): Promise<SyncReport & { items: ReadonlyArray<IndexItem<IndexMetadata>> }> {
    return this.indexMutex.run(async () => {
      const t0 = performance.now();
      const specs = await this.expectedSpecs();
      const before = await this.index.check(specs);
      if (before.health === 'ok' && !force) return { before, rewritten: false, entries: specs.length, ms: performance.now() - t0, items: await this.index.items() };
      return this.withIndexLock(async (handle) => {
        // Re-read the log under the index lock: this write then covers every earlier append.
        const latest = await this.expectedSpecs();
        const again = await this.index.check(latest);
        if (again.health !== 'ok' || force) {
          await handle?.assertHeld();
          await this.index.write(latest, again.health);
        }
        return { before, rewritten: again.health !== 'ok' || force, entries: latest.length, ms: performance.now() - t0, items: await this.index.items() };
      });
    });
  }
}

function checkModels(m: ModelKey): void {
  if (typeof m?.model !== 'string' || m.model.length === 0 || m.model.length > LIMITS.modelLength) throw new Error('models.model must be a non-empty string.');
  if (typeof m.embeddingModel !== 'string' || m.embeddingModel.length === 0 || m.embeddingModel.length > LIMITS.modelLength) {
    throw new Error('models.embeddingModel must be a non-empty string.');
  }
}
