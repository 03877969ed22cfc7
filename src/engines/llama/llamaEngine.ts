/**
 * In-process llama.cpp (node-llama-cpp) for exact teacher-forced scoring, generation and
 * embeddings. It runs inside the scorer worker (see scorerWorker.ts) and works directly in Node.
 *
 * Scoring. A request (x, A, y) becomes the token sequence
 *
 *     promptTokens(x, A) ++ tokenize(y) ++ tokenize(format.end)
 *
 * where promptTokens tokenizes the format's markers with special tokens on and the user's text
 * (with the attribute block) with them off (renderPromptPieces in promptFormat.ts; text such as
 * `<|im_end|>` in a prompt stays text), the format comes from the model's own chat template, y is tokenized on
 * its own, as the model would generate it (no BOS, no SentencePiece space prefix), and the end
 * marker is scored too (when the format has one): log p(y | x, A) then includes the model's
 * probability of ending the turn right there, so a response that stops early or rambles on pays
 * for it. The score is the sum over the response and end tokens of log p(token | all before),
 * computed in log space from the logits (targetProbabilities.ts), so it stays finite however
 * unlikely a token is; only a token the model rules out entirely (logit -Infinity) would make it
 * -Infinity, and such a term counts as `logProbFloor` instead (default -1000).
 *
 * Exactness. Log-probabilities are llama.cpp's log-softmax of the raw logits (default sampling
 * options), computed from the target's logit, the largest logit and llama.cpp's float32 total
 * logit weight; flash attention is off and the thread count is fixed, so the same request gives
 * the same bits however requests are batched and whatever was evaluated before (on one sequence;
 * see `parallelSequences`).
 *
 * Prefix reuse. A batch is scored in lexicographic order of its token sequences, so requests that
 * share a prompt (and, within those, an attribute set) are neighbours. Before each sequence the KV
 * cache is rewound (`eraseContextTokenRanges`) to the longest common prefix with the previous
 * one, and only the rest is evaluated; the last shared token is evaluated again when its
 * next-token distribution is needed (it is not cached). By default one context sequence scores
 * everything; `parallelSequences` splits a batch over several (node-llama-cpp 3.21.1 now and then
 * scored a sequence against the wrong distributions that way; 3.22.1 is tested equal to one
 * sequence). It saves wall time only where a core is free, no CPU time.
 *
 * Early stopping and screening (ScoreRequest.stopBelow / prefixTokens). A request with stopBelow
 * is evaluated STOP_CHECK_TOKENS scored tokens per call, and the running sum is checked before
 * each call: every term is a log-probability (<= 0), so once the sum is below stopBelow the total
 * is too, and the sum so far is returned (its cut tokens counted in `skippedTokens`). Until then
 * the terms and their sum are the same bits as without stopBelow. A request with prefixTokens is
 * cut after that many scored tokens before anything is evaluated.
 */
import { availableParallelism } from 'node:os';
import { randomInt } from 'node:crypto';
import {
  getLlama,
  LlamaLogLevel,
  readGgufFileInfo,
  type ControlledEvaluateInputItem,
  type Llama,
  type LlamaContext,
  type LlamaContextSequence,
  type LlamaEmbeddingContext,
  type LlamaModel,
  type Token,
} from 'node-llama-cpp';
import { abortError, throwIfAborted, type GenerationOptions, type ScoreRequest } from '../../core/ports';
import { detectPromptFormat, renderPromptPieces, type PromptFormat } from '../promptFormat';
import { describeBackend, type ComputeBackend } from './computeBackend';
import { checkModelFile, loadFailure, ModelFileError } from './modelFile';
import { sampleToken, seededRandom } from './sampling';
import { distributionReader, logitReader, type ProbabilityPath, type TargetReader } from './targetProbabilities';
import { vocabularyEntryBytes } from './tokenBytes';
import { Mutex } from '../../shared/mutex';

/**
 * What a token the model rules out entirely (logit -Infinity, log p = -Infinity) contributes,
 * so that one such token does not make every attribute set tie at -Infinity. Every other
 * log-probability is used as it is, however low.
 */
const DEFAULT_LOG_PROB_FLOOR = -1000;

/**
 * Scored tokens per evaluation call of a request with stopBelow: how often early stopping checks
 * the running sum (fewer means more, smaller llama_decode calls).
 */
const STOP_CHECK_TOKENS = 8;

