/**
 * Settings of the Ollama connection, their defaults, and how OLLAMA_HOST is read. Defaults that
 * are also settings come from package.json (settingsManifest.ts).
 *
 * The decoding defaults there are the paper's (EXACT §5, "For generations, we use sampling with
 * temperature 0.7, top-k=50, top-p=0.95, and max_new_tokens=200").
 */
import { numberDefault, stringDefault } from '../../shared/settingsManifest';

export interface OllamaConfig {
  /** Base URL, e.g. http://127.0.0.1:11434. The client talks to this host and nothing else. */
  readonly host: string;
  /** Generation model (also the model the fallback scorer asks for log-probabilities). */
  readonly model: string;
  /** Embedding model for /api/embed; '' means: use the local fallback embedder. */
  readonly embeddingModel: string;
  /** Context length sent as `options.num_ctx` with every generate/chat/embed request. */
  readonly numCtx: number;
  /** Maximum new tokens (`options.num_predict`) for generation. */
  readonly maxTokens: number;
  /** How long Ollama keeps the model loaded after a request (`keep_alive`). */
  readonly keepAlive: string;
  /** Limit for short metadata requests (/api/version, /api/tags, /api/show). */
  readonly requestTimeoutMs: number;
  /** Limit until the first token (or the embedding answer) arrives; covers a cold model load. */
  readonly firstTokenTimeoutMs: number;
  /** Limit between two streamed chunks once generation has started. */
  readonly idleTimeoutMs: number;
  /** Limit for a whole streamed answer, first token included. */
  readonly streamDeadlineMs: number;
  /** Most characters of text one streamed answer may bring; the stream is closed there. */
  readonly maxResponseChars: number;
}

const DEFAULT_OLLAMA_PORT = 11434;

export const OLLAMA_DEFAULTS = {
  model: stringDefault('ollama.model'),
  embeddingModel: stringDefault('ollama.embeddingModel'),
  numCtx: numberDefault('ollama.contextLength'),
  maxTokens: numberDefault('generation.maxTokens'),
  keepAlive: '10m',
  requestTimeoutMs: 1000 * numberDefault('ollama.requestTimeoutSeconds'),
  firstTokenTimeoutMs: 1000 * numberDefault('ollama.loadTimeoutSeconds'),
  idleTimeoutMs: 60_000,
  streamDeadlineMs: 900_000,
  maxResponseChars: 400_000,
} as const;

/** Node's timers hold at most 2^31 - 1 ms; a longer delay fires at once (with a warning). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Bounds every number of the configuration is clamped to. The settings' schema maxima in
 * package.json are these (seconds there); the clamp also covers values the schema does not stop
 * (settings.json edited by hand, OLLAMA_* values, callers outside VS Code).
 */
export const OLLAMA_BOUNDS = {
  numCtx: { min: 256, max: 1_048_576 },
  maxTokens: { min: 1, max: 131_072 },
  requestTimeoutMs: { min: 1, max: 3_600_000 },
  firstTokenTimeoutMs: { min: 1, max: 3_600_000 },
  idleTimeoutMs: { min: 1, max: 3_600_000 },
  streamDeadlineMs: { min: 1, max: MAX_TIMER_MS },
  maxResponseChars: { min: 1, max: 20_000_000 },
} as const;

/** `value` within [min, max]; the default when it is not a positive finite number. */
export function clampPositive(value: unknown, bounds: { readonly min: number; readonly max: number }, fallback: number): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) return fallback;
  return Math.min(bounds.max, Math.max(bounds.min, value));
}

/** The paper's decoding configuration (the settings' defaults). */
export const PAPER_DECODING = {
  temperature: numberDefault('generation.temperature'),
  topK: numberDefault('generation.topK'),
  topP: numberDefault('generation.topP'),
} as const;

/**
 * The Ollama base URL from an OLLAMA_HOST-style value, following Ollama's own rules
 * (envconfig.Host): no scheme means http; "http://" without a port means 80, "https://" 443,
 * otherwise 11434; an empty host means 127.0.0.1. A server bind address (0.0.0.0, ::) is turned
 * into the loopback address a client can connect to.
 */
export function parseOllamaHost(value: string | undefined): string {
  const s = (value ?? '').trim();
  let scheme = 'http';
  let rest = s;
  let defaultPort = String(DEFAULT_OLLAMA_PORT);
  const cut = s.indexOf('://');
  if (cut >= 0) {
    scheme = s.slice(0, cut).toLowerCase();
    rest = s.slice(cut + 3);
    if (scheme === 'http') defaultPort = '80';
    else if (scheme === 'https') defaultPort = '443';
  }
  const slash = rest.indexOf('/');
  const path = slash >= 0 ? rest.slice(slash).replace(/\/+$/, '') : '';
  const hostport = slash >= 0 ? rest.slice(0, slash) : rest;

  let host = '127.0.0.1';
  let port = defaultPort;
  const bracketed = /^\[([^\]]*)\](?::(\d*))?$/.exec(hostport);
  if (bracketed !== null) {
    host = bracketed[1] || host;
    if (bracketed[2]) port = bracketed[2];
  } else if (hostport.split(':').length === 2) {
    const [h, p] = hostport.split(':') as [string, string];
    if (h !== '') host = h;
    if (p !== '') port = p;
  } else if (hostport !== '') {
    host = hostport; // a name or a bare IPv6 address
  }
  if (host === '0.0.0.0') host = '127.0.0.1';
  if (host === '::') host = '::1';
  const hostPart = host.includes(':') ? `[${host}]` : host;
  return `${scheme}://${hostPart}:${port}${path}`;
}

/** The host to use when the user set none: OLLAMA_HOST if set, else http://127.0.0.1:11434. */
export function defaultOllamaHost(env: Readonly<Record<string, string | undefined>> = process.env): string {
  return parseOllamaHost(env.OLLAMA_HOST);
}

/** A complete configuration from partial settings (missing ones take the defaults above). */
export function resolveOllamaConfig(
  partial: Partial<OllamaConfig> = {},
  env: Readonly<Record<string, string | undefined>> = process.env,
): OllamaConfig {
  const pick = <K extends keyof OllamaConfig>(k: K, d: OllamaConfig[K]): OllamaConfig[K] =>
    partial[k] === undefined || partial[k] === null ? d : (partial[k] as OllamaConfig[K]);
  const bounded = <K extends keyof typeof OLLAMA_BOUNDS>(k: K): number => clampPositive(partial[k], OLLAMA_BOUNDS[k], OLLAMA_DEFAULTS[k]);
  const host = partial.host !== undefined && partial.host.trim() !== '' ? parseOllamaHost(partial.host) : defaultOllamaHost(env);
  return {
    host,
    model: pick('model', OLLAMA_DEFAULTS.model).trim(),
    embeddingModel: pick('embeddingModel', OLLAMA_DEFAULTS.embeddingModel).trim(),
    numCtx: Math.floor(bounded('numCtx')),
    maxTokens: Math.floor(bounded('maxTokens')),
    keepAlive: pick('keepAlive', OLLAMA_DEFAULTS.keepAlive),
    requestTimeoutMs: bounded('requestTimeoutMs'),
    firstTokenTimeoutMs: bounded('firstTokenTimeoutMs'),
    idleTimeoutMs: bounded('idleTimeoutMs'),
    streamDeadlineMs: bounded('streamDeadlineMs'),
    maxResponseChars: Math.floor(bounded('maxResponseChars')),
  };
}
