/**
 * The small interfaces through which the core talks to the outside world. Engines
 * (llama.cpp, Ollama, embedders) and storage implement them; the core never does I/O itself.
 */

/** One teacher-forced scoring request: log p(response | prompt with attributes). */
export interface ScoreRequest {
  /** The user's prompt x, without any attribute block. */
  readonly prompt: string;
  /** The attribute set A; empty means the base prompt. */
  readonly attributes: ReadonlyArray<string>;
  /** The response whose tokens are scored. */
  readonly response: string;
  /**
   * Early stopping: when the true score is below this, the scorer may stop before the end and
   * return any v with true <= v < stopBelow (e.g. the sum so far: every term is a log-probability,
   * so <= 0). At or above it the score is exact. Scorers that ignore it stay correct.
   */
  readonly stopBelow?: number;
  /**
   * Screening: score only the first `prefixTokens` scored tokens (response tokens, then the end
   * marker). A scorer that cannot may score all of them.
   */
  readonly prefixTokens?: number;
}

/**
 * Scores a batch of requests: for each, the summed log-likelihood of every response token
 * given everything before it. Requests sharing a prompt may be scored with a shared prefix.
 * Implementations must reject with an AbortError-like error when the signal fires.
 */
export interface LogLikelihoodScorer {
  scoreBatch(requests: ReadonlyArray<ScoreRequest>, signal?: AbortSignal): Promise<number[]>;
}

export interface Embedder {
  /** Stable identifier (model name) stored with every vector it produced. */
  readonly id: string;
  embed(texts: ReadonlyArray<string>, signal?: AbortSignal): Promise<number[][]>;
  /**
   * Optional: embeds texts with what the embedder learns from a corpus of the user's own
   * prompts (e.g. term weights). Vectors are comparable only with others made from the same corpus.
   */
  embedInCorpus?(texts: ReadonlyArray<string>, corpus: ReadonlyArray<string>, signal?: AbortSignal): Promise<number[][]>;
}

export interface GenerationOptions {
  temperature?: number;
  topK?: number;
  topP?: number;
  maxTokens?: number;
  seed?: number;
}

/** What a generator wrote, and whether it ran into the token limit (so the text may be cut short). */
export interface GeneratedText {
  readonly text: string;
  readonly stoppedAtLimit: boolean;
}

/** Streams a response for a prompt (the engine applies the chat template). */
export interface TextGenerator {
  generate(
    prompt: string,
    attributes: ReadonlyArray<string>,
    options: GenerationOptions,
    onToken?: (text: string) => void,
    signal?: AbortSignal,
  ): Promise<GeneratedText>;
}

/** A recorded choice: the user preferred `chosen` over `rejected` for `prompt`. */
export interface PreferencePair {
  readonly id: string;
  readonly prompt: string;
  readonly chosen: string;
  readonly rejected: string;
}

export function abortError(message = 'The operation was cancelled.'): Error {
  const err = new Error(message);
  err.name = 'AbortError';
  return err;
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw abortError();
}

/** Waits `ms`, or rejects with an AbortError as soon as the signal fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(abortError());
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortError());
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
