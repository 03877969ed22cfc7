/**
 * The online side of EXACT (Algorithm 2) and what the UI needs around it: retrieve attributes for
 * a prompt, generate personalized text, pick the two drafts' attribute sets, record a choice, and
 * summarise the profile. Editor-agnostic: the VS Code glue and the demo both drive it.
 */
import {
  attributeFrequencies,
  exploratoryAttributes,
  modelingAccuracy,
  retrieveAttributes,
  seededRandom,
  topicModes,
  type Embedder,
  type GenerationOptions,
  type LogLikelihoodScorer,
  type RetrievalMode,
  type RetrievalResult,
  type TextGenerator,
} from '../core';
import type { PreferenceMemory, StoredPair } from '../storage';

export interface PersonalizerSettings {
  readonly k: number;
  readonly retrievalMode: RetrievalMode;
  readonly neighbors: number;
  /** Below this best similarity the global profile is used (undefined: no floor). */
  readonly similarityFloor?: number;
  readonly decoding: GenerationOptions;
  /** Longest prompt or selection accepted, in characters. */
  readonly maxInputChars: number;
}

export interface Retrieval extends RetrievalResult {
  /** One sentence for the user: where the attributes came from. */
  readonly why: string;
}

export interface DraftPlan {
  readonly slot: 'A' | 'B';
  readonly attributes: string[];
  readonly why: string;
}

export class InputTooLargeError extends Error {
  constructor(length: number, max: number) {
    super(`The text is ${length.toLocaleString('en-US')} characters long; EXACT accepts at most ${max.toLocaleString('en-US')} (setting "exact.maxInputCharacters"). Select a shorter passage.`);
    this.name = 'InputTooLargeError';
  }
}

export class EmptyInputError extends Error {
  constructor(what: string) {
    super(`There is no ${what}: select some text or place the cursor in a paragraph, then try again.`);
    this.name = 'EmptyInputError';
  }
}

/** The user prompt x for a rewrite of `text`, with an optional instruction. */
export function rewritePrompt(text: string, instruction?: string): string {
  const how = instruction?.trim() ? ` (${instruction.trim()})` : '';
  return `Rewrite the following text${how}. Reply with the rewritten text only.\n\n${text}`;
}

/** The user prompt x for continuing `before` at the cursor. */
export function completionPrompt(before: string): string {
  return `Continue the following text. Reply with the continuation only.\n\n${before}`;
}

function quote(s: string, n = 60): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return `“${one.length > n ? `${one.slice(0, n - 1)}…` : one}”`;
}

export function explainRetrieval(r: RetrievalResult): string {
  const best = r.neighbors[0];
  switch (r.source) {
    case 'nearest':
      return `From your most similar past prompt ${quote(best!.prompt)} (similarity ${best!.similarity.toFixed(2)}).`;
    case 'vote':
      return `Voted by your ${r.neighbors.length} most similar past prompts, nearest ${quote(best!.prompt)} (similarity ${best!.similarity.toFixed(2)}).`;
    case 'global':
      return best === undefined
        ? 'Your overall profile (no past prompt to compare with).'
        : `Your overall profile: no past prompt is similar enough (best ${best.similarity.toFixed(2)}).`;
    case 'none':
      return 'No preferences learned yet: choose between drafts to teach EXACT your style.';
  }
}

export class Personalizer {
  constructor(
    private readonly memory: PreferenceMemory,
    private readonly embedder: Embedder,
    private readonly generator: TextGenerator,
    private settings: PersonalizerSettings,
    private readonly library: () => ReadonlyArray<string>,
  ) {}

  updateSettings(settings: PersonalizerSettings): void {
    this.settings = settings;
  }

  checkInput(text: string, what: string): string {
    if (text.trim().length === 0) throw new EmptyInputError(what);
    if (text.length > this.settings.maxInputChars) throw new InputTooLargeError(text.length, this.settings.maxInputChars);
    return text;
  }

