/**
 * What the profile view explains: which attributes the user prefers overall and per topic,
 * and how well the learned attributes model held-out choices (C.5.2).
 */
import type { LogLikelihoodScorer } from './ports';
import { cosineSimilarity, type MemoryItem } from './memory';
import { attributeGain, type PairText } from './selection';

export interface AttributeCount {
  readonly attribute: string;
  readonly count: number;
  /** count / number of entries. */
  readonly share: number;
}

/** How often each attribute was selected, most frequent first; ties keep first appearance. */
export function attributeFrequencies(entries: ReadonlyArray<{ attributes: ReadonlyArray<string> }>): AttributeCount[] {
  const counts = new Map<string, number>();
  for (const e of entries) for (const a of new Set(e.attributes)) counts.set(a, (counts.get(a) ?? 0) + 1);
  const total = entries.length;
  return [...counts.entries()]
    .map(([attribute, count], order) => ({ attribute, count, order }))
    .sort((a, b) => b.count - a.count || a.order - b.order)
    .map(({ attribute, count }) => ({ attribute, count, share: total === 0 ? 0 : count / total }));
}

/** The k most frequent attributes: the user's global profile (used below the similarity floor). */
export function globalProfile(entries: ReadonlyArray<{ attributes: ReadonlyArray<string> }>, k: number): string[] {
  return attributeFrequencies(entries)
    .slice(0, k)
    .map((c) => c.attribute);
}

export interface TopicMode {
  /** The member closest to the cluster's centroid, as a readable label. */
  readonly label: string;
  readonly memberIds: string[];
  readonly attributes: AttributeCount[];
}

const DEFAULT_TOPIC_THRESHOLD = 0.5;

/**
 * Groups similar prompts ("topic modes") by single-pass leader clustering: each item joins the
 * cluster whose centroid it is most similar to, if at least `threshold`, else starts a new one.
 * Deterministic for a given order. Largest clusters first.
 */
export function topicModes(items: ReadonlyArray<MemoryItem>, threshold = DEFAULT_TOPIC_THRESHOLD): TopicMode[] {
  const clusters: { sum: number[]; members: MemoryItem[] }[] = [];
  for (const item of items) {
    let best = -1;
    let bestSim = -Infinity;
    clusters.forEach((c, i) => {
      const sim = cosineSimilarity(item.embedding, c.sum);
      if (sim > bestSim) {
        bestSim = sim;
        best = i;
      }
    });
    const unit = normalize(item.embedding);
    if (best >= 0 && bestSim >= threshold) {
      const c = clusters[best]!;
      unit.forEach((v, d) => (c.sum[d] = c.sum[d]! + v));
      c.members.push(item);
    } else clusters.push({ sum: unit, members: [item] });
  }
  return clusters
    .map((c, order) => ({ c, order }))
    .sort((a, b) => b.c.members.length - a.c.members.length || a.order - b.order)
    .map(({ c }) => {
      let label = c.members[0]!;
      let bestSim = -Infinity;
      for (const m of c.members) {
        const sim = cosineSimilarity(m.embedding, c.sum);
        if (sim > bestSim) {
          bestSim = sim;
          label = m;
        }
      }
      return { label: label.prompt, memberIds: c.members.map((m) => m.id), attributes: attributeFrequencies(c.members) };
    });
}

function normalize(v: ReadonlyArray<number>): number[] {
  const n = Math.sqrt(v.reduce((s, x) => s + x * x, 0));
  return n === 0 ? v.map(() => 0) : v.map((x) => x / n);
}

export interface AccuracyReport {
  /** Share of pairs whose injected attributes widened the gap relative to the base prompt. */
  readonly accuracy: number;
  readonly improved: number;
  /** Pairs whose injected attributes narrowed the gap. */
  readonly harmed: number;
  /** harmed / total. */
  readonly harmRate: number;
  readonly total: number;
  readonly gains: number[];
}

/**
 * Personalization-modeling accuracy (C.5.2): for each held-out pair, inject the attributes the
 * method chose for its prompt and count the pair as modelled when J(A) - J(empty set) > 0 (an
 * empty set widens nothing: gain 0), and as harmed when the gain is negative.
 */
export async function modelingAccuracy(
  scorer: LogLikelihoodScorer,
  pairs: ReadonlyArray<PairText>,
  attributesFor: (pair: PairText, index: number) => ReadonlyArray<string> | Promise<ReadonlyArray<string>>,
  signal?: AbortSignal,
): Promise<AccuracyReport> {
  const gains: number[] = [];
  for (let i = 0; i < pairs.length; i++) {
    const pair = pairs[i]!;
    const attributes = await attributesFor(pair, i);
    gains.push(attributes.length === 0 ? 0 : (await attributeGain(scorer, pair, attributes, signal)).gain);
  }
  const improved = gains.filter((g) => g > 0).length;
  const harmed = gains.filter((g) => g < 0).length;
  const total = pairs.length;
  return { accuracy: total === 0 ? 0 : improved / total, improved, harmed, harmRate: total === 0 ? 0 : harmed / total, total, gains };
}
