/**
 * The vectra LocalIndex that holds prompt embeddings for retrieval. It is a cache of the log:
 * its expected content is computed from the log, and whenever the file on disk is missing,
 * unparseable, of another schema, or disagrees with that content, it is rewritten.
 * All writes go through AtomicFileStorage (temp + fsync + rename), under the memory lock.
 */
import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import type { IndexItem, LocalIndex } from 'vectra';
import { AtomicFileStorage, removeStaleTempFiles } from './atomicFile';

/** Bump when the item layout changes: old indexes are then rebuilt. */
export const INDEX_SCHEMA_VERSION = 1;
const INDEX_FILE = 'index.json';

/** vectra metadata must be flat scalars: lists are stored as JSON strings. (A type alias, so it fits vectra's Record bound.) */
export type IndexMetadataFields = {
  schema: number;
  pairId: string;
  prompt: string;
  /** JSON array of attribute names (the override if the user edited them). */
  attributes: string;
  overridden: boolean;
  objective: number;
  baseObjective: number;
  gain: number;
  model: string;
  embeddingModel: string;
  /** True when the selection was made with another scoring model than the current one. */
  staleModel: boolean;
  selectionId: string;
  selectedAt: string;
  /** JSON array of other pairs with the same prompt that lost deduplication to this one. */
  duplicatePairIds: string;
};

export type IndexMetadata = IndexMetadataFields & {
  /** Hash of the fields: a cheap equality check against the log. */
  sig: string;
};

export interface IndexItemSpec {
  readonly id: string;
  readonly vector: ReadonlyArray<number>;
  readonly metadata: IndexMetadata;
}

export type IndexHealth = 'ok' | 'missing' | 'corrupt' | 'schema' | 'stale';

export interface IndexCheck {
  readonly health: IndexHealth;
  readonly detail?: string;
  /** Items on disk when the index could be read. */
  readonly itemCount?: number;
}

export function metadataSignature(m: IndexMetadataFields): string {
  const fields = m as Record<string, unknown>;
  const keys = Object.keys(fields)
    .filter((k) => k !== 'sig')
    .sort();
  return createHash('sha256')
    .update(JSON.stringify(keys.map((k) => [k, fields[k]])))
    .digest('hex')
    .slice(0, 24);
}

type VectraModule = typeof import('vectra');
let vectraModule: Promise<VectraModule> | undefined;
/** vectra pulls in a lot (about 1.3 s to load here): load it only when the index is touched. */
function loadVectra(): Promise<VectraModule> {
  vectraModule ??= import('vectra');
  return vectraModule;
}

interface Snapshot {
  readonly stamp: string;
  readonly check: IndexCheck;
  readonly items: ReadonlyArray<IndexItem<IndexMetadata>>;
}