  /** Algorithm 2, step 1: embed the prompt and retrieve attributes from the memory. */
  async retrieve(prompt: string, signal?: AbortSignal): Promise<Retrieval> {
    const [query] = await this.embedder.embed([prompt], signal);
    const s = this.settings;
    const r = await this.memory.retrieve(query!, {
      mode: s.retrievalMode,
      m: s.neighbors,
      k: s.k,
      ...(s.similarityFloor !== undefined ? { similarityFloor: s.similarityFloor } : {}),
    });
    return { ...r, why: explainRetrieval(r) };
  }

  /** Algorithm 2, step 2: generate with the retrieved attributes injected. */
  async generate(prompt: string, onToken?: (t: string) => void, signal?: AbortSignal): Promise<{ text: string; retrieval: Retrieval }> {
    this.checkInput(prompt, 'prompt');
    const retrieval = await this.retrieve(prompt, signal);
    const text = await this.generator.generate(prompt, retrieval.attributes, this.settings.decoding, onToken, signal);
    return { text, retrieval };
  }

  /** Draft A uses the retrieved attributes; draft B explores a contrasting set, so the choice teaches something. */
  async planDrafts(prompt: string, signal?: AbortSignal, seed = Date.now()): Promise<DraftPlan[]> {
    this.checkInput(prompt, 'prompt');
    const retrieval = await this.retrieve(prompt, signal);
    const shown = new Map(attributeFrequencies(await this.memory.memoryItems()).map((f) => [f.attribute, f.count]));
    const random = seededRandom(seed);
    const k = this.settings.k;
    const first = retrieval.attributes.length > 0 ? retrieval.attributes : exploratoryAttributes([], this.library(), k, random, shown);
    const second = exploratoryAttributes(first, this.library(), k, random, shown);
    return [
      { slot: 'A', attributes: first, why: retrieval.attributes.length > 0 ? retrieval.why : `Exploring: ${retrieval.why}` },
      { slot: 'B', attributes: second, why: 'Exploring a contrasting style, so your choice teaches EXACT something.' },
    ];
  }

  generateDraft(prompt: string, plan: DraftPlan, onToken: (t: string) => void, signal?: AbortSignal): Promise<string> {
    return this.generator.generate(prompt, plan.attributes, this.settings.decoding, onToken, signal);
  }

  /** Saves a choice durably (the log is fsynced before this resolves); the caller then kicks indexing. */
  recordChoice(prompt: string, chosen: string, rejected: string, source = 'drafts'): Promise<StoredPair> {
    this.checkInput(prompt, 'prompt');
    if (chosen.trim() === rejected.trim()) throw new Error('The preferred and the rejected drafts are identical, so the choice teaches nothing. Edit one or skip.');
    return this.memory.recordPair({ prompt, chosen, rejected, source });
  }

  /** Frequencies and topic modes over the indexed entries. */
  async profileSummary(topicThreshold?: number) {
    const items = await this.memory.memoryItems();
    return { frequencies: attributeFrequencies(items), modes: topicModes(items, topicThreshold), items };
  }

  /**
   * C.5.2 modeling accuracy, leave-one-out over the learned pairs: each pair's attributes are
   * retrieved from the others, and it counts when they widen its preferred-vs-rejected gap.
   */
  async leaveOneOutAccuracy(scorer: LogLikelihoodScorer, signal?: AbortSignal) {
    const entries = await this.memory.indexEntries();
    const items = await this.memory.memoryItems();
    const pairs = await this.memory.listPairs();
    const byId = new Map(pairs.map((p) => [p.id, p]));
    const held = entries.filter((e) => byId.has(e.pairId));
    const s = this.settings;
    return modelingAccuracy(
      scorer,
      held.map((e) => byId.get(e.pairId)!),
      (_pair, i) =>
        retrieveAttributes(
          held[i]!.embedding,
          items.filter((it) => it.id !== held[i]!.pairId),
          { mode: s.retrievalMode, m: s.neighbors, k: s.k },
        ).attributes,
      signal,
    );
  }
}
