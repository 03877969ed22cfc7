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
  type GeneratedText,
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
  /** Tokens the generation model's context holds (Ollama's num_ctx); prompt and output must fit. */
  readonly contextTokens?: number;
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

/** The prompt plus the room its answer needs does not fit the model's context. */
export class ContextTooSmallError extends Error {
  constructor(promptTokens: number, outputTokens: number, contextTokens: number) {
    super(
      `The text is about ${promptTokens.toLocaleString('en-US')} tokens and its answer needs room for up to ${outputTokens.toLocaleString('en-US')} more, ` +
        `but the model's context holds ${contextTokens.toLocaleString('en-US')} (setting "exact.ollama.contextLength"). ` +
        'Select a shorter passage, or raise the setting if the model supports a longer context.',
    );
    this.name = 'ContextTooSmallError';
  }
}

/** Tokens a text will take, erring high (about 3 characters a token; English prose averages about 4). */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 3);
}

/** Room a rewrite of `text` needs: as long as the original and half again, plus a little. */
export function rewriteTokenBudget(text: string): number {
  return Math.ceil(estimateTokens(text) * 1.5) + 64;
}

/** Characters of text before the cursor that fit the context next to a completion of `outputTokens`. */
export function completionContextChars(contextTokens: number, outputTokens: number, maxInputChars: number): number {
  return Math.max(0, Math.min(maxInputChars, (contextTokens - outputTokens - PROMPT_OVERHEAD_TOKENS) * 3));
}

/** Chat template, attribute block and instruction around the user's text. */
const PROMPT_OVERHEAD_TOKENS = 96;

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

/**
 * The text to insert after `before` for a generated continuation: trailing whitespace dropped,
 * and one space between words when neither side brings one (none before punctuation).
 * `firstLine` keeps only the first line (inline suggestions).
 */
export function continuationText(before: string, generated: string, firstLine = false): string {
  let text = generated.trimEnd();
  text = text.replace(/^\s+/u, /\s$/u.test(before) || before.length === 0 ? '' : ' ');
  if (firstLine) text = text.split('\n')[0] ?? '';
  if (text.trim().length === 0) return '';
  const needsSpace = before.length > 0 && !/\s$/u.test(before) && !/^[\s.,;:!?)\]}'"”’]/u.test(text);
  return needsSpace ? ` ${text}` : text;
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

  /** Throws ContextTooSmallError when `prompt` and `outputTokens` more cannot fit the model's context. */
  checkFits(prompt: string, outputTokens = this.settings.decoding.maxTokens ?? 0): void {
    const context = this.settings.contextTokens;
    if (context === undefined) return;
    const promptTokens = estimateTokens(prompt) + PROMPT_OVERHEAD_TOKENS;
    if (promptTokens + outputTokens > context) throw new ContextTooSmallError(promptTokens, outputTokens, context);
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

  /**
   * Algorithm 2, step 2: generate with the retrieved attributes injected. `maxTokens` raises the
   * token limit above the setting for this call (a rewrite must have room for all of its input).
   */
  async generate(prompt: string, onToken?: (t: string) => void, signal?: AbortSignal, maxTokens?: number): Promise<GeneratedText & { retrieval: Retrieval }> {
    this.checkInput(prompt, 'prompt');
    const decoding = maxTokens === undefined ? this.settings.decoding : { ...this.settings.decoding, maxTokens: Math.max(maxTokens, this.settings.decoding.maxTokens ?? 0) };
    this.checkFits(prompt, decoding.maxTokens);
    const retrieval = await this.retrieve(prompt, signal);
    const generated = await this.generator.generate(prompt, retrieval.attributes, decoding, onToken, signal);
    return { ...generated, retrieval };
  }

  /** Draft A uses the retrieved attributes; draft B explores a contrasting set, so the choice teaches something. */
  async planDrafts(prompt: string, signal?: AbortSignal, seed = Date.now()): Promise<DraftPlan[]> {
    this.checkInput(prompt, 'prompt');
    this.checkFits(prompt);
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

  generateDraft(prompt: string, plan: DraftPlan, onToken: (t: string) => void, signal?: AbortSignal): Promise<GeneratedText> {
    return this.generator.generate(prompt, plan.attributes, this.settings.decoding, onToken, signal);
  }

  /** Saves a choice durably (the log is fsynced before this resolves); the caller then kicks indexing. */
  async recordChoice(prompt: string, chosen: string, rejected: string, source = 'drafts'): Promise<StoredPair> {
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
