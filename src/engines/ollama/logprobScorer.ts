/**
 * Teacher-forced log-likelihood through Ollama, for when the model's GGUF file is not readable
 * here (Ollama on another machine). Ollama reports log-probabilities only for tokens it
 * generates, and has no route that tokenizes text or echoes prompt log-probabilities, so the
 * response is "forced" through generation:
 *
 *   1. Ask /api/generate (raw prompt = rendered prompt + the part of the response consumed so
 *      far, greedy decoding, `logprobs: true`, `top_logprobs: 20`, streaming).
 *   2. Walk the streamed tokens. At each position the candidates are the generated token and the
 *      position's top-20 alternatives; those whose bytes are a prefix of the remaining response
 *      bytes match. The response token is taken to be the matching candidate the model finds
 *      LIKELIEST (option `match: 'longest'` takes the longest instead). Its log-probability is
 *      exact. Why likeliest: Ollama cannot tokenize, so the response's own tokenization is
 *      unknown; a trained model puts almost all its mass on the tokenizer's canonical split
 *      (that is what it saw in training), so the likeliest matching piece is the canonical
 *      token in practice, and the walk never prefers a split the model itself finds unlikely.
 *      Longest match is the usual text-only stand-in but disagrees with SentencePiece's
 *      score-based merges (e.g. "ri|so|ti" where the tokenizer says "r|is|ot|i").
 *      - If that candidate is the generated token, the model is still on the response: go on
 *        reading the same stream (greedy decoding generates the likeliest token, so "the model
 *        generates the next response token" and "the likeliest match is the generated token"
 *        are the same thing).
 *      - Otherwise the model departs here: take the candidate, close the stream (abort), and
 *        continue with a new request whose prompt is extended by the consumed text.
 *      - If no candidate matches, record a MISS: the response token is not among the 20 most
 *        likely. Its log-probability is at most the smallest reported one and at most the log
 *        of the mass T outside the top 20; the default estimate spreads T evenly over the rest
 *        of the vocabulary (log(T / (V - 20)), V from /api/show), never below `missFloor`
 *        (options: the upper bound, or the midpoint; see missEstimate). How much text the
 *        missed token covers is unknown: it is guessed as one word piece (optional leading
 *        space + a run of letters, or up to 3 digits, or a run of one kind of white space, or
 *        one other character).
 *      Backtracking (one step, option `backtrack`, default on). Picking among matching
 *      candidates can take a split the tokenizer would not make, e.g. "W" (the model meant
 *      "Wow") where the response says "What", or a bare " " before a word. Two local checks
 *      repair that with information already at hand:
 *      - merge: when the previous token and the current one together spell a longer candidate
 *        that matched at the previous position, keep whichever split has the higher (exact)
 *        probability; if it is the longer token, restart after it;
 *      - miss: a miss right after a chosen token means the model cannot continue that split. If a
 *        longer candidate matched at the last token's position, take it instead (exact);
 *        otherwise, if the miss falls inside a word piece (optional space + letters) that exact
 *        tokens split, the piece becomes one miss, estimated where it starts.
 *   3. If the model ends generation (end-of-turn token or a stop string) before reporting the
 *      current position, Ollama sends no log-probabilities for it (EOS is never reported). The
 *      position is then asked again with sampling among the top 20 (`top_k` 20, very high
 *      temperature, `num_predict` 1, a different seed each try) until a non-final token comes
 *      back with the position's top-20 list; after `eosRetries` fruitless tries it is recorded as
 *      a miss.
 *
 * Exactness and limits (documented for users in the report of each request):
 *  - Exact tokens carry Ollama's own log-probabilities (softmax of the raw logits, independent of
 *    the sampling options), so they agree with the in-process llama.cpp scorer where both walk
 *    the same tokens.
 *  - The token path is found by text, not by the tokenizer. Where the model's tokenizer would
 *    split the response differently from the walk, the scorer scores another
 *    (valid) tokenization of the same text. A restarted request re-tokenizes the consumed text as
 *    part of the prompt, which can differ from the walked tokens at the seam.
 *  - Tokens are compared as bytes (Ollama's `bytes` field when sent, else the UTF-8 of the token
 *    text). A request can only restart at a character boundary; when a departure falls inside a
 *    multi-byte character the rest of that character is recorded as a miss.
 *  - The end-of-turn marker (ChatML's <|im_end|>, …) is scored after the response, like the
 *    llama.cpp engine does, from the top-20 list of the position after the response, where it
 *    must appear as one token whose text is the marker (Ollama decodes special tokens to their
 *    text). Greedy decoding usually ends the turn there, which Ollama does not report, so that
 *    position is normally asked by sampling (step 3).
 *  - Each departure costs one request; Ollama reuses its cache for the shared prompt prefix.
 */
