/**
 * The local fallback embedder: used when no Ollama embedding model is configured or it is not
 * installed, so retrieval still works offline.
 *
 * Method (deterministic, no model, no network):
 *  1. Normalise: Unicode NFKC, lower case; words are runs of letters, marks and digits.
 *  2. Features, each hashed (FNV-1a, 32 bit) into one of `dimension` buckets with a sign taken
 *     from a second hash bit (the "hashing trick" with signed buckets, so collisions cancel on
 *     average instead of piling up):
 *       - word unigrams, weight 1 (0.15 for a short list of English function words and 0.3 for
 *         the instruction verbs that open most requests, "write", "explain", …, so that
 *         "how do I write …" does not dominate what the prompt is about);
 *       - bigrams of consecutive content words (function words skipped), weight 0.5;
 *       - character 3- and 4-grams of each content word padded with '<' and '>', weight 0.5
 *         shared by the word's n-grams (spelling variants and inflections still overlap:
 *         "email" / "emails").
 *     A feature's value is the square root of its summed weight: its share of the squared norm
 *     is its weight, and repetitions grow sub-linearly.
 *  3. L2-normalise. An empty or feature-less text gives the zero vector (cosine 0 to everything).
 *
 * The stored vectors use fixed weights. At retrieval, embedInCorpus multiplies each feature by
 * its inverse document frequency over the user's own learned prompts (TermWeights), so openers
 * and thanks that every prompt shares count for less than the words that tell prompts apart.
 *
 * It separates topics by shared vocabulary, not by meaning: synonyms without shared words or
 * stems look unrelated. The id names the method and dimension, so vectors from it are never
 * compared with vectors from a real embedding model.
 */
import { throwIfAborted, type Embedder } from '../core/ports';

export const LOCAL_EMBEDDER_DIMENSION = 512;

const STOPWORDS = new Set(
  (
    'a an the and or but if then else of to in on at by for with from into onto about as is are was were be been being ' +
    'am do does did doing have has had having i me my mine we us our you your yours he him his she her it its they them ' +
    'their this that these those there here what which who whom whose when where why how can could should would will ' +
    'shall may might must not no nor so than too very just also please some any all each more most other such own same ' +
    'up down out over under again further once only both few s t don now'
  ).split(' '),
);

/** Verbs that start most requests to a writing assistant: they say little about the topic. */
const INSTRUCTION_WORDS = new Set(
  (
    'write rewrite draft compose create make generate give tell explain describe summarize summarise list help ' +
    'provide produce answer respond reply improve edit fix turn convert translate short long brief quick'
  ).split(' '),
);

function fnv1a(text: string, seed = 0x811c9dc5): number {
  let h = seed >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // final avalanche (murmur3 fmix32) so nearby strings spread over the buckets
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  return h >>> 0;
}

function tokenizeWords(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().match(/[\p{L}\p{M}\p{N}]+(?:['’][\p{L}]+)?/gu) ?? [];
}

/** Weighted features of a text (exported for tests and explanation). */
function textFeatures(text: string): Map<string, number> {
  const counts = new Map<string, number>();
  const add = (key: string, w: number): void => {
    counts.set(key, (counts.get(key) ?? 0) + w);
  };
  const words = tokenizeWords(text);
  let previousContent: string | undefined;
  for (const w of words) {
    const stop = STOPWORDS.has(w);
    const weight = stop ? 0.15 : INSTRUCTION_WORDS.has(w) ? 0.3 : 1;
    add(`w:${w}`, weight);
    if (stop) continue;
    if (previousContent !== undefined) add(`b:${previousContent} ${w}`, 0.5 * Math.min(weight, 1));
    previousContent = w;
    if (w.length >= 3) {
      const padded = `<${w}>`;
      const grams: string[] = [];
      for (const n of [3, 4]) for (let j = 0; j + n <= padded.length; j++) grams.push(padded.slice(j, j + n));
      const each = (0.5 * weight) / grams.length;
      for (const g of grams) add(`c:${g}`, each);
    }
  }
  return counts;
}

/**
 * Term weights learned from a corpus of the user's own prompts: a feature's inverse document
 * frequency, ln((N + 1) / (df + 1)) + 1 (smoothed, never below 1 for an unseen feature). Words
 * every prompt shares ("how do I", "thanks") sink towards 1 while the words that tell prompts
 * apart keep up to 1 + ln(N + 1) times their weight.
 */
export class TermWeights {
  private readonly documentFrequency = new Map<string, number>();
  readonly documents: number;

  constructor(corpus: ReadonlyArray<string>) {
    this.documents = corpus.length;
    for (const text of corpus) for (const f of textFeatures(text).keys()) this.documentFrequency.set(f, (this.documentFrequency.get(f) ?? 0) + 1);
  }

  weight(feature: string): number {
    return Math.log((this.documents + 1) / ((this.documentFrequency.get(feature) ?? 0) + 1)) + 1;
  }
}

export function hashEmbed(text: string, dimension = LOCAL_EMBEDDER_DIMENSION, terms?: TermWeights): number[] {
  const v = new Float64Array(dimension);
  for (const [feature, weight] of textFeatures(text)) {
    const h = fnv1a(feature);
    const bucket = h % dimension;
    const sign = (fnv1a(feature, 0x9747b28c) & 1) === 0 ? 1 : -1;
    v[bucket]! += sign * Math.sqrt(weight) * (terms?.weight(feature) ?? 1);
  }
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm);
  return Array.from(v, (x) => (norm > 0 ? x / norm : 0));
}

export class LocalHashEmbedder implements Embedder {
  readonly id: string;

  constructor(readonly dimension = LOCAL_EMBEDDER_DIMENSION) {
    this.id = `local-hash-v1-${dimension}`;
  }

  /** Term weights learned from the corpus (see TermWeights); the stored vectors do not use them. */
  async embedInCorpus(texts: ReadonlyArray<string>, corpus: ReadonlyArray<string>, signal?: AbortSignal): Promise<number[][]> {
    const terms = new TermWeights(corpus);
    const out: number[][] = [];
    for (const t of texts) {
      throwIfAborted(signal);
      out.push(hashEmbed(t, this.dimension, terms));
    }
    return out;
  }

  async embed(texts: ReadonlyArray<string>, signal?: AbortSignal): Promise<number[][]> {
    const out: number[][] = [];
    for (const t of texts) {
      throwIfAborted(signal);
      out.push(hashEmbed(t, this.dimension));
    }
    return out;
  }
}