export interface LlamaEngineOptions {
  /**
   * CPU threads for evaluation (default: half the cores, at least 1, at most 4). llama.cpp's
   * threads wait for each other at every step, so using every core is fragile: on 2 busy cores a
   * 1-token step took 20-280 ms with 2 threads and 0.4-3.6 ms with 1.
   */
  readonly threads?: number;
  /** 'auto' uses a GPU build when one works here; false (default) stays on the CPU. */
  readonly gpu?: 'auto' | false;
  /** Tokens per context sequence (default min(trained context, 4096)). */
  readonly contextSize?: number;
  /** Tokens per llama_decode call (default min(contextSize, 512)). */
  readonly batchSize?: number;
  /** What a token with log p = -Infinity contributes instead (default -1000; see DEFAULT_LOG_PROB_FLOOR). */
  readonly logProbFloor?: number;
  /** Score the format's end-of-turn marker after the response (default true). */
  readonly scoreEnd?: boolean;
  /** Reuse the KV cache between sequences sharing a prefix (default true; false is for checks). */
  readonly prefixReuse?: boolean;
  /**
   * How token probabilities are read (targetProbabilities.ts): 'logits' (default: two logits and
   * the total logit weight per scored token) or 'distribution' (the whole distribution, for checks).
   */
  readonly probabilityPath?: ProbabilityPath;
  /**
   * Context sequences that score one batch at once (default 1). With more, a batch's sequences are
   * split into that many runs of neighbours (in the lexicographic order, so each run keeps its
   * prefix reuse), evaluated concurrently: node-llama-cpp puts their tokens into the same
   * llama_decode batches and reads their logits on separate threads. Results agree with one
   * sequence to float rounding, not bit for bit (the batch composition changes).
   */
  readonly parallelSequences?: number;
}

export interface LlamaModelInfo {
  readonly path: string;
  readonly architecture: string;
  readonly name: string | undefined;
  readonly vocabSize: number;
  /** Tokens one scoring sequence holds. */
  readonly contextSize: number;
  readonly trainContextSize: number;
  readonly chatTemplate: string | undefined;
  readonly promptFormat: PromptFormat['id'];
  readonly bos: number | null;
  readonly eos: number | null;
  readonly sizeBytes: number;
  readonly threads: number;
  /** How scoring reads token probabilities. */
  readonly probabilityPath: ProbabilityPath;
  /** Context sequences scoring a batch at once. */
  readonly parallelSequences: number;
  /** What evaluates the model (cpu / vulkan / metal / cuda) and why. */
  readonly backend: ComputeBackend;
}

/** Memory as node-llama-cpp reports it (bytes). */
export interface LlamaMemoryUsage {
  /** The model's weights (file size of the tensors). */
  readonly modelBytes: number;
  /** llama.cpp's own accounting of what this process holds in RAM / VRAM (all its models and contexts). */
  readonly cpuRam: number;
  readonly gpuVram: number;
  /** node-llama-cpp's estimate for the scoring context (KV cache and compute buffers). */
  readonly contextEstimate: { readonly cpuRam: number; readonly gpuVram: number };
}

export interface TokenScore {
  readonly token: number;
  /** log p(token | everything before), after the floor. */
  readonly logprob: number;
}

export interface ScoreDetail {
  /** Sum of the token log-probabilities: what score() returns. */
  readonly logLikelihood: number;
  /** Tokens of the rendered prompt (the condition). */
  readonly promptTokens: number;
  /** The scored tokens: the response, then the end marker when it is scored. */
  readonly tokens: TokenScore[];
}

/** Work done by scoring since the engine was loaded (or since resetStats()). */
export interface ScoreStats {
  sequences: number;
  /** Tokens fed to the model. */
  evaluatedTokens: number;
  /** Tokens whose log-probability was read. */
  scoredTokens: number;
  /** Tokens not evaluated again thanks to the KV cache. */
  reusedTokens: number;
  /** Tokens not scored because a request's stopBelow was reached before its end (early stopping). */
  skippedTokens: number;
  /** Scored tokens that were the model's greedy (argmax) choice ('logits' path only). */
  greedyHits: number;
  milliseconds: number;
}

export type GenerateInput = { readonly prompt: string; readonly attributes?: ReadonlyArray<string> } | { readonly raw: string };

export interface LlamaGenerateOptions extends GenerationOptions {
  /** Stop before any of these strings (the format's end marker always stops). */
  readonly stop?: ReadonlyArray<string>;
  /** Report this many most likely alternatives with each token (0-20, default 0). */
  readonly topLogprobs?: number;
}

export interface TokenLogprob {
  readonly id: number;
  /** The token's text (a lone part of a UTF-8 character shows as U+FFFD; see bytes). */
  readonly token: string;
  readonly bytes: number[];
  /** log p under the model's own distribution (softmax of the raw logits), before sampling settings. */
  readonly logprob: number;
}

export interface GeneratedToken extends TokenLogprob {
  readonly topLogprobs?: TokenLogprob[];
}