import { abortError, throwIfAborted, type LogLikelihoodScorer, type ScoreRequest } from '../../core/ports';
import { detectPromptFormat, markerFreeText, renderPrompt, type PromptFormat } from '../promptFormat';
import { STOP_STREAM, type OllamaClient, type OllamaLogprob, type OllamaTokenLogprob } from './client';
import { OllamaLogprobsUnavailableError } from './errors';


export interface OllamaScorerOptions {
  /** Alternatives per position (Ollama allows 0-20). Default 20. */
  readonly topLogprobs?: number;
  /** Lowest log-probability a missed token is given. Default -30. */
  readonly missFloor?: number;
  /** How much text a miss covers (default 'word'). */
  readonly missPiece?: MissPiece;
  /** How a miss is estimated (default 'uniform-tail'; see missEstimate). */
  readonly missModel?: MissModel;
  /** Vocabulary size for the estimate; by default from /api/show (`<arch>.vocab_size`), else 32000. */
  readonly vocabSize?: number;
  /** Sampling re-asks of a position where greedy decoding ended the turn. Default 6. */
  readonly eosRetries?: number;
  /**
   * Responses scored at the same time (default 1). Raise it up to Ollama's OLLAMA_NUM_PARALLEL
   * to overlap requests; results do not depend on it.
   */
  readonly concurrency?: number;
  /** One-step backtracking on a miss (default true; see the file comment). */
  readonly backtrack?: boolean;
  /** Which matching candidate is the response token (default 'likeliest'; see the file comment). */
  readonly match?: MatchRule;
  /** The prompt format; by default detected from the template /api/show reports. */
  readonly promptFormat?: PromptFormat;
  /**
   * Score the format's end-of-turn marker after the response (default true, as the llama.cpp
   * engine does): log p(y | x, A) then includes the probability of ending the turn there.
   */
  readonly scoreEnd?: boolean;
  /** Skip the /api/version check (the check runs once, before the first request). */
  readonly skipVersionCheck?: boolean;
}

export interface ScoredToken {
  readonly text: string;
  readonly logprob: number;
  /** true: Ollama's reported log-probability; false: a miss, estimated. */
  readonly exact: boolean;
  /** Which of this response's requests reported it (0-based; see DetailedScore.restarts). */
  readonly request: number;
  /** Byte offset and length in the response's UTF-8; the end marker has start = response length, length 0. */
  readonly start: number;
  readonly length: number;
  /** This is the end-of-turn marker, not response text. */
  readonly isEnd: boolean;
}

export interface DetailedScore {
  /** Sum of all token log-probabilities (exact and estimated). */
  readonly logprob: number;
  readonly tokens: ScoredToken[];
  /** How many tokens were exact, how many were estimated misses. */
  readonly exact: number;
  readonly missed: number;
  /** /api/generate requests this response took. */
  readonly requests: number;
  /** For each request, the response byte offset its prompt ended at (the prompt = prefix + response[0..offset)). */
  readonly restarts: number[];
}

