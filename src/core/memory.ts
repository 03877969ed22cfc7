/**
 * From per-pair selections to the prompt -> attributes index (Section 4.1), and retrieval
 * over it at inference time (Section 4.2, Algorithm 2) with our top-m vote and similarity floor.
 */

/** The outcome of attribute selection for one recorded preference pair. */
export interface PairSelection {
  readonly pairId: string;
  readonly prompt: string;
  readonly attributes: ReadonlyArray<string>;
  readonly objective: number;
  readonly gain: number;
}

export interface IndexEntry extends PairSelection {
  /** Other pairs with the same prompt whose selections lost to this one. */
  readonly duplicatePairIds: ReadonlyArray<string>;
}

export const DEFAULT_MIN_GAIN = 0;

/**
 * Drops pairs whose attributes do not widen the gap by more than minGain (default 0). A
 * selection with no attributes stays: it records a choice that nothing in the library explains
 * (selection stopped at chance level), and retrieval that lands on it injects nothing.
 */
export function filterLowGain<T extends PairSelection>(selections: ReadonlyArray<T>, minGain = DEFAULT_MIN_GAIN): T[] {
  return selections.filter((s) => s.attributes.length === 0 || s.gain > minGain);
}

/**
 * Prompt-level deduplication: one entry per distinct prompt, keeping the selection with the
 * largest objective (the earliest on ties). Output order follows first appearance.
 */
export function deduplicateByPrompt(selections: ReadonlyArray<PairSelection>): IndexEntry[] {
  const byPrompt = new Map<string, { best: PairSelection; ids: string[] }>();
  for (const s of selections) {
    const seen = byPrompt.get(s.prompt);
    if (seen === undefined) byPrompt.set(s.prompt, { best: s, ids: [s.pairId] });
    else {
      seen.ids.push(s.pairId);
      if (s.objective > seen.best.objective) seen.best = s;
    }
  }
  return [...byPrompt.values()].map(({ best, ids }) => ({
    ...best,
    duplicatePairIds: ids.filter((id) => id !== best.pairId),
  }));
}

/** The offline index as the paper builds it: filter low-gain pairs, then deduplicate by prompt. */
export function buildIndexEntries(selections: ReadonlyArray<PairSelection>, minGain = DEFAULT_MIN_GAIN): IndexEntry[] {
  return deduplicateByPrompt(filterLowGain(selections, minGain));
}

export class DimensionMismatchError extends Error {
  constructor(expected: number, got: number) {
    super(
      `Embedding has ${got} dimensions but the stored ones have ${expected}. ` +
        'The embedding model probably changed: re-index your preferences to use the new model.',
    );
    this.name = 'DimensionMismatchError';
  }
}

/** Cosine similarity; a zero vector is similar to nothing (0), never NaN. */
export function cosineSimilarity(a: ReadonlyArray<number>, b: ReadonlyArray<number>): number {
  if (a.length !== b.length) throw new DimensionMismatchError(b.length, a.length);
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  if (na === 0 || nb === 0) return 0;
  return dot / Math.sqrt(na * nb);
}

export interface MemoryItem {
  readonly id: string;
  readonly prompt: string;
  readonly embedding: ReadonlyArray<number>;
  /** Empty: a choice nothing explains. */
  readonly attributes: ReadonlyArray<string>;
  /** J(A) - J(empty set) of the entry's selection, when known. */
  readonly gain?: number;
}

export interface Neighbor {
  readonly id: string;
  readonly prompt: string;
  readonly similarity: number;
  readonly attributes: ReadonlyArray<string>;
  readonly gain?: number;
}

/** The m most similar items, most similar first; ties keep storage order. */
export function nearestNeighbors(query: ReadonlyArray<number>, items: ReadonlyArray<MemoryItem>, m: number): Neighbor[] {
  const scored = items.map((item, order) => ({ item, order, similarity: cosineSimilarity(query, item.embedding) }));
  scored.sort((a, b) => b.similarity - a.similarity || a.order - b.order);
  return scored.slice(0, Math.max(0, m)).map(({ item, similarity }) => ({
    id: item.id,
    prompt: item.prompt,
    similarity,
    attributes: item.attributes,
    ...(item.gain !== undefined ? { gain: item.gain } : {}),
  }));
}

export type RetrievalMode = 'top1' | 'vote';

export interface RetrievalOptions {
  /** 'top1' is the paper's Algorithm 2; 'vote' is a similarity-weighted vote over the top m. */
  readonly mode?: RetrievalMode;
  /** Neighbours in a vote (default 5). */
  readonly m?: number;
  /** Attributes returned by a vote (default 3). */
  readonly k?: number;
  /** Below this best similarity the global profile is used instead (default: no floor). */
  readonly similarityFloor?: number;
  /** The user's overall preferred attributes, used below the floor. */
  readonly globalProfile?: ReadonlyArray<string>;
}

export interface RetrievalResult {
  readonly attributes: string[];
  /** Where the attributes came from, for the "why" shown to the user. */
  readonly source: 'nearest' | 'vote' | 'global' | 'none';
  readonly neighbors: Neighbor[];
}

export function retrieveAttributes(
  query: ReadonlyArray<number>,
  items: ReadonlyArray<MemoryItem>,
  options: RetrievalOptions = {},
): RetrievalResult {
  return decideRetrieval(nearestNeighbors(query, items, neighborCount(options)), options);
}

/** How many neighbours a retrieval looks at: 1 for top-1, m for a vote. */
export function neighborCount(options: RetrievalOptions): number {
  return (options.mode ?? 'top1') === 'top1' ? 1 : Math.max(1, options.m ?? 5);
}

/**
 * Algorithm 2's decision given the nearest neighbours (most similar first, as nearestNeighbors
 * returns them): the nearest one's attributes, a vote, or the global profile below the floor.
 */
export function decideRetrieval(neighbors: Neighbor[], options: RetrievalOptions = {}): RetrievalResult {
  const mode = options.mode ?? 'top1';
  const best = neighbors[0];
  const global = [...(options.globalProfile ?? [])];
  if (best === undefined) return { attributes: global, source: global.length > 0 ? 'global' : 'none', neighbors };
  if (options.similarityFloor !== undefined && best.similarity < options.similarityFloor) {
    return { attributes: global, source: global.length > 0 ? 'global' : 'none', neighbors };
  }
  if (mode === 'top1') return { attributes: [...best.attributes], source: 'nearest', neighbors };
  return { attributes: voteAttributes(neighbors, options.k ?? 3), source: 'vote', neighbors };
}

/**
 * Each neighbour votes for its attributes with weight max(similarity, 0); the k attributes with
 * the most weight win, ties going to the one seen first (nearest neighbour, then its order).
 */
export function voteAttributes(neighbors: ReadonlyArray<Neighbor>, k: number): string[] {
  const weight = new Map<string, number>();
  for (const n of neighbors) {
    for (const a of n.attributes) weight.set(a, (weight.get(a) ?? 0) + Math.max(n.similarity, 0));
  }
  const firstSeen = [...weight.keys()];
  return firstSeen
    .map((a, order) => ({ a, order, w: weight.get(a)! }))
    .filter((x) => x.w > 0)
    .sort((x, y) => y.w - x.w || x.order - y.order)
    .slice(0, k)
    .map((x) => x.a);
}
