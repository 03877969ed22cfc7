/**
 * Retrieval over the preference memory (Algorithm 2): which past prompts are nearest and what
 * that decides (top-1, vote, the overall profile below the similarity floor).
 *
 * The stored vectors are kept in one dimension-major Float64Array with their squared norms,
 * rebuilt only when the memory's content changes, so a query is one pass over the columns of its
 * non-zero dimensions with no per-item allocation. Similarities are computed exactly as the core's cosineSimilarity computes them
 * (same operations in the same order), so the ranking, ties (storage order) and zero vectors
 * (similar to nothing) are the core's, bit for bit; the decision itself is the core's
 * decideRetrieval.
 */
import {
  decideRetrieval,
  DimensionMismatchError,
  globalProfile,
  neighborCount,
  type MemoryItem,
  type Neighbor,
  type RetrievalOptions,
  type RetrievalResult,
} from '../core';
import type { PreferenceMemory } from '../storage';

interface LoadedIndex {
  readonly version: string;
  readonly items: MemoryItem[];
  readonly dims: number;
  /** Dimension-major: entry d * items.length + i is items[i]'s d-th component. */
  readonly components: Float64Array;
  readonly normsSquared: Float64Array;
  /** Scratch for one query's dot products (queries run one at a time: nearest() is synchronous). */
  readonly dots: Float64Array;
  readonly profiles: Map<number, string[]>;
}

export class PromptRetriever {
  private loaded: Promise<LoadedIndex> | undefined;

  constructor(private readonly memory: PreferenceMemory) {}

  /**
   * The attributes for a query vector. Below the floor the overall profile (the k attributes most
   * often selected) is used unless options.globalProfile gives one. Throws DimensionMismatchError
   * when the query's length differs from the stored vectors'.
   */
  async retrieve(query: ReadonlyArray<number>, options: RetrievalOptions = {}): Promise<RetrievalResult> {
    const index = await this.index();
    const neighbors = nearest(index, query, neighborCount(options));
    return decideRetrieval(neighbors, { ...options, globalProfile: options.globalProfile ?? profile(index, options.k ?? 3) });
  }

  /** The learned entries as the core's items, in storage order. */
  async items(): Promise<MemoryItem[]> {
    return (await this.index()).items;
  }

  private async index(): Promise<LoadedIndex> {
    const version = await this.memory.contentVersion();
    const current = this.loaded;
    if (current !== undefined) {
      const index = await current.catch(() => undefined);
      if (index?.version === version) return index;
    }
    const next = this.load(version);
    this.loaded = next;
    return next;
  }

  private async load(version: string): Promise<LoadedIndex> {
    const entries = await this.memory.indexEntries();
    const items: MemoryItem[] = entries.map((e) => ({ id: e.pairId, prompt: e.prompt, embedding: e.embedding, attributes: e.attributes }));
    const dims = items[0]?.embedding.length ?? 0;
    const n = items.length;
    const components = new Float64Array(n * dims);
    const normsSquared = new Float64Array(n);
    items.forEach((item, i) => {
      if (item.embedding.length !== dims) throw new DimensionMismatchError(dims, item.embedding.length);
      let nb = 0;
      for (let d = 0; d < dims; d++) {
        const y = item.embedding[d]!;
        components[d * n + i] = y;
        nb += y * y;
      }
      normsSquared[i] = nb;
    });
    return { version, items, dims, components, normsSquared, dots: new Float64Array(n), profiles: new Map() };
  }
}

function profile(index: LoadedIndex, k: number): string[] {
  let p = index.profiles.get(k);
  if (p === undefined) {
    p = globalProfile(index.items, k);
    index.profiles.set(k, p);
  }
  return p;
}

/** The m most similar items, most similar first, ties in storage order (nearestNeighbors' contract). */
function nearest(index: LoadedIndex, query: ReadonlyArray<number>, m: number): Neighbor[] {
  const n = index.items.length;
  if (n === 0) return [];
  const { dims, components, normsSquared, dots } = index;
  if (query.length !== dims) throw new DimensionMismatchError(dims, query.length);
  // Dot products dimension by dimension, each a contiguous pass over the items; only the query's
  // non-zero dimensions are visited (the local embedder's vectors are sparse). Every item's sum
  // still adds its terms in dimension order, and a skipped term is a zero, which leaves a sum
  // unchanged (x + 0 === x; the sums start at +0), so each dot product is bit-identical to the
  // core's loop over all dimensions.
  dots.fill(0);
  let na = 0;
  for (let d = 0; d < dims; d++) {
    const x = query[d]!;
    if (x === 0) continue;
    na += x * x;
    const column = d * n;
    for (let i = 0; i < n; i++) dots[i] = dots[i]! + x * components[column + i]!;
  }
  // The best m so far as parallel arrays, sorted by similarity descending then index ascending.
  const bestIndex = new Int32Array(Math.min(m, n));
  const bestSimilarity = new Float64Array(bestIndex.length);
  let count = 0;
  for (let i = 0; i < n; i++) {
    const dot = dots[i]!;
    const nb = normsSquared[i]!;
    const similarity = na === 0 || nb === 0 ? 0 : dot / Math.sqrt(na * nb);
    // Later items lose ties, so an item enters only when strictly more similar than the last kept.
    if (count === bestIndex.length && !(similarity > bestSimilarity[count - 1]!)) continue;
    let at = count < bestIndex.length ? count++ : count - 1;
    while (at > 0 && similarity > bestSimilarity[at - 1]!) {
      bestSimilarity[at] = bestSimilarity[at - 1]!;
      bestIndex[at] = bestIndex[at - 1]!;
      at--;
    }
    bestSimilarity[at] = similarity;
    bestIndex[at] = i;
  }
  return Array.from(bestIndex.subarray(0, count), (i, r) => {
    const item = index.items[i]!;
    return { id: item.id, prompt: item.prompt, similarity: bestSimilarity[r]!, attributes: item.attributes };
  });
}