const utf8 = new TextEncoder();
const NO_PENALTIES = { repeat_penalty: 1, presence_penalty: 0, frequency_penalty: 0 } as const;
const utf8Decoder = new TextDecoder('utf-8', { fatal: false });

function tokenBytes(t: OllamaTokenLogprob): Uint8Array {
  if (Array.isArray(t.bytes) && t.bytes.length > 0) return Uint8Array.from(t.bytes as number[]);
  return utf8.encode(t.token ?? '');
}

function isPrefixAt(hay: Uint8Array, pos: number, needle: Uint8Array): boolean {
  if (needle.length === 0 || pos + needle.length > hay.length) return false;
  for (let i = 0; i < needle.length; i++) if (hay[pos + i] !== needle[i]) return false;
  return true;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && isPrefixAt(a, 0, b);
}

/** True when byte `pos` starts a character (or is the end). */
function atCharBoundary(bytes: Uint8Array, pos: number): boolean {
  return pos >= bytes.length || (bytes[pos]! & 0xc0) !== 0x80;
}

function nextCharBoundary(bytes: Uint8Array, pos: number): number {
  let p = pos;
  while (p < bytes.length && !atCharBoundary(bytes, p)) p++;
  return p;
}

/** Byte length of the guessed token a miss covers, starting at `pos` (see the file comment). */
export function guessMissedPiece(bytes: Uint8Array, pos: number, piece: MissPiece = 'word'): number {
  if (!atCharBoundary(bytes, pos)) return nextCharBoundary(bytes, pos) - pos;
  const rest = utf8Decoder.decode(bytes.subarray(pos, Math.min(bytes.length, pos + 256)));
  const m = (piece === 'word' ? /^(?: ?[\p{L}\p{M}]+| ?\p{N}{1,3}|\n+|[^\S\n]+|[\s\S])/u : /^(?: ?[^\s]|\n+|[^\S\n]+|[\s\S])/u).exec(rest);
  const text = m?.[0] ?? rest.slice(0, 1);
  return Math.max(1, Math.min(bytes.length - pos, utf8.encode(text).length));
}

/**
 * Where the word piece containing byte `pos` starts: back over letters (and marks), then over one
 * space before them. `pos` itself when it is not inside such a piece.
 */
export function wordPieceStart(bytes: Uint8Array, pos: number): number {
  const before = utf8Decoder.decode(bytes.subarray(Math.max(0, pos - 256), pos));
  const after = utf8Decoder.decode(bytes.subarray(pos, Math.min(bytes.length, pos + 4)));
  if (!/^[\p{L}\p{M}]/u.test(after)) return pos;
  const m = / ?[\p{L}\p{M}]*$/u.exec(before);
  return pos - utf8.encode(m?.[0] ?? '').length;
}

/** How much text a miss covers: a word piece, or one character (with its leading space). */
export type MissPiece = 'word' | 'char';

/** How a missed token's log-probability is estimated (see the file comment). */
export type MissModel = 'bound' | 'uniform-tail' | 'midpoint';

/**
 * The estimate for a token that is not among a position's reported alternatives, never below
 * `floor`. With p_min the smallest reported probability and T = 1 - (sum of reported ones) the
 * mass outside them:
 *  - 'bound': min(log p_min, log T), an upper bound on the truth (optimistic);
 *  - 'uniform-tail' (default): log(T / (V - k)), the tail spread evenly over the V - k
 *    unreported tokens (V = vocabulary size, k = reported alternatives): what an average
 *    unreported token gets (capped by the bound);
 *  - 'midpoint': halfway between the two in log space.
 * Measured on the fixture model (responses it finds very unlikely, 143 misses): the truth
 * averaged -22.6 per miss; 'bound' estimated -8.3, 'midpoint' -10.2, 'uniform-tail' -12.2 (the
 * smallest error). All three gave about the same attribute ranking (see the report).
 */
