/**
 * Export and import of a preference memory: one JSON file with every pair, its selections (with
 * embeddings) and the user's attribute override.
 *
 * An import file is untrusted input (it may come from someone else): it is read with a size cap
 * (never more than IMPORT_LIMITS.maxBytes, whatever the file's size), a byte-order mark is
 * accepted, the number of pairs and selections is capped, every field is validated with the same
 * checks as the log (attribute names included) before anything is written, a duplicate id is
 * reported, and everything new is appended in one write that is undone when it fails.
 */
import { promises as fs } from 'node:fs';
import { createHash } from 'node:crypto';
import { writeFileAtomic } from './atomicFile';
import { modelKeyString, type PairEntry } from './memoryState';
import { now, toSelectionInfo, toStored, type PreferenceMemory, type SelectionInfo, type StoredPair } from './preferenceMemory';
import { checkAttributes, checkPairFields, checkSelectionFields, copySelectionContent, isValidId, LOG_SCHEMA_VERSION, Problems, type LogRecord, type SelectionRecord } from './records';

const EXPORT_FORMAT = 'exact-preferences';
const EXPORT_VERSION = 1;

/** What one import may hold. An export of 20,000 pairs with 2 selections of 768 dimensions each is about 1/3 of maxBytes. */
export interface ImportLimits {
  readonly maxBytes: number;
  readonly maxPairs: number;
  readonly maxSelectionsPerPair: number;
}

const IMPORT_LIMITS: ImportLimits = {
  maxBytes: 64 * 1024 * 1024,
  maxPairs: 20_000,
  maxSelectionsPerPair: 16,
};

export interface ExportedSelection extends SelectionInfo {
  readonly embedding: { readonly dims: number; readonly f64: string };
}

export interface ExportedPair extends StoredPair {
  readonly override: string[] | null;
  readonly selections: ExportedSelection[];
}

export interface ExportFile {
  readonly format: typeof EXPORT_FORMAT;
  readonly version: number;
  readonly exportedAt: string;
  readonly pairs: ExportedPair[];
}

export interface ImportOptions {
  /** Bring back pairs this workspace deleted (default false: a deletion wins). */
  readonly restoreDeleted?: boolean;
  /** Lower limits (tests); never higher than IMPORT_LIMITS. */
  readonly limits?: Partial<ImportLimits>;
}

export interface ImportSummary {
  readonly added: number;
  /** Same id and same texts already here. */
  readonly alreadyPresent: number;
  /** Same id but different texts: kept ours, skipped theirs. */
  readonly conflicts: string[];
  readonly skippedDeleted: number;
  readonly selectionsAdded: number;
  readonly overridesApplied: number;
  /** Ids that occur more than once in the file with the same texts: the first occurrence was used. */
  readonly duplicateIds: string[];
}

export class ImportValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(`The file is not a valid EXACT export:\n${problems.slice(0, 10).join('\n')}${problems.length > 10 ? `\n… and ${problems.length - 10} more` : ''}`);
    this.name = 'ImportValidationError';
  }
}

/** Content-derived id for imported pairs that come without one (re-importing does not duplicate). */
function contentId(prompt: string, chosen: string, rejected: string): string {
  return 'h' + createHash('sha256').update(`${prompt}\u0000${chosen}\u0000${rejected}`).digest('hex').slice(0, 31);
}

export async function exportData(memory: PreferenceMemory): Promise<ExportFile> {
  return memory.snapshot((state) => ({
    format: EXPORT_FORMAT,
    version: EXPORT_VERSION,
    exportedAt: now(),
    pairs: [...state.pairs.values()].map((e) => ({
      ...toStored(e.pair),
      override: e.override === undefined ? null : [...e.override.attributes],
      selections: [...e.selections.values()].map((s) => ({ ...toSelectionInfo(s), embedding: { ...s.embedding } })),
    })),
  }));
}

/** Writes exportData() to `file` atomically; returns what it wrote. */
export async function exportToFile(memory: PreferenceMemory, file: string): Promise<{ pairs: number; selections: number; bytes: number }> {
  const data = await exportData(memory);
  const text = JSON.stringify(data, null, 1) + '\n';
  await writeFileAtomic(file, text);
  return { pairs: data.pairs.length, selections: data.pairs.reduce((n, p) => n + p.selections.length, 0), bytes: Buffer.byteLength(text) };
}

