/**
 * The state the log describes, folded record by record (pure; no I/O). Later records win:
 * a tombstone removes a pair and everything attached to it, a pair record with a tombstoned id
 * revives it (with no selections), the latest selection per (model, embedding model) counts,
 * and the latest edit is the user's override.
 */
import type { DeleteRecord, EditRecord, HeaderRecord, LogRecord, PairRecord, SelectionRecord } from './records';

export interface ModelKey {
  /** The scoring model (as the engine names it). */
  readonly model: string;
  /** The embedder's id. */
  readonly embeddingModel: string;
}

export function modelKeyString(k: ModelKey): string {
  return `${k.model}\u0000${k.embeddingModel}`;
}

export interface PairEntry {
  readonly pair: PairRecord;
  override: { readonly attributes: ReadonlyArray<string>; readonly at: string } | undefined;
  /** Latest selection per model key. */
  readonly selections: Map<string, SelectionRecord>;
}

export class MemoryState {
  /** Live pairs in the order they were (last) recorded. */
  readonly pairs = new Map<string, PairEntry>();
  /** Tombstoned ids and when. */
  readonly deleted = new Map<string, string>();
  header: HeaderRecord | undefined;
  records = 0;
  duplicatePairRecords = 0;
  orphanRecords = 0;
  /** Bumped on every applied record; caches key on it. */
  version = 0;

  apply(record: LogRecord): void {
    this.records++;
    this.version++;
    switch (record.type) {
      case 'header':
        this.header ??= record;
        return;
      case 'pair':
        return this.applyPair(record);
      case 'selection':
        return this.applySelection(record);
      case 'delete':
        return this.applyDelete(record);
      case 'edit':
        return this.applyEdit(record);
    }
  }

  private applyPair(r: PairRecord): void {
    if (this.pairs.has(r.id)) {
      this.duplicatePairRecords++;
      return;
    }
    this.deleted.delete(r.id);
    this.pairs.set(r.id, { pair: r, override: undefined, selections: new Map() });
  }

  private applySelection(r: SelectionRecord): void {
    const entry = this.pairs.get(r.pairId);
    if (entry === undefined) {
      this.orphanRecords++;
      return;
    }
    const key = modelKeyString(r);
    entry.selections.delete(key); // keep insertion order = recency
    entry.selections.set(key, r);
  }

  private applyDelete(r: DeleteRecord): void {
    this.pairs.delete(r.pairId);
    this.deleted.set(r.pairId, r.createdAt);
  }

  private applyEdit(r: EditRecord): void {
    const entry = this.pairs.get(r.pairId);
    if (entry === undefined) {
      this.orphanRecords++;
      return;
    }
    entry.override = r.attributes === null ? undefined : { attributes: r.attributes, at: r.createdAt };
  }

  /** The selection for exactly these models, if any. */
  selectionFor(entry: PairEntry, models: ModelKey): SelectionRecord | undefined {
    return entry.selections.get(modelKeyString(models));
  }

  /**
   * What the index uses for a pair: the selection for the current models, else the most recent
   * one made with the current embedding model under another scoring model (stale but usable:
   * its vector lives in the same embedding space), else none.
   */
  usableSelection(entry: PairEntry, models: ModelKey): { selection: SelectionRecord; stale: boolean } | undefined {
    const exact = this.selectionFor(entry, models);
    if (exact !== undefined) return { selection: exact, stale: false };
    let latest: SelectionRecord | undefined;
    for (const s of entry.selections.values()) if (s.embeddingModel === models.embeddingModel) latest = s;
    return latest === undefined ? undefined : { selection: latest, stale: true };
  }
}