export function missEstimate(entry: OllamaLogprob | undefined, floor: number, vocabSize = 32_000, model: MissModel = 'uniform-tail'): number {
  const top = entry?.top_logprobs ?? [];
  if (top.length === 0) return floor;
  let min = 0;
  let mass = 0;
  for (const t of top) {
    if (!Number.isFinite(t.logprob)) continue;
    min = Math.min(min, t.logprob);
    mass += Math.exp(t.logprob);
  }
  const tail = Math.log(Math.max(1 - mass, 1e-300));
  const bound = Math.min(min, tail);
  const uniform = Math.min(bound, tail - Math.log(Math.max(1, vocabSize - top.length)));
  const value = model === 'bound' ? bound : model === 'uniform-tail' ? uniform : (bound + uniform) / 2;
  return Math.max(floor, value);
}

/** The vocabulary size /api/show reports in model_info (`<arch>.vocab_size`, or the token list). */
function vocabularySize(modelInfo: Record<string, unknown>): number | undefined {
  for (const [k, v] of Object.entries(modelInfo)) {
    if (k.endsWith('.vocab_size') && typeof v === 'number' && v > 0) return v;
  }
  const tokens = modelInfo['tokenizer.ggml.tokens'];
  return Array.isArray(tokens) && tokens.length > 0 ? tokens.length : undefined;
}

interface Candidate {
  readonly bytes: Uint8Array;
  readonly logprob: number;
  readonly generated: boolean;
}

/**
 * How the response token is picked among the candidates whose bytes start the remaining text:
 * 'likeliest' (default) the one the model gives the highest probability, 'longest' the longest.
 * The generated token wins ties.
 */
export type MatchRule = 'likeliest' | 'longest';

/** Every candidate (the generated token and its alternatives) whose bytes start the response at `pos`. */
function matchingCandidates(entry: OllamaLogprob, response: Uint8Array, pos: number): Candidate[] {
  const generated = tokenBytes(entry);
  const out: Candidate[] = [];
  if (isPrefixAt(response, pos, generated)) out.push({ bytes: generated, logprob: entry.logprob, generated: true });
  for (const alt of entry.top_logprobs ?? []) {
    const b = tokenBytes(alt);
    if (isPrefixAt(response, pos, b)) out.push({ bytes: b, logprob: alt.logprob, generated: sameBytes(b, generated) });
  }
  return out;
}

/** The candidate taken as the response token at `pos`, or undefined when none matches. */
export function matchPosition(entry: OllamaLogprob, response: Uint8Array, pos: number, rule: MatchRule = 'likeliest'): Candidate | undefined {
  let best: Candidate | undefined;
  for (const c of matchingCandidates(entry, response, pos)) {
    const better =
      best === undefined ||
      (rule === 'longest'
        ? c.bytes.length > best.bytes.length
        : c.logprob > best.logprob || (c.logprob === best.logprob && c.bytes.length > best.bytes.length && !best.generated));
    if (better) best = c;
  }
  return best;
}

export class OllamaLogprobScorer implements LogLikelihoodScorer {
  private readonly topLogprobs: number;
  private readonly missFloor: number;
  private readonly eosRetries: number;
  private readonly scoreEnd: boolean;
  private readonly match: MatchRule;
  private readonly concurrency: number;
  private readonly backtrack: boolean;
  private readonly missModel: MissModel;
  private readonly missPiece: MissPiece;
  private vocabSize: number | undefined;
  private format: PromptFormat | undefined;
  private versionChecked: boolean;
  /** Totals over the scorer's life: for status displays and tests. */
  readonly totals = { exact: 0, missed: 0, requests: 0, responses: 0 };