/**
 * What one generation step adds: the text that became visible (possibly '' while a stop string
 * or a split UTF-8 character is pending) and the tokens generated since the previous chunk. The
 * last chunk may carry text and no tokens.
 */
export interface GenerationChunk {
  readonly text: string;
  readonly tokens: GeneratedToken[];
}

export interface GenerateResult {
  readonly text: string;
  /** Generated tokens, without the end-of-generation token. */
  readonly tokens: GeneratedToken[];
  readonly doneReason: 'stop' | 'length';
  readonly promptTokens: number;
  /** Prompt tokens actually evaluated (the rest came from the KV cache). */
  readonly promptEvaluatedTokens: number;
  readonly promptMilliseconds: number;
  readonly generationMilliseconds: number;
  readonly seed: number;
}

// Ollama's defaults.
const DEFAULT_TEMPERATURE = 0.8;
const DEFAULT_TOP_K = 40;
const DEFAULT_TOP_P = 0.9;

const llamaInstances = new Map<string, Promise<Llama>>();

/** llama.cpp's recent error and warning lines: load failures explain themselves only there. */
const recentLogs: string[] = [];
function logSink(level: LlamaLogLevel, message: string): void {
  if (level !== LlamaLogLevel.error && level !== LlamaLogLevel.fatal && level !== LlamaLogLevel.warn) return;
  recentLogs.push(message.trim());
  if (recentLogs.length > 20) recentLogs.shift();
}

/**
 * One llama.cpp runtime per GPU setting and process, shared by every engine. (llama.cpp's log
 * callback is process-wide: code that needs its own runtime in the same process should use this
 * one, or load errors lose their explanation.)
 */
export function llamaRuntime(gpu: 'auto' | false = false): Promise<Llama> {
  const key = String(gpu);
  let p = llamaInstances.get(key);
  if (p === undefined) {
    p = getLlama({ gpu, build: 'never', logLevel: LlamaLogLevel.warn, logger: logSink, progressLogs: false });
    p.catch(() => llamaInstances.delete(key));
    llamaInstances.set(key, p);
  }
  return p;
}

interface PreparedSequence {
  readonly index: number;
  /** The request's tokens, cut after its first `prefixTokens` scored tokens when it asks for that. */
  readonly tokens: number[];
  /** Index of the first scored token (= number of prompt tokens). */
  readonly start: number;
  readonly stopBelow: number | undefined;
}

export function defaultThreads(): number {
  return Math.max(1, Math.min(4, Math.floor(availableParallelism() / 2)));
}

function commonPrefixLength(a: ReadonlyArray<number>, b: ReadonlyArray<number>): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

function compareTokens(a: ReadonlyArray<number>, b: ReadonlyArray<number>): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

export class LlamaEngine {
  readonly promptFormat: PromptFormat;
  /** Serializes the engine's operations: they share the context's KV cache. */
  private readonly mutex = new Mutex();
  private readonly floor: number;
  private readonly scoreEnd: boolean;
  private readonly prefixReuse: boolean;
  private readonly chunk: number;
  private readonly scoredPerCall: number;
  private readonly endTokens: Token[];
  private readonly spacePrefix: boolean;
  private readonly vocabulary: ReadonlyArray<string> | undefined;
  private readonly bytesCache = new Map<number, number[]>();
  private embeddingContext: Promise<LlamaEmbeddingContext> | undefined;
  private disposed = false;
  private stats: ScoreStats = { sequences: 0, evaluatedTokens: 0, scoredTokens: 0, reusedTokens: 0, skippedTokens: 0, greedyHits: 0, milliseconds: 0 };
  private readonly readers: ReadonlyArray<{ readonly sequence: LlamaContextSequence; readonly reader: TargetReader }>;
  /** The sequence generation uses (and scoring's first). */
  private readonly sequence: LlamaContextSequence;