function limitsOf(options: ImportOptions): ImportLimits {
  const o = options.limits ?? {};
  return {
    maxBytes: Math.min(IMPORT_LIMITS.maxBytes, o.maxBytes ?? Infinity),
    maxPairs: Math.min(IMPORT_LIMITS.maxPairs, o.maxPairs ?? Infinity),
    maxSelectionsPerPair: Math.min(IMPORT_LIMITS.maxSelectionsPerPair, o.maxSelectionsPerPair ?? Infinity),
  };
}

function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/** The file's text, read up to the size limit only (a larger file is refused without reading it), BOM removed. */
async function readImportFile(file: string, maxBytes: number = IMPORT_LIMITS.maxBytes): Promise<string> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (err) {
    throw new ImportValidationError([`${file}: ${(err as Error).message}`]);
  }
  try {
    const size = (await handle.stat()).size;
    const tooBig = (n: number): ImportValidationError =>
      new ImportValidationError([`${file}: the file is ${megabytes(n)}; an import may be at most ${megabytes(maxBytes)}. Export fewer choices, or split the file.`]);
    if (size > maxBytes) throw tooBig(size);
    // Read at most maxBytes + 1 (the file may grow while it is read).
    const buffer = Buffer.alloc(Math.min(maxBytes + 1, Math.max(size, 1) + 65_536));
    let length = 0;
    for (;;) {
      if (length === buffer.length) break;
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length);
      if (bytesRead === 0) break;
      length += bytesRead;
    }
    if (length > maxBytes) throw tooBig(length);
    const text = new TextDecoder('utf-8', { fatal: true }).decode(buffer.subarray(0, length));
    return text.startsWith('\uFEFF') ? text.slice(1) : text;
  } catch (err) {
    if (err instanceof ImportValidationError) throw err;
    throw new ImportValidationError([`${file}: ${(err as Error).message}`]);
  } finally {
    await handle.close();
  }
}

export async function importFromFile(memory: PreferenceMemory, file: string, options: ImportOptions = {}): Promise<ImportSummary> {
  const text = await readImportFile(file, limitsOf(options).maxBytes);
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ImportValidationError([`${file}: ${(err as Error).message}`]);
  }
  return importData(memory, data, options);
}

/**
 * Merges an export into the memory by pair id. The whole file is validated first; nothing is
 * written unless all of it is valid, and all new records are appended in one write.
 */
export async function importData(memory: PreferenceMemory, data: unknown, options: ImportOptions = {}): Promise<ImportSummary> {
  const { pairs, duplicateIds } = validateExport(data, limitsOf(options));
  return memory.appendPlanned((state, dimsFor) => {
    const records: LogRecord[] = [];
    const summary = { added: 0, alreadyPresent: 0, conflicts: [] as string[], skippedDeleted: 0, selectionsAdded: 0, overridesApplied: 0, duplicateIds };
    const dimsByEmbedding = new Map<string, number>();
    for (const p of pairs) {
      const local = state.pairs.get(p.id);
      let addSelectionsTo: PairEntry | undefined;
      let isNew = false;
      if (local !== undefined) {
        if (local.pair.prompt !== p.prompt || local.pair.chosen !== p.chosen || local.pair.rejected !== p.rejected) {
          summary.conflicts.push(p.id);
          continue;
        }
        summary.alreadyPresent++;
        addSelectionsTo = local;
      } else if (state.deleted.has(p.id) && options.restoreDeleted !== true) {
        summary.skippedDeleted++;
        continue;
      } else {
        isNew = true;
        summary.added++;
        records.push({ v: LOG_SCHEMA_VERSION, type: 'pair', id: p.id, prompt: p.prompt, chosen: p.chosen, rejected: p.rejected, source: p.source, createdAt: p.createdAt });
      }
      for (const s of p.selections) {
        const key = modelKeyString(s);
        if (addSelectionsTo?.selections.has(key) === true) continue;
        const dims = dimsByEmbedding.get(s.embeddingModel) ?? dimsFor(s.embeddingModel);
        if (dims !== undefined && dims !== s.embedding.dims) {
          throw new ImportValidationError([`pair ${p.id}: ${s.embeddingModel} embeddings have ${s.embedding.dims} dimensions here, ${dims} in this memory`]);
        }
        dimsByEmbedding.set(s.embeddingModel, s.embedding.dims);
        records.push({ v: LOG_SCHEMA_VERSION, type: 'selection', ...s, pairId: p.id });
        summary.selectionsAdded++;
      }
      if (p.override !== null && (isNew || addSelectionsTo?.override === undefined)) {
        records.push({ v: LOG_SCHEMA_VERSION, type: 'edit', pairId: p.id, attributes: p.override, createdAt: now() });
        summary.overridesApplied++;
      }
    }
    return { records, result: summary };
  });
}

