/**
 * The online side of EXACT (Algorithm 2) and what the UI needs around it: retrieve attributes for
 * a prompt, generate personalized text, pick the two drafts' attribute sets, record a choice, and
 * summarise the profile. Editor-agnostic: the VS Code glue and the demo both drive it.
 */
import {
  attributeFrequencies,
  decideInjection,
  globalProfile,
  exploratoryAttributes,
  modelingAccuracy,
  retrieveAttributes,
  type AbstentionOptions,
  type AbstentionReason,
  type InjectionDecision,
  type MemoryItem,
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
import { PromptRetriever } from './retrieval';

/** The paper's top-1, a top-m vote, or retrieval that can abstain (core/abstention.ts). */
export type PersonalizerRetrievalMode = RetrievalMode | 'abstain';

export interface PersonalizerSettings {
  readonly k: number;
  readonly retrievalMode: PersonalizerRetrievalMode;
  /** Thresholds of the 'abstain' mode (core defaults where absent). */
  readonly abstention?: AbstentionOptions;
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
  /** Why the nearest prompt's attributes were not used ('abstain' mode). */
  readonly reason?: AbstentionReason;
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

/**
 * Tokens a text will take, erring high: 3 ASCII characters a token (English prose averages about
 * 4) and a token for every other character (CJK text runs near one token a character).
 */
export function estimateTokens(text: string): number {
  let ascii = 0;
  let other = 0;
  for (const ch of text) {
    if (isAscii(ch)) ascii++;
    else other++;
  }
  return tokensFor(ascii, other);
}

const isAscii = (ch: string): boolean => ch.charCodeAt(0) < 0x80;
const tokensFor = (ascii: number, other: number): number => Math.ceil(ascii / 3) + other;

/** Chat template, instruction line and an attribute block of k names of up to 40 characters. */
function promptOverheadTokens(k: number): number {
  return 64 + 14 * Math.max(0, k);
}

/** Room a rewrite of `text` needs: as long as the original and half again, plus a little. */
export function rewriteTokenBudget(text: string): number {
  return Math.ceil(estimateTokens(text) * 1.5) + 64;
}

/**
 * The end of `text` that fits in `maxTokens` estimated tokens and `maxChars` characters (whole
 * characters; what a completion continues when the text before the cursor is long).
 */
export function fittingTail(text: string, maxTokens: number, maxChars: number): string {
  let start = text.length;
  let ascii = 0;
  let other = 0;
  while (start > 0) {
    let from = start - 1;
    // Step over a surrogate pair as one character.
    if (from > 0 && /[\udc00-\udfff]/u.test(text[from]!) && /[\ud800-\udbff]/u.test(text[from - 1]!)) from--;
    const ascii1 = isAscii(text[from]!);
    if (tokensFor(ascii + (ascii1 ? 1 : 0), other + (ascii1 ? 0 : 1)) > maxTokens || text.length - from > maxChars) break;
    if (ascii1) ascii++;
    else other++;
    start = from;
  }
  return text.slice(start);
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

const COMPLETION_INSTRUCTION = 'Continue the following text. Reply with the continuation only.\n\n';

/** The user prompt x for continuing `before` at the cursor. */
export function completionPrompt(before: string): string {
  return `${COMPLETION_INSTRUCTION}${before}`;
}

/**
 * The text to insert after `before` for a generated continuation: trailing whitespace dropped,
 * and one space between words when neither side brings one (none before punctuation).
 * `firstLine` keeps only the first line (inline suggestions).
 */
export function continuationText(before: string, generated: string, firstLine = false): string {
  let text = generated.trimEnd();
  const atBreak = /\s$/u.test(before) || before.length === 0;
  // A continuation that opens a new paragraph keeps its line breaks, except in a one-line suggestion.
  text = text.replace(/^\s+/u, (lead) => (atBreak ? '' : !firstLine && lead.includes('\n') ? lead.replace(/[ \t]+$/u, '') : ' '));
  if (firstLine) text = text.split(/\r?\n/u)[0] ?? '';
  if (text.trim().length === 0) return '';
  const needsSpace = before.length > 0 && !/\s$/u.test(before) && !/^[\s.,;:!?)\]}'"”’]/u.test(text);
  return needsSpace ? ` ${text}` : text;
}

function quote(s: string, n = 60): string {
  const one = s.replace(/\s+/g, ' ').trim();
  return `“${one.length > n ? `${one.slice(0, n - 1)}…` : one}”`;
}

function explainRetrieval(r: RetrievalResult): string {
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

/** The user-facing sentence for an abstaining retrieval: what was injected, and why. */
function explainDecision(d: InjectionDecision): string {
  const best = d.neighbors[0];
  const nearest = best === undefined ? '' : ` ${quote(best.prompt)} (similarity ${best.similarity.toFixed(2)})`;
  const because: Record<AbstentionReason, string> = {
    'no-entries': 'there is no learned prompt to compare with yet',
    dissimilar: `no past prompt is similar enough (best${nearest})`,
    disagree: `your most similar past prompts disagree about the style (nearest${nearest})`,
    weak: `the attributes of your most similar past prompt${nearest} barely explained your choice there`,
    unexplained: `no attribute explained your choice on your most similar past prompt${nearest}`,
  };
  if (d.source === 'nearest') return `From your most similar past prompt${nearest}.`;
  const why = because[d.reason ?? 'no-entries'];
  if (d.source === 'profile') return `Your overall profile's most consistent attributes, because ${why}.`;
  if (d.reason === 'unexplained') return `No attributes: ${why}, so the prompt is sent as it is.`;
  if (d.reason === 'no-entries') return 'No preferences learned yet: choose between drafts to teach EXACT your style.';
  return `No attributes: ${why}, and no attribute is in most of your learned choices, so the prompt is sent as it is.`;
}

export interface GenerateOptions {
  readonly onToken?: (text: string) => void;
  readonly signal?: AbortSignal;
  /** Raises the token limit for this call. */
  readonly maxTokens?: number;
  /** Attributes already retrieved for this prompt (saves embedding it again). */
  readonly retrieval?: Retrieval;
}

export class Personalizer {
  private readonly retriever: PromptRetriever;

  constructor(
    private readonly memory: PreferenceMemory,
    private readonly embedder: Embedder,
    private readonly generator: TextGenerator,
    private settings: PersonalizerSettings,
    private readonly library: () => ReadonlyArray<string>,
  ) {
    this.retriever = new PromptRetriever(memory);
  }

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
    const promptTokens = estimateTokens(prompt) + promptOverheadTokens(this.settings.k);
    if (promptTokens + outputTokens > context) throw new ContextTooSmallError(promptTokens, outputTokens, context);
  }

  /**
   * Checks a generation request before anything is sent: the input, and that it fits the context
   * with room for `maxTokens` (which may raise the setting for this call, never lower it).
   * Returns the token limit the generation will use.
   */
  checkRequest(prompt: string, maxTokens?: number): number {
    this.checkInput(prompt, 'prompt');
    const limit = Math.max(maxTokens ?? 0, this.settings.decoding.maxTokens ?? 0);
    this.checkFits(prompt, limit);
    return limit;
  }

  /**
   * The end of `before` that a completion prompt can carry next to its answer (the most recent
   * text is what a continuation needs); throws ContextTooSmallError when not even a little fits.
   */
  completionContext(before: string, maxChars = this.settings.maxInputChars): string {
    const output = this.settings.decoding.maxTokens ?? 0;
    const fixed = promptOverheadTokens(this.settings.k) + estimateTokens(COMPLETION_INSTRUCTION);
    const room = (this.settings.contextTokens ?? Number.MAX_SAFE_INTEGER) - output - fixed;
    if (room < 16) throw new ContextTooSmallError(fixed, output, this.settings.contextTokens ?? 0);
    return fittingTail(before, room, Math.max(0, Math.min(maxChars, this.settings.maxInputChars - COMPLETION_INSTRUCTION.length)));
  }

  /** Algorithm 2, step 1: embed the prompt and retrieve attributes from the memory. */
  async retrieve(prompt: string, signal?: AbortSignal): Promise<Retrieval> {
    const s = this.settings;
    if (s.retrievalMode === 'abstain') {
      const { query, items } = await this.comparable(prompt, await this.memory.memoryItems(), signal);
      return this.decide(query, items);
    }
    const [query] = await this.embedder.embed([prompt], signal);
    const r = await this.retriever.retrieve(query!, {
      mode: s.retrievalMode,
      m: s.neighbors,
      k: s.k,
      ...(s.similarityFloor !== undefined ? { similarityFloor: s.similarityFloor } : {}),
    });
    return { ...r, why: explainRetrieval(r) };
  }

  /**
   * Algorithm 2, step 2: generate with the retrieved attributes injected (retrieving them first
   * unless `retrieval` is given). `maxTokens` raises the token limit above the setting for this
   * call (a rewrite must have room for all of its input).
   */
  async generate(prompt: string, options: GenerateOptions = {}): Promise<GeneratedText & { retrieval: Retrieval; maxTokens: number }> {
    const maxTokens = this.checkRequest(prompt, options.maxTokens);
    const retrieval = options.retrieval ?? (await this.retrieve(prompt, options.signal));
    const generated = await this.write(prompt, retrieval.attributes, maxTokens, options.onToken, options.signal);
    return { ...generated, retrieval, maxTokens };
  }

  /** The one place text is generated: the attributes injected, the decoding settings, the token limit. */
  private write(prompt: string, attributes: ReadonlyArray<string>, maxTokens: number, onToken?: (t: string) => void, signal?: AbortSignal): Promise<GeneratedText> {
    // 0: no limit set here, so the generator's own default applies.
    return this.generator.generate(prompt, attributes, { ...this.settings.decoding, ...(maxTokens > 0 ? { maxTokens } : {}) }, onToken, signal);
  }

  private decide(query: ReadonlyArray<number>, items: ReadonlyArray<MemoryItem>): Retrieval {
    const d = decideInjection(query, items, { ...this.settings.abstention, k: this.settings.k });
    const source = d.source === 'profile' ? 'global' : d.source;
    return { attributes: d.attributes, source, neighbors: d.neighbors, why: explainDecision(d), ...(d.reason !== undefined ? { reason: d.reason } : {}) };
  }

  private corpusCache: { key: string; vectors: number[][] } | undefined;

  /**
   * The query's vector and the items with vectors it can be compared with. An embedder that
   * learns from the user's prompts (embedInCorpus) re-embeds the stored prompts with what it
   * learned from them (memoized until the entries change); others use the stored vectors.
   */
  private async comparable(prompt: string, items: ReadonlyArray<MemoryItem>, signal?: AbortSignal): Promise<{ query: number[]; items: MemoryItem[] }> {
    const e = this.embedder;
    if (e.embedInCorpus === undefined) {
      const [query] = await e.embed([prompt], signal);
      return { query: query!, items: [...items] };
    }
    const corpus = items.map((it) => it.prompt);
    const key = JSON.stringify([e.id, items.map((it) => it.id), corpus]);
    if (this.corpusCache?.key !== key) this.corpusCache = { key, vectors: await e.embedInCorpus(corpus, corpus, signal) };
    const [query] = await e.embedInCorpus([prompt], corpus, signal);
    const vectors = this.corpusCache.vectors;
    return { query: query!, items: items.map((it, i) => ({ ...it, embedding: vectors[i]! })) };
  }

  /** Draft A uses the retrieved attributes; draft B explores a contrasting set, so the choice teaches something. */
  async planDrafts(prompt: string, signal?: AbortSignal, seed = Date.now()): Promise<DraftPlan[]> {
    this.checkInput(prompt, 'prompt');
    this.checkFits(prompt);
    const retrieval = await this.retrieve(prompt, signal);
    const shown = new Map(attributeFrequencies(await this.retriever.items()).map((f) => [f.attribute, f.count]));
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
    return this.write(prompt, plan.attributes, this.checkRequest(prompt), onToken, signal);
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
   * C.5.2 modeling accuracy, leave-one-out over every analysed choice (not only those in the
   * index): each choice's attributes are retrieved from the other entries (those of the same
   * prompt left out too) by the same path a request takes, and it counts when they widen its
   * preferred-vs-rejected gap; an empty injection counts as not widening. `harmed` counts the
   * injections that narrowed the gap.
   */
  async leaveOneOutAccuracy(scorer: LogLikelihoodScorer, signal?: AbortSignal) {
    const items = await this.memory.memoryItems();
    const analysed = (await this.memory.listPairs()).filter((p) => p.status === 'selected');
    const s = this.settings;
    const report = await modelingAccuracy(
      scorer,
      analysed,
      async (pair) => {
        const others = items.filter((it) => it.prompt !== pair.prompt);
        if (s.retrievalMode === 'abstain') {
          const { query, items: comparable } = await this.comparable(pair.prompt, others, signal);
          return this.decide(query, comparable).attributes;
        }
        const [query] = await this.embedder.embed([pair.prompt], signal);
        return retrieveAttributes(query!, others, { mode: s.retrievalMode, m: s.neighbors, k: s.k, ...(s.similarityFloor !== undefined ? { similarityFloor: s.similarityFloor } : {}), globalProfile: globalProfile(others, s.k) }).attributes;
      },
      signal,
    );
    return report;
  }
}

/**
 * The drafts a view asked for and not yet chosen from, so that a choice records what the host
 * generated (the preferred draft as the user may have edited it, the rejected one as generated)
 * and records it once. Holds the `limit` most recent requests; older ones are forgotten.
 */
export class DraftRequests {
  private readonly open = new Map<string, { prompt: string; drafts: Map<string, string> }>();

  constructor(private readonly limit = 4) {}

  get size(): number {
    return this.open.size;
  }

  /** A new request; its slots hold '' until their drafts finish (a stopped run leaves them so). */
  begin(requestId: string, prompt: string, slots: ReadonlyArray<string>): void {
    this.open.set(requestId, { prompt, drafts: new Map(slots.map((slot) => [slot, ''])) });
    for (const id of this.open.keys()) {
      if (this.open.size <= this.limit) break;
      this.open.delete(id);
    }
  }

  /** The text generated for a slot (as the view was sent it). */
  finishDraft(requestId: string, slot: string, text: string): void {
    this.open.get(requestId)?.drafts.set(slot, text);
  }

  forget(requestId: string): void {
    this.open.delete(requestId);
  }

  /**
   * Takes a request out for a choice of `preferredSlot` (so a second choice for it finds
   * nothing): its prompt and the other slot's generated draft, or undefined when the request is
   * unknown, already chosen, or does not have the preferred slot.
   */
  take(requestId: string, preferredSlot: string): { prompt: string; rejected: string } | undefined {
    const request = this.open.get(requestId);
    if (request === undefined) return undefined;
    const rejected = [...request.drafts].find(([slot]) => slot !== preferredSlot)?.[1];
    if (rejected === undefined || !request.drafts.has(preferredSlot)) return undefined;
    this.open.delete(requestId);
    return { prompt: request.prompt, rejected };
  }
}