function sameVector(a: ReadonlyArray<number>, b: ReadonlyArray<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export class VectorIndex {
  private snapshot: Snapshot | undefined;
  /** The last check's answer, valid while neither the file nor the expected list changed. */
  private lastCheck: { stamp: string; expected: ReadonlyArray<IndexItemSpec>; result: IndexCheck } | undefined;
  private readonly storage = new AtomicFileStorage();

  constructor(readonly folder: string) {}

  get file(): string {
    return path.join(this.folder, INDEX_FILE);
  }

  private async stamp(): Promise<string> {
    try {
      const st = await fs.stat(this.file);
      return `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {
      return 'missing';
    }
  }

  private async open(): Promise<LocalIndex<IndexMetadata>> {
    const { LocalIndex } = await loadVectra();
    return new LocalIndex<IndexMetadata>(this.folder, INDEX_FILE, this.storage);
  }

  /** Reads index.json (through vectra) and validates its shape; cached while the file is unchanged. */
  async load(): Promise<Snapshot> {
    const stamp = await this.stamp();
    if (this.snapshot !== undefined && this.snapshot.stamp === stamp) return this.snapshot;
    let snapshot: Snapshot;
    if (stamp === 'missing') snapshot = { stamp, check: { health: 'missing', detail: `${INDEX_FILE} does not exist` }, items: [] };
    else {
      try {
        const index = await this.open();
        const items = await index.listItems();
        if (!Array.isArray(items)) throw new Error('items is not an array');
        const bad = items.findIndex((it) => !isValidItem(it));
        if (bad >= 0) {
          const it = items[bad] as Partial<IndexItem<Partial<IndexMetadata>>> | undefined;
          const wrongSchema = typeof it?.metadata?.schema === 'number' && it.metadata.schema !== INDEX_SCHEMA_VERSION;
          snapshot = {
            stamp,
            check: wrongSchema
              ? { health: 'schema', detail: `item ${bad} has schema ${String(it?.metadata?.schema)}, expected ${INDEX_SCHEMA_VERSION}` }
              : { health: 'corrupt', detail: `item ${bad} is malformed` },
            items: [],
          };
        } else snapshot = { stamp, check: { health: 'ok', itemCount: items.length }, items };
      } catch (err) {
        snapshot = { stamp, check: { health: 'corrupt', detail: `cannot read ${INDEX_FILE}: ${(err as Error).message}` }, items: [] };
      }
    }
    this.snapshot = snapshot;
    return snapshot;
  }

  /** Compares what is on disk with what the log says should be there. */
  async check(expected: ReadonlyArray<IndexItemSpec>): Promise<IndexCheck> {
    const snap = await this.load();
    if (this.lastCheck !== undefined && this.lastCheck.stamp === snap.stamp && this.lastCheck.expected === expected) return this.lastCheck.result;
    const result = this.compare(snap, expected);
    this.lastCheck = { stamp: snap.stamp, expected, result };
    return result;
  }

  private compare(snap: Snapshot, expected: ReadonlyArray<IndexItemSpec>): IndexCheck {
    if (snap.check.health !== 'ok') return snap.check;
    const items = snap.items;
    if (items.length !== expected.length) {
      return { health: 'stale', detail: `${items.length} items on disk, ${expected.length} expected from the log`, itemCount: items.length };
    }
    for (let i = 0; i < items.length; i++) {
      const have = items[i]!;
      const want = expected[i]!;
      if (have.id !== want.id || metadataSignature(have.metadata) !== want.metadata.sig || !sameVector(have.vector, want.vector)) {
        return { health: 'stale', detail: `item ${i} (${have.id}) differs from the log's ${want.id}`, itemCount: items.length };
      }
    }
    return { health: 'ok', itemCount: items.length };
  }

  /** Items as last loaded (call check() or load() first). */
  async items(): Promise<ReadonlyArray<IndexItem<IndexMetadata>>> {
    return (await this.load()).items;
  }

  /**
   * Writes exactly `expected`, in order. A readable index is updated in one vectra update
   * (one atomic file replace); an unreadable one is recreated from scratch.
   */
  async write(expected: ReadonlyArray<IndexItemSpec>, previous: IndexHealth): Promise<void> {
    this.snapshot = undefined;
    this.lastCheck = undefined;
    await this.writeItems(expected, previous);
    // What we just wrote is what is on disk: remember it instead of parsing the file again.
    const stamp = await this.stamp();
    const items = expected.map((s) => ({ id: s.id, metadata: s.metadata, vector: [...s.vector], norm: Math.hypot(...s.vector) }));
    this.snapshot = { stamp, check: { health: 'ok', itemCount: items.length }, items };
  }

  private async writeItems(expected: ReadonlyArray<IndexItemSpec>, previous: IndexHealth): Promise<void> {
    await fs.mkdir(this.folder, { recursive: true });
    await removeStaleTempFiles(this.folder);
    const toItem = (s: IndexItemSpec): Partial<IndexItem<IndexMetadata>> => ({ id: s.id, vector: [...s.vector], metadata: s.metadata });
    if (previous === 'stale' || previous === 'ok') {
      const index = await this.open();
      try {
        await index.beginUpdate();
        await index.deleteItems((await index.listItems()).map((i) => i.id));
        for (const s of expected) await index.insertItem(toItem(s));
        await index.endUpdate();
        return;
      } catch {
        index.cancelUpdate();
        // fall through to a full rebuild
      }
    }
    const index = await this.open();
    await index.createIndex({ version: 1, deleteIfExists: true });
    if (expected.length > 0) await index.batchInsertItems(expected.map(toItem));
  }

  /** Removes the index folder (reset). */
  async remove(): Promise<void> {
    this.snapshot = undefined;
    this.lastCheck = undefined;
    await fs.rm(this.folder, { recursive: true, force: true });
  }
}

function isValidItem(it: unknown): it is IndexItem<IndexMetadata> {
  if (typeof it !== 'object' || it === null) return false;
  const item = it as Partial<IndexItem<Partial<IndexMetadata>>>;
  if (typeof item.id !== 'string' || !Array.isArray(item.vector) || !item.vector.every((x) => typeof x === 'number' && Number.isFinite(x))) return false;
  const m = item.metadata;
  if (typeof m !== 'object' || m === null) return false;
  return m.schema === INDEX_SCHEMA_VERSION && typeof m.pairId === 'string' && typeof m.prompt === 'string' && typeof m.attributes === 'string' && typeof m.sig === 'string';
}