  constructor(
    private readonly client: OllamaClient,
    options: OllamaScorerOptions = {},
  ) {
    this.topLogprobs = Math.max(1, Math.min(20, Math.floor(options.topLogprobs ?? 20)));
    this.missFloor = options.missFloor ?? -30;
    this.eosRetries = Math.max(0, options.eosRetries ?? 6);
    this.scoreEnd = options.scoreEnd ?? true;
    this.match = options.match ?? 'likeliest';
    this.concurrency = Math.max(1, Math.floor(options.concurrency ?? 1));
    this.backtrack = options.backtrack ?? true;
    this.missModel = options.missModel ?? 'uniform-tail';
    this.missPiece = options.missPiece ?? 'word';
    this.vocabSize = options.vocabSize;
    this.format = options.promptFormat;
    this.versionChecked = options.skipVersionCheck === true;
  }

  private estimate(entry: OllamaLogprob | undefined): number {
    return missEstimate(entry, this.missFloor, this.vocabSize ?? 32_000, this.missModel);
  }

  async scoreBatch(requests: ReadonlyArray<ScoreRequest>, signal?: AbortSignal): Promise<number[]> {
    return (await this.scoreDetailed(requests, signal)).map((d) => d.logprob);
  }

  async scoreDetailed(requests: ReadonlyArray<ScoreRequest>, signal?: AbortSignal): Promise<DetailedScore[]> {
    throwIfAborted(signal);
    if (!this.versionChecked) {
      await this.client.requireLogprobsVersion(signal);
      this.versionChecked = true;
    }
    if (this.format === undefined || this.vocabSize === undefined) {
      const info = await this.client.show(this.client.config.model, signal);
      this.format ??= detectPromptFormat(info.template);
      this.vocabSize ??= vocabularySize(info.modelInfo) ?? 32_000;
    }
    const format = this.format;
    const out: DetailedScore[] = new Array(requests.length);
    // A few responses at a time: Ollama serves OLLAMA_NUM_PARALLEL requests concurrently.
    let next = 0;
    const controller = new AbortController(); // stops the other lanes when one fails
    const inner = signal === undefined ? controller.signal : AbortSignal.any([signal, controller.signal]);
    const lane = async (): Promise<void> => {
      while (next < requests.length) {
        const i = next++;
        const r = requests[i]!;
        throwIfAborted(inner);
        // Ollama parses special tokens in the whole raw prompt, response included: markers in it stay text.
        out[i] = await this.scoreOne(renderPrompt(format, r.prompt, r.attributes), markerFreeText(r.response), this.scoreEnd ? format.end : '', inner);
      }
    };
    const lanes = Array.from({ length: Math.min(this.concurrency, requests.length) }, () =>
      lane().catch((e: unknown) => {
        controller.abort();
        throw e;
      }),
    );
    await Promise.all(lanes);
    return out;
  }