  private constructor(
    private readonly path: string,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    sequences: ReadonlyArray<LlamaContextSequence>,
    private readonly threads: number,
    options: LlamaEngineOptions,
    private readonly backend: ComputeBackend,
  ) {
    const md = model.fileInfo.metadata as unknown as { tokenizer?: { chat_template?: unknown; ggml?: { tokens?: unknown; add_space_prefix?: unknown } } };
    const template = md.tokenizer?.chat_template;
    this.promptFormat = detectPromptFormat(typeof template === 'string' ? template : undefined);
    this.floor = options.logProbFloor ?? DEFAULT_LOG_PROB_FLOOR;
    this.scoreEnd = options.scoreEnd ?? true;
    this.prefixReuse = options.prefixReuse ?? true;
    this.chunk = context.batchSize;
    const probabilityPath = options.probabilityPath ?? 'logits';
    // Bounds how long a cancellation waits (131 scored positions per call at 32k, 32 at 128k; a
    // whole distribution costs far more per position). Smaller calls cost more: at 128k, 16
    // positions per call took about 10% more CPU per token than 64.
    this.scoredPerCall = Math.max(4, Math.floor((probabilityPath === 'logits' ? 1 << 22 : 1 << 18) / Math.max(1, this.vocabularySize(model))));
    this.endTokens = this.promptFormat.end === '' ? [] : model.tokenize(this.promptFormat.end, true);
    const vocabType = String(model.vocabularyType);
    const addSpacePrefix = md.tokenizer?.ggml?.add_space_prefix;
    // llama.cpp's SentencePiece tokenizer adds a space prefix unless the file says not to.
    this.spacePrefix = vocabType === 'spm' && addSpacePrefix !== false;
    const tokens = md.tokenizer?.ggml?.tokens;
    this.vocabulary = Array.isArray(tokens) ? (tokens as string[]) : undefined;
    this.sequence = sequences[0]!;
    this.readers = sequences.map((sequence) => ({ sequence, reader: probabilityPath === 'logits' ? logitReader(sequence) : distributionReader(sequence) }));
  }

  /**
   * Loads a GGUF model and creates its scoring context. Throws ModelFileError (with a `code`)
   * when the file is missing, unreadable, not GGUF or of an architecture llama.cpp cannot run.
   */
  static async load(modelPath: string, options: LlamaEngineOptions = {}): Promise<LlamaEngine> {
    await checkModelFile(modelPath);
    const threads = Math.max(1, Math.floor(options.threads ?? defaultThreads()));
    const parallel = Math.max(1, Math.floor(options.parallelSequences ?? 1));
    const llama = await llamaRuntime(options.gpu ?? false);
    let model: LlamaModel;
    recentLogs.length = 0;
    try {
      model = await llama.loadModel({ modelPath, defaultContextFlashAttention: false, gpuLayers: options.gpu === 'auto' ? 'auto' : 0 });
    } catch (e) {
      let architecture: string | undefined;
      try {
        const info = await readGgufFileInfo(modelPath, { readTensorInfo: false });
        const arch = (info.metadata as { general?: { architecture?: unknown } }).general?.architecture;
        architecture = typeof arch === 'string' ? arch : undefined;
      } catch {
        // The header itself is unreadable: reported as a load failure below.
      }
      const logged = recentLogs.find((l) => /error loading model/u.test(l))?.replace(/^.*error loading model:\s*/u, '');
      throw loadFailure(modelPath, architecture, logged !== undefined ? new Error(logged) : e);
    }
    try {
      const train = model.trainContextSize;
      const contextSize = Math.max(16, Math.floor(options.contextSize ?? Math.min(train > 0 ? train : 4096, 4096)));
      const context = await model.createContext({
        contextSize,
        batchSize: Math.max(8, Math.floor(options.batchSize ?? Math.min(contextSize, 512))),
        sequences: parallel,
        flashAttention: false,
        threads,
      });
      const sequences = Array.from({ length: parallel }, () => context.getSequence());
      const backend = await describeBackend(llama, model, options.gpu ?? false);
      return new LlamaEngine(modelPath, model, context, sequences, threads, options, backend);
    } catch (e) {
      await model.dispose();
      throw e instanceof ModelFileError ? e : new Error(`Could not create a llama.cpp context for ${modelPath}: ${e instanceof Error ? e.message : String(e)}. Try a smaller contextSize.`);
    }
  }

  get modelInfo(): LlamaModelInfo {
    const md = this.model.fileInfo.metadata as unknown as { general?: { architecture?: unknown; name?: unknown }; tokenizer?: { chat_template?: unknown } };
    const template = md.tokenizer?.chat_template;
    return {
      path: this.path,
      architecture: String(md.general?.architecture ?? this.model.architecture ?? 'unknown'),
      name: typeof md.general?.name === 'string' ? md.general.name : undefined,
      vocabSize: this.vocabulary?.length ?? 0,
      contextSize: this.context.contextSize,
      trainContextSize: this.model.trainContextSize,
      chatTemplate: typeof template === 'string' ? template : undefined,
      promptFormat: this.promptFormat.id,
      bos: this.model.tokens.bos,
      eos: this.model.tokens.eos,
      sizeBytes: this.model.size,
      threads: this.threads,
      probabilityPath: this.readers[0]!.reader.path,
      parallelSequences: this.readers.length,
      backend: this.backend,
    };
  }