export interface ValidPair extends StoredPair {
  readonly override: string[] | null;
  readonly selections: Array<Omit<SelectionRecord, 'v' | 'type'>>;
}

/** Validates an export file completely; throws ImportValidationError listing what is wrong. */
function validateExport(data: unknown, limits: ImportLimits = IMPORT_LIMITS): { pairs: ValidPair[]; duplicateIds: string[] } {
  const p = new Problems();
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ImportValidationError(['file: must be a JSON object']);
  const d = data as Record<string, unknown>;
  if (d.format !== EXPORT_FORMAT) p.add('format', `must be "${EXPORT_FORMAT}"`);
  if (typeof d.version !== 'number' || d.version > EXPORT_VERSION || d.version < 1) p.add('version', `must be 1..${EXPORT_VERSION}`);
  if (!Array.isArray(d.pairs)) p.add('pairs', 'must be an array');
  else if (d.pairs.length > limits.maxPairs) {
    p.add('pairs', `holds ${d.pairs.length.toLocaleString('en-US')} pairs; one import may hold at most ${limits.maxPairs.toLocaleString('en-US')}. Split the file.`);
  }
  if (!p.ok) throw new ImportValidationError(p.list);
  const out: ValidPair[] = [];
  const firstIndex = new Map<string, number>();
  const duplicateIds = new Set<string>();
  (d.pairs as unknown[]).forEach((raw, i) => {
    const at = `pairs[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return p.add(at, 'must be an object');
    const o = { ...(raw as Record<string, unknown>) };
    o.source ??= 'import';
    o.createdAt ??= now();
    if (o.id === undefined && typeof o.prompt === 'string' && typeof o.chosen === 'string' && typeof o.rejected === 'string') {
      o.id = contentId(o.prompt, o.chosen, o.rejected);
    }
    const before = p.list.length;
    checkPairFields(o, p, at);
    const override = o.override ?? null;
    if (override !== null) checkAttributes(override, p, `${at}.override`);
    const selections = o.selections ?? [];
    if (!Array.isArray(selections)) p.add(`${at}.selections`, 'must be an array');
    else if (selections.length > limits.maxSelectionsPerPair) p.add(`${at}.selections`, `has ${selections.length} selections; at most ${limits.maxSelectionsPerPair}`);
    else
      selections.forEach((s, j) => {
        if (typeof s !== 'object' || s === null) return p.add(`${at}.selections[${j}]`, 'must be an object');
        const sel = { ...(s as Record<string, unknown>), pairId: o.id };
        checkSelectionFields(sel, p, `${at}.selections[${j}]`);
      });
    if (p.list.length !== before || !isValidId(String(o.id))) return;
    const id = o.id as string;
    const first = firstIndex.get(id);
    if (first !== undefined) {
      const earlier = out.find((x) => x.id === id)!;
      if (earlier.prompt !== o.prompt || earlier.chosen !== o.chosen || earlier.rejected !== o.rejected) {
        p.add(at, `has the id ${id} of pairs[${first}] but other texts; give one of them another id`);
      } else duplicateIds.add(id);
      return;
    }
    firstIndex.set(id, i);
    out.push({
      id,
      prompt: o.prompt as string,
      chosen: o.chosen as string,
      rejected: o.rejected as string,
      source: o.source as string,
      createdAt: o.createdAt as string,
      override: override as string[] | null,
      selections: (selections as Array<Record<string, unknown>>).map((s) => {
        const x = s as unknown as SelectionInfo & { embedding: { dims: number; f64: string } };
        return {
          id: x.id,
          pairId: id,
          ...copySelectionContent(x),
          embedding: { dims: x.embedding.dims, f64: x.embedding.f64 },
        };
      }),
    });
  });
  if (!p.ok) throw new ImportValidationError(p.list);
  return { pairs: out, duplicateIds: [...duplicateIds] };
}