  /**
   * Scores `response` as the continuation of the already rendered `prefix`, then (when `end` is
   * not '') the end-of-turn marker `end` as one token.
   */
  async scoreOne(prefix: string, response: string, end: string, signal?: AbortSignal): Promise<DetailedScore> {
    const bytes = utf8.encode(response);
    const endBytes = utf8.encode(end);
    const tokens: ScoredToken[] = [];
    const text = (from: number, to: number): string => utf8Decoder.decode(bytes.subarray(from, to));
    let pos = 0;
    let endDone = endBytes.length === 0;
    let requests = 0;
    const restarts: number[] = [];
    /** Sampling tries at the current position that brought no log-probabilities. */
    let emptyTries = 0;
    /** Ask the next request by sampling: greedy decoding is known to end the turn here. */
    let sampleNext = false;
    const maxRequests = 2 * bytes.length + 16 + this.eosRetries;
    const { config } = this.client;
    const remaining = (): boolean => pos < bytes.length || !endDone;
    const push = (from: number, to: number, logprob: number, exact: boolean): void => {
      tokens.push({ text: text(from, to), logprob, exact, request: requests - 1, start: from, length: to - from, isEnd: false });
    };
    const pushEnd = (logprob: number, exact: boolean): void => {
      tokens.push({ text: end, logprob, exact, request: requests - 1, start: bytes.length, length: 0, isEnd: true });
      endDone = true;
    };

    /** For each token: the report of its position and longer matching alternatives (exact tokens only). */
    const meta: Array<{ entry: OllamaLogprob; longer: Candidate[] } | undefined> = [];

    const miss = (entry: OllamaLogprob | undefined): void => {
      if (pos >= bytes.length) {
        pushEnd(this.estimate(entry), false);
        meta.push(undefined);
        return;
      }
      if (this.backtrack && entry !== undefined && backtrackBeforeMiss()) return;
      const len = guessMissedPiece(bytes, pos, this.missPiece);
      push(pos, pos + len, this.estimate(entry), false);
      meta.push(undefined);
      pos += len;
    };

    /**
     * A miss right after tokens the walk chose among several is evidence that they were not the
     * tokenizer's split (see "Backtracking" in the file comment). Returns true when it rewrote them.
     */
    const backtrackBeforeMiss = (): boolean => {
      const lastIndex = tokens.length - 1;
      const last = tokens[lastIndex];
      const lastMeta = meta[lastIndex];
      if (last === undefined || lastMeta === undefined || last.start + last.length !== pos) return false;
      if (lastMeta.longer.length > 0) {
        // A longer piece matched where the last token was taken: it is the response token.
        const alt = lastMeta.longer.reduce((a, b) => (b.logprob > a.logprob ? b : a));
        tokens.pop();
        meta.pop();
        push(last.start, last.start + alt.bytes.length, alt.logprob, true);
        meta.push(undefined);
        pos = last.start + alt.bytes.length;
        return true;
      }
      // The word piece the miss falls in ("optional space + letters"): if exact tokens split it,
      // replace them and the miss by one miss for the whole piece, estimated where it starts.
      const pieceStart = wordPieceStart(bytes, pos);
      if (pieceStart >= pos) return false;
      let first = lastIndex;
      while (first > 0 && tokens[first]!.start > pieceStart && meta[first - 1] !== undefined && !tokens[first - 1]!.isEnd) first--;
      if (tokens[first]!.start !== pieceStart || meta[first] === undefined) return false;
      const startEntry = meta[first]!.entry;
      tokens.splice(first);
      meta.splice(first);
      const piece = guessMissedPiece(bytes, pieceStart, this.missPiece);
      push(pieceStart, pieceStart + piece, this.estimate(startEntry), false);
      meta.push(undefined);
      pos = pieceStart + piece;
      return true;
    };

    /**
     * When the previous token and `hit` together spell a longer candidate that matched at the
     * previous position, keep whichever of the two splits the model finds likelier (both are
     * exact). Returns true when the longer token replaced them (the next request restarts after
     * it, so later tokens see the tokenizer's split in their context).
     */
    const mergeWithPrevious = (hit: Candidate): boolean => {
      const lastIndex = tokens.length - 1;
      const last = tokens[lastIndex];
      const lastMeta = meta[lastIndex];
      if (last === undefined || lastMeta === undefined || last.start + last.length !== pos) return false;
      const merged = lastMeta.longer.find((c) => c.bytes.length === last.length + hit.bytes.length);
      if (merged === undefined || !(merged.logprob > last.logprob + hit.logprob)) return false;
      tokens.pop();
      meta.pop();
      push(last.start, last.start + merged.bytes.length, merged.logprob, true);
      meta.push({ entry: lastMeta.entry, longer: lastMeta.longer.filter((c) => c.bytes.length > merged.bytes.length) });
      pos = last.start + merged.bytes.length;
      return true;
    };

    /** Consumes one reported position; true when the stream must be left (departure or done). */
    const consume = (entry: OllamaLogprob): boolean => {
      if (pos >= bytes.length) {
        // The end-of-turn position: only the whole marker counts (never its text pieces).
        const hit = [entry, ...(entry.top_logprobs ?? [])].find((c) => c.token === end || sameBytes(tokenBytes(c), endBytes));
        if (hit === undefined) miss(entry);
        else {
          pushEnd(hit.logprob, true);
          meta.push(undefined);
        }
        return true;
      }
      const hit = matchPosition(entry, bytes, pos, this.match);
      if (hit === undefined) {
        miss(entry);
        return true;
      }
      if (this.backtrack && mergeWithPrevious(hit)) return true;
      const longer = this.backtrack ? matchingCandidates(entry, bytes, pos).filter((c) => c.bytes.length > hit.bytes.length) : [];
      push(pos, pos + hit.bytes.length, hit.logprob, true);
      meta.push({ entry, longer });
      pos += hit.bytes.length;
      return !hit.generated; // a departure: the model would go on with another token
    };

    while (remaining()) {
      throwIfAborted(signal);
      if (requests >= maxRequests) {
        // Never loop forever: whatever is left counts as one estimated miss.
        if (pos < bytes.length) push(pos, bytes.length, this.missFloor, false);
        pos = bytes.length;
        if (!endDone) pushEnd(this.missFloor, false);
        meta.length = tokens.length;
        break;
      }
      requests++;
      restarts.push(pos);
      const startPos = pos;
      const startEnd = endDone;
      const sampling = sampleNext;
      let last: OllamaLogprob | undefined;
      let sawLogprobs = false;
      let sawText = false;

      const result = await this.client.generateStream(
        {
          model: config.model,
          prompt: prefix + text(0, pos),
          raw: true,
          keep_alive: config.keepAlive,
          logprobs: true,
          top_logprobs: this.topLogprobs,
          // No repetition penalties: greedy decoding then generates the raw argmax, the token the
          // walk would pick, and stays on the response as long as it can.
          options: sampling
            ? // Any of the top tokens but (most likely) not the end: the reply carries this position's list.
              { temperature: 1000, top_k: this.topLogprobs, top_p: 1, min_p: 0, seed: requests, num_predict: 1, num_ctx: config.numCtx, ...NO_PENALTIES }
            : { temperature: 0, top_k: 1, top_p: 1, min_p: 0, seed: 0, num_predict: bytes.length - pos + 1, num_ctx: config.numCtx, ...NO_PENALTIES },
        },
        (chunk) => {
          if (chunk.response !== '') sawText = true;
          const entries = chunk.logprobs ?? [];
          if (entries.length > 0) sawLogprobs = true;
          for (const entry of entries) {
            last = entry;
            if (consume(entry) || !remaining()) return STOP_STREAM;
          }
          return undefined;
        },
        signal,
      );
      if (signal?.aborted === true) throw abortError();
      if (sawText && !sawLogprobs) throw new OllamaLogprobsUnavailableError(this.client.host, config.model);

      const progressed = pos !== startPos || endDone !== startEnd;
      // Ended by the model itself (end-of-turn token or stop string) with work left: greedy
      // decoding would end at the same place again, so the next request samples.
      sampleNext = result.doneReason === 'stop' && remaining();
      if (!progressed) {
        emptyTries++;
        if (emptyTries > this.eosRetries) {
          miss(undefined);
          emptyTries = 0;
          sampleNext = false;
        }
        continue;
      }
      emptyTries = 0;
      // A new request must start at a character boundary: the rest of a split character is a miss.
      if (pos < bytes.length && !atCharBoundary(bytes, pos)) {
        const next = nextCharBoundary(bytes, pos);
        push(pos, next, this.estimate(last), false);
        meta.push(undefined);
        pos = next;
      }
    }

    let logprob = 0;
    let exact = 0;
    for (const t of tokens) {
      logprob += t.logprob;
      if (t.exact) exact++;
    }
    const missed = tokens.length - exact;
    this.totals.exact += exact;
    this.totals.missed += missed;
    this.totals.requests += requests;
    this.totals.responses += 1;
    return { logprob, tokens, exact, missed, requests, restarts };
  }
}