  async memoryUsage(): Promise<LlamaMemoryUsage> {
    this.ensureOpen();
    const used = await this.model.llama.getLlamaMemoryUsage();
    const estimate = await this.model.fileInsights.estimateContextResourceRequirementsV2({
      contextSize: this.context.contextSize,
      batchSize: this.context.batchSize,
      sequences: this.context.totalSequences,
      modelGpuLayers: this.model.gpuLayers,
      flashAttention: false,
    });
    return { modelBytes: this.model.size, cpuRam: used.cpuRam, gpuVram: used.gpuVram, contextEstimate: { cpuRam: estimate.cpuRam, gpuVram: estimate.gpuVram } };
  }

  /** Scoring work done so far. */
  get scoreStats(): Readonly<ScoreStats> {
    return { ...this.stats };
  }

  resetStats(): void {
    this.stats = { sequences: 0, evaluatedTokens: 0, scoredTokens: 0, reusedTokens: 0, skippedTokens: 0, greedyHits: 0, milliseconds: 0 };
  }

  tokenize(text: string, specialTokens = false): number[] {
    this.ensureOpen();
    return this.model.tokenize(text, specialTokens);
  }

  detokenize(tokens: ReadonlyArray<number>, specialTokens = false): string {
    this.ensureOpen();
    return this.model.detokenize(tokens as Token[], specialTokens);
  }

  /** The response's tokens as the model would generate them after the prompt. */
  tokenizeResponse(text: string): number[] {
    this.ensureOpen();
    return this.spacePrefix ? this.model.tokenize(text, false, 'trimLeadingSpace') : this.model.tokenize(text, false);
  }

  /**
   * The rendered prompt's tokens: the format's markers with special tokens on, the user's text
   * and the attribute block with them off, so nothing the user wrote becomes a control token.
   */
  promptTokens(prompt: string, attributes: ReadonlyArray<string>): Token[] {
    this.ensureOpen();
    const out: Token[] = [];
    for (const piece of renderPromptPieces(this.promptFormat, prompt, attributes)) {
      if (piece.special) out.push(...this.model.tokenize(piece.text, true));
      else if (this.spacePrefix && out.length > 0) out.push(...this.model.tokenize(piece.text, false, 'trimLeadingSpace'));
      else out.push(...this.model.tokenize(piece.text, false));
    }
    return out;
  }

  /** The full token sequence of a request and where its scored part starts. */
  scoringTokens(request: ScoreRequest): { tokens: number[]; start: number } {
    this.ensureOpen();
    const prompt = this.promptTokens(request.prompt, request.attributes);
    const response = this.tokenizeResponse(request.response);
    const end = this.scoreEnd ? this.endTokens : [];
    return { tokens: [...prompt, ...response, ...end], start: prompt.length };
  }

  /** log p(response [+ end] | rendered prompt) for each request, in order. */
  async score(requests: ReadonlyArray<ScoreRequest>, signal?: AbortSignal): Promise<number[]> {
    const details = await this.scoreDetailed(requests, signal);
    return details.map((d) => d.logLikelihood);
  }

  /** Like score(), with every scored token's log-probability. */
  async scoreDetailed(requests: ReadonlyArray<ScoreRequest>, signal?: AbortSignal): Promise<ScoreDetail[]> {
    return this.scorePrepared(() => requests.map((r) => ({ ...this.scoringTokens(r), prefixTokens: r.prefixTokens, stopBelow: r.stopBelow })), signal);
  }

  /**
   * Scores given token sequences: for each, the tokens from `start` on, each given all before it
   * (what a server's prompt log-probabilities report; start 1 scores every token but the first).
   */
  async scoreTokenSequences(sequences: ReadonlyArray<{ readonly tokens: ReadonlyArray<number>; readonly start: number }>, signal?: AbortSignal): Promise<ScoreDetail[]> {
    return this.scorePrepared(() => sequences.map((s) => ({ tokens: [...s.tokens], start: s.start })), signal);
  }

