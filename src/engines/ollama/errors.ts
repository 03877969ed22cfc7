/**
 * Typed errors for everything that can go wrong between the extension and Ollama. Each carries
 * a user-facing `message` (what happened, in plain words) and an `action` (what to do about it,
 * with the exact command where there is one), so the UI can show both without parsing text.
 */

/**
 * Ollama 0.12.11 is the first release whose /api/generate and /api/chat return `logprobs` /
 * `top_logprobs` (release notes of github.com/ollama/ollama/releases/tag/v0.12.11, Nov 2025:
 * "Ollama's API and the OpenAI-compatible API now support log probabilities"; client libraries
 * added the fields against that release, e.g. ollama-python PR #601, BerriAI/litellm #17165,
 * OllamaSharp PR #345). The OpenAPI spec we test against (commit fb3076099) has the fields but no
 * version history. Older servers silently ignore the fields, hence also
 * OllamaLogprobsUnavailableError for a reply without them.
 */
export const MIN_LOGPROBS_VERSION = '0.12.11';

/**
 * How background work should treat the error (read by services/indexingErrors.ts): retry later
 * ('transient'), give up on this item ('pair'), or stop until the user acts ('fatal').
 */
export type OllamaErrorClass = 'transient' | 'pair' | 'fatal';

export abstract class OllamaError extends Error {
  /** What the user can do about it: a sentence, usually with a command to run. */
  abstract readonly action: string;
  abstract readonly indexingClass: OllamaErrorClass;
  /** Where the problem happened (the configured host). */
  readonly host: string;

  protected constructor(message: string, host: string, options?: { cause?: unknown }) {
    super(message, options);
    this.host = host;
  }

  /** Message and action together, for places that can show only one string. */
  get userMessage(): string {
    return `${this.message} ${this.action}`;
  }
}

/** Nothing answers at the configured host (connection refused, reset, host unknown). */
export class OllamaNotRunningError extends OllamaError {
  override readonly name = 'OllamaNotRunningError';
  readonly indexingClass = 'transient';
  readonly action: string;
  /** The socket-level code, e.g. ECONNREFUSED, ENOTFOUND, ECONNRESET. */
  readonly code: string | undefined;

  constructor(host: string, code: string | undefined, cause?: unknown) {
    super(`Ollama is not reachable at ${host}${code === undefined ? '' : ` (${code})`}.`, host, { cause });
    this.code = code;
    this.action = isLoopback(host)
      ? 'Start it with `ollama serve` (or open the Ollama app), then try again. If Ollama runs elsewhere, set `exact.ollama.host` (or OLLAMA_HOST) to its address.'
      : `Check that Ollama runs on that machine and listens on the network (start it there with \`OLLAMA_HOST=0.0.0.0 ollama serve\`), or fix \`exact.ollama.host\`.`;
  }
}

/** The server answered, but does not have the model. */
export class OllamaModelNotFoundError extends OllamaError {
  override readonly name = 'OllamaModelNotFoundError';
  readonly indexingClass = 'fatal';
  readonly action: string;
  readonly model: string;
  /** 'generation' or 'embedding': which setting names this model. */
  readonly role: 'generation' | 'embedding';

  constructor(host: string, model: string, role: 'generation' | 'embedding' = 'generation', cause?: unknown) {
    super(`The ${role} model '${model}' is not available in Ollama at ${host}.`, host, { cause });
    this.model = model;
    this.role = role;
    const setting = role === 'generation' ? 'exact.ollama.model' : 'exact.ollama.embeddingModel';
    this.action = `Download it with \`ollama pull ${model}\`, or choose an installed model in \`${setting}\` (\`ollama list\` shows them).`;
  }
}

/** The server is older than the first release with log-probabilities (needed by the fallback scorer). */
export class OllamaVersionTooOldError extends OllamaError {
  override readonly name = 'OllamaVersionTooOldError';
  readonly indexingClass = 'fatal';
  readonly action: string;
  readonly version: string;
  readonly required: string;

  constructor(host: string, version: string, required: string = MIN_LOGPROBS_VERSION, feature = 'token log-probabilities') {
    super(`Ollama ${version} at ${host} is too old for ${feature}; version ${required} or newer is needed.`, host);
    this.version = version;
    this.required = required;
    this.action = `Update Ollama to ${required} or newer (https://ollama.com/download; on Linux re-run the install script), or let EXACT score with llama.cpp on this machine (\`exact.scorer\`: "llama.cpp").`;
  }
}