  private async scorePrepared(
    build: () => Array<{ tokens: number[]; start: number } & Pick<ScoreRequest, 'prefixTokens' | 'stopBelow'>>,
    signal: AbortSignal | undefined,
  ): Promise<ScoreDetail[]> {
    throwIfAborted(signal);
    return this.mutex.run(async () => {
      this.ensureOpen();
      throwIfAborted(signal);
      const prepared: PreparedSequence[] = build().map(({ tokens, start, prefixTokens, stopBelow }, index) => {
        if (start < 1) throw new Error(`Request ${index}: the rendered prompt is empty, so the first response token has nothing to condition on.`);
        if (tokens.length > this.context.contextSize) {
          throw new Error(
            `Request ${index} is ${tokens.length} tokens long but a scoring sequence holds ${this.context.contextSize}; ` +
              `load the engine with a larger contextSize (the model was trained on ${this.model.trainContextSize}) or shorten the prompt or response.`,
          );
        }
        const end = prefixTokens === undefined ? tokens.length : start + Math.max(0, Math.floor(prefixTokens));
        return { index, tokens: tokens.slice(0, end), start, stopBelow };
      });
      const order = [...prepared].sort((a, b) => compareTokens(a.tokens, b.tokens) || a.index - b.index);
      const results: ScoreDetail[] = new Array(prepared.length);
      const t0 = performance.now();
      const runs = splitRuns(order, this.readers.length);
      try {
        // Every run finishes (or stops at its next step) before the engine takes the next operation.
        const settled = await Promise.allSettled(
          runs.map(async (run, r) => {
            for (const p of run) {
              throwIfAborted(signal);
              results[p.index] = await this.scoreOne(p, r, signal);
            }
          }),
        );
        const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
        if (failed !== undefined) throw failed.reason;
      } catch (e) {
        if (signal?.aborted === true) throw abortError();
        throw e;
      } finally {
        this.stats.milliseconds += performance.now() - t0;
      }
      return results;
    });
  }

  private async scoreOne(p: PreparedSequence, run: number, signal: AbortSignal | undefined): Promise<ScoreDetail> {
    const { sequence: seq, reader } = this.readers[run]!;
    const { tokens, start, stopBelow } = p;
    const n = tokens.length;
    this.stats.sequences += 1;
    if (n === start) return { logLikelihood: 0, promptTokens: start, tokens: [] };
    // Positions start-1 .. n-2 produce the distributions of tokens start .. n-1. At least two
    // tokens are fed: llama.cpp takes another (matrix-vector) path for a batch of one, whose
    // results differ in the last bits, and scores must not depend on what was cached.
    const cached = this.prefixReuse ? commonPrefixLength(seq.contextTokens, tokens) : 0;
    const keep = Math.max(0, Math.min(cached, start - 1, n - 3));
    if (seq.nextTokenIndex > keep) await seq.eraseContextTokenRanges([{ start: keep, end: seq.nextTokenIndex }]);
    this.stats.reusedTokens += keep;
    const scored: TokenScore[] = [];
    let sum = 0;
    // The last token is never fed (nothing comes after it). With stopBelow, the sum is checked
    // every few scored tokens: each term is <= 0, so once it is below stopBelow, so is the total.
    const perCall = stopBelow === undefined ? this.scoredPerCall : Math.min(this.scoredPerCall, STOP_CHECK_TOKENS);
    for (const [from, to] of this.chunks(keep, n - 1, start - 1, perCall)) {
      throwIfAborted(signal);
      if (stopBelow !== undefined && sum < stopBelow) {
        this.stats.skippedTokens += n - Math.max(from, start - 1) - 1;
        break;
      }
      const fed = tokens.slice(from, to);
      const targets = fed.map((_, j) => (from + j >= start - 1 ? tokens[from + j + 1] : undefined));
      const { logProbabilities, greedyHits } = await reader.read(fed, targets);
      this.stats.evaluatedTokens += fed.length;
      this.stats.greedyHits += greedyHits;
      for (let i = Math.max(from, start - 1); i < to; i++) {
        const target = tokens[i + 1]!;
        const read = logProbabilities[i - from]!;
        const logprob = read === -Infinity ? this.floor : read;
        scored.push({ token: target, logprob });
        sum += logprob;
      }
    }
    this.stats.scoredTokens += scored.length;
    return { logLikelihood: sum, promptTokens: start, tokens: scored };
  }

  /**
   * Splits the positions [from, end) into evaluation calls: at most a batch each, and at most
   * `scoredPerCall` positions from `firstScored` on (each may hand a whole-vocabulary
   * distribution to JavaScript, so this bounds how long a cancellation waits). No call gets a
   * single token unless there is only one (see scoreOne on batches of one).
   */
  private *chunks(from: number, end: number, firstScored: number, scoredPerCall = this.scoredPerCall): Generator<[number, number]> {
    while (from < end) {
      const unscored = Math.max(0, firstScored - from);
      const maxLen = Math.max(2, Math.min(this.chunk, unscored + scoredPerCall));
      let to = Math.min(end, from + maxLen);
      if (end - to === 1) to = to - from > 2 ? to - 1 : end;
      yield [from, to];
      from = to;
    }
  }

  /**
   * Generates a response, streaming chunks. The prompt is rendered like scoring renders it
   * ({prompt, attributes}: user text stays text) or taken as is ({raw}, special tokens parsed, as
   * Ollama's raw mode does: for test servers and tools, never for user text). Reported log-probs are
   * the model's own; sampling (top-k, then top-p, then temperature) happens on top of them, seeded.
   */
  async generate(
    input: GenerateInput,
    options: LlamaGenerateOptions = {},
    onChunk?: (chunk: GenerationChunk) => void,
    signal?: AbortSignal,
  ): Promise<GenerateResult> {
    throwIfAborted(signal);
    return this.mutex.run(() => this.generateLocked(input, options, onChunk, signal));
  }

  private async generateLocked(
    input: GenerateInput,
    options: LlamaGenerateOptions,
    onChunk: ((chunk: GenerationChunk) => void) | undefined,
    signal: AbortSignal | undefined,
  ): Promise<GenerateResult> {
    this.ensureOpen();
    throwIfAborted(signal);
    const seq = this.sequence;
    const prompt = 'raw' in input ? this.model.tokenize(input.raw, true) : this.promptTokens(input.prompt, input.attributes ?? []);
    if (prompt.length === 0) throw new Error('The prompt is empty.');
    if (prompt.length >= this.context.contextSize) {
      throw new Error(`The prompt is ${prompt.length} tokens long but the context holds ${this.context.contextSize}; shorten it or load the engine with a larger contextSize.`);
    }
    const seed = options.seed ?? randomInt(0, 2 ** 31);
    const random = seededRandom(seed);
    const sampling = {
      temperature: options.temperature ?? DEFAULT_TEMPERATURE,
      topK: options.topK ?? DEFAULT_TOP_K,
      topP: options.topP ?? DEFAULT_TOP_P,
    };
    const nTop = Math.max(0, Math.min(20, Math.floor(options.topLogprobs ?? 0)));
    const stops = [...(options.stop ?? []), ...(this.promptFormat.end === '' ? [] : [this.promptFormat.end])].filter((s) => s !== '');
    const maxTokens = options.maxTokens !== undefined && options.maxTokens >= 0 ? options.maxTokens : Infinity;

    // Prompt: reuse what the KV cache already holds, re-evaluate at least the last two tokens (the
    // last for its distribution; two so that it is computed as in a from-scratch run, see scoreOne).
    const t0 = performance.now();
    const keep = Math.max(0, Math.min(commonPrefixLength(seq.contextTokens, prompt), prompt.length - 2));
    if (seq.nextTokenIndex > keep) await seq.eraseContextTokenRanges([{ start: keep, end: seq.nextTokenIndex }]);
    let distribution: Map<Token, number> | undefined;
    for (const [from, to] of this.chunks(keep, prompt.length, prompt.length - 1)) {
      throwIfAborted(signal);
      const items: ControlledEvaluateInputItem[] = prompt
        .slice(from, to)
        .map((t, j) => (from + j === prompt.length - 1 ? [t, { generateNext: { probabilities: true } }] : t));
      const out = await seq.controlledEvaluate(items);
      if (to === prompt.length) distribution = out[items.length - 1]?.next.probabilities;
    }
    const t1 = performance.now();

    const generated: GeneratedToken[] = [];
    const ids: Token[] = [];
    let emitted = '';
    let pending: GeneratedToken[] = [];
    let doneReason: 'stop' | 'length' = 'length';
    let stoppedByString = false;
    const emit = (visible: string): void => {
      const delta = visible.slice(emitted.length);
      emitted = visible;
      if (onChunk !== undefined && (delta !== '' || pending.length > 0)) onChunk({ text: delta, tokens: pending });
      pending = [];
    };
    for (;;) {
      throwIfAborted(signal);
      if (distribution === undefined) throw new Error('llama.cpp returned no next-token distribution.');
      if (generated.length >= maxTokens) break;
      const sorted = [...distribution.entries()];
      const token = sampleToken(sorted, sampling, random);
      if (this.model.isEogToken(token as Token) || (this.endTokens.length === 1 && token === this.endTokens[0])) {
        doneReason = 'stop';
        break;
      }
      const info: GeneratedToken = {
        ...this.tokenLogprob(token, distribution.get(token as Token) ?? 0),
        ...(nTop > 0 ? { topLogprobs: sorted.slice(0, nTop).map(([t, p]) => this.tokenLogprob(t, p)) } : {}),
      };
      generated.push(info);
      pending.push(info);
      ids.push(token as Token);
      const full = this.model.detokenize(ids, false);
      const stopAt = firstStop(full, stops);
      if (stopAt >= 0) {
        emit(full.slice(0, stopAt));
        doneReason = 'stop';
        stoppedByString = true;
        break;
      }
      emit(full.slice(0, safeLength(full, stops)));
      if (generated.length >= maxTokens || seq.nextTokenIndex + 1 >= this.context.contextSize) break;
      const out = await seq.controlledEvaluate([[token as Token, { generateNext: { probabilities: true } }]]);
      distribution = out[0]?.next.probabilities;
    }
    // Show what was held back: it turned out not to start a stop string.
    if (!stoppedByString) emit(this.model.detokenize(ids, false));
    return {
      text: emitted,
      tokens: generated,
      doneReason,
      promptTokens: prompt.length,
      promptEvaluatedTokens: prompt.length - keep,
      promptMilliseconds: t1 - t0,
      generationMilliseconds: performance.now() - t1,
      seed,
    };
  }