/** A request got no answer (or no next token) in time. */
export class OllamaTimeoutError extends OllamaError {
  override readonly name = 'OllamaTimeoutError';
  /** A client-side timeout: Ollama may be busy or loading; the same request can work later. */
  readonly indexingClass = 'transient';
  readonly action: string;
  /** Which wait ran out: the whole request, the first token (model load), a later token, or the whole stream. */
  readonly phase: TimeoutPhase;
  readonly timeoutMs: number;

  constructor(host: string, phase: TimeoutPhase, timeoutMs: number) {
    const seconds = `${timeoutMs < 10_000 ? String(Math.round(timeoutMs / 100) / 10) : Math.round(timeoutMs / 1000)} s`;
    const message =
      phase === 'first-token'
        ? `sent no first token (the model may still be loading) within ${seconds}`
        : phase === 'next-token'
          ? `sent no next token within ${seconds}`
          : phase === 'stream'
            ? `did not finish its answer within ${seconds}`
            : `sent no answer within ${seconds}`;
    super(`Ollama at ${host} ${message}.`, host);
    this.phase = phase;
    this.timeoutMs = timeoutMs;
    this.action =
      phase === 'first-token'
        ? 'Large models take long to load the first time: try again, or raise `exact.ollama.loadTimeoutSeconds`.'
        : phase === 'request'
          ? 'Check that the machine running Ollama is not overloaded, or raise `exact.ollama.requestTimeoutSeconds`.'
          : phase === 'stream'
            ? 'The answer went on far longer than asked for: check the model and its stop settings (`ollama show`), then try again.'
            : 'Generation stalled: check that the machine running Ollama is not overloaded or out of memory (`ollama ps`), then try again.';
  }
}

export type TimeoutPhase = 'request' | 'first-token' | 'next-token' | 'stream';

/** The server answered with an error we have no more specific class for. */
export class OllamaRequestError extends OllamaError {
  override readonly name = 'OllamaRequestError';
  readonly indexingClass: OllamaErrorClass;
  readonly action: string;
  readonly status: number | undefined;
  /** The server's own error text (`{"error": ...}`). */
  readonly serverMessage: string;

  /** `disconnected`: the answer broke off mid-stream (as when the runner crashes), rather than an error reply. */
  constructor(host: string, endpoint: string, status: number | undefined, serverMessage: string, cause?: unknown, disconnected = false) {
    super(`Ollama at ${host} rejected ${endpoint}${status === undefined ? '' : ` (HTTP ${status})`}: ${serverMessage}`, host, { cause });
    this.status = status;
    this.serverMessage = serverMessage;
    this.indexingClass =
      disconnected || (status !== undefined && (status === 408 || status === 425 || status === 429 || status >= 500)) ? 'transient' : status === 404 ? 'fatal' : 'pair';
    this.action =
      disconnected
        ? 'The connection broke off mid-answer: Ollama may have crashed or run out of memory. Check `ollama ps` and the server log, then try again.'
        : 'See the Ollama server log for details (Linux: `journalctl -u ollama`; macOS: ~/.ollama/logs/server.log; Windows: %LOCALAPPDATA%\\Ollama\\server.log).';
  }
}

/** The server answered, but without the log-probabilities we asked for. */
export class OllamaLogprobsUnavailableError extends OllamaError {
  override readonly name = 'OllamaLogprobsUnavailableError';
  readonly indexingClass = 'fatal';
  readonly action: string;

  constructor(host: string, model: string) {
    super(`Ollama at ${host} returned no log-probabilities for '${model}'.`, host);
    this.action =
      `Its version is recent enough, so the model's runner or a proxy in between drops them. Try another model, ` +
      `or score in-process: set \`exact.scorer\` to "llama.cpp" and \`exact.modelPath\` to the model's GGUF file on this machine.`;
  }
}

/** The server answered with a value that cannot be right (a log-probability that is not a number ≤ 0, an embedding with NaN...). */
export class OllamaInvalidAnswerError extends OllamaError {
  override readonly name = 'OllamaInvalidAnswerError';
  readonly indexingClass = 'fatal';
  readonly action: string;

  constructor(host: string, endpoint: string, what: string) {
    super(`Ollama at ${host} sent an impossible value in ${endpoint}: ${what}. Nothing from this answer was used.`, host);
    this.action = 'A proxy or a modified server between EXACT and Ollama may alter answers: connect to Ollama directly, or check its version (`ollama -v`) and server log.';
  }
}

export function isLoopback(host: string): boolean {
  try {
    const h = new URL(host).hostname.replace(/^\[|\]$/g, '');
    return h === 'localhost' || h === '::1' || h.startsWith('127.') || h === '0.0.0.0';
  } catch {
    return false;
  }
}