  private tokenLogprob(id: number, probability: number): TokenLogprob {
    const bytes = this.tokenBytes(id);
    return {
      id,
      token: Buffer.from(bytes).toString('utf8'),
      bytes,
      // Generation reads float32 probabilities, which are 0 below about e^-103.
      logprob: probability > 0 ? Math.log(probability) : this.floor,
    };
  }

  /** The raw bytes of a token (special tokens as their text). */
  tokenBytes(id: number): number[] {
    let bytes = this.bytesCache.get(id);
    if (bytes === undefined) {
      const attributes = this.model.getTokenAttributes(id as Token);
      const entry = this.vocabulary?.[id];
      const decoded =
        entry !== undefined && !attributes.control ? vocabularyEntryBytes(entry, String(this.model.vocabularyType), attributes.byte) : undefined;
      bytes = Array.from(decoded ?? Buffer.from(this.model.detokenize([id as Token], true), 'utf8'));
      this.bytesCache.set(id, bytes);
    }
    return bytes;
  }

  /**
   * Unit-length embeddings of the texts, from an embedding context created on first use (texts
   * longer than its context are embedded by their beginning).
   */
  async embed(texts: ReadonlyArray<string>, signal?: AbortSignal): Promise<number[][]> {
    throwIfAborted(signal);
    return this.mutex.run(async () => {
      this.ensureOpen();
      const size = Math.min(this.context.contextSize, 2048);
      this.embeddingContext ??= this.model.createEmbeddingContext({ contextSize: size, threads: this.threads });
      const ctx = await this.embeddingContext;
      const out: number[][] = [];
      for (const text of texts) {
        throwIfAborted(signal);
        let input: string | Token[] = text === '' ? ' ' : text;
        // Longer texts are embedded by their beginning rather than refused.
        if (ctx.calculateInputLength(input) >= size) input = this.model.tokenize(input, false).slice(0, size - 8);
        const v = [...(await ctx.getEmbeddingFor(input)).vector];
        let norm = 0;
        for (const x of v) norm += x * x;
        norm = Math.sqrt(norm);
        out.push(norm > 0 ? v.map((x) => x / norm) : v);
      }
      return out;
    });
  }

  /** Frees the contexts and the model. The engine cannot be used afterwards. */
  dispose(): Promise<void> {
    if (this.disposed) return Promise.resolve();
    return this.mutex.run(async () => {
      if (this.disposed) return;
      this.disposed = true;
      if (this.embeddingContext !== undefined) await (await this.embeddingContext.catch(() => undefined))?.dispose();
      await this.context.dispose();
      await this.model.dispose();
    });
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  private vocabularySize(model: LlamaModel): number {
    const tokens = (model.fileInfo.metadata as unknown as { tokenizer?: { ggml?: { tokens?: unknown } } }).tokenizer?.ggml?.tokens;
    return Array.isArray(tokens) ? tokens.length : 32_000;
  }

  private ensureOpen(): void {
    if (this.disposed) throw new Error('This LlamaEngine has been disposed; load the model again.');
  }
}

/** Splits the ordered sequences into at most n contiguous runs of about equal token counts. */
function splitRuns(order: ReadonlyArray<PreparedSequence>, n: number): PreparedSequence[][] {
  if (n <= 1 || order.length <= 1) return [[...order]];
  const total = order.reduce((s, p) => s + p.tokens.length, 0);
  const runs: PreparedSequence[][] = [[]];
  let done = 0;
  for (const p of order) {
    if (runs.length < n && runs.at(-1)!.length > 0 && done >= (total * runs.length) / n) runs.push([]);
    runs.at(-1)!.push(p);
    done += p.tokens.length;
  }
  return runs;
}

function firstStop(text: string, stops: ReadonlyArray<string>): number {
  let best = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (best < 0 || i < best)) best = i;
  }
  return best;
}

/**
 * How much of `text` can be shown: all but a trailing replacement character (half a UTF-8
 * character whose rest is still to come) and a trailing piece that could start a stop string.
 */
function safeLength(text: string, stops: ReadonlyArray<string>): number {
  let n = text.length;
  while (n > 0 && text[n - 1] === '\uFFFD') n--;
  let hold = 0;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, n); k > hold; k--) {
      if (text.slice(n - k, n) === s.slice(0, k)) {
        hold = k;
        break;
      }
    }
  }
  return n - hold;
}
