/**
 * How the background indexer treats an error from the scorer, the embedder or storage:
 *
 * - 'abort':     the run was cancelled; stop quietly.
 * - 'transient': worth retrying with backoff (connection refused/reset, timeouts, HTTP 429/5xx,
 *                a busy lock). When retries run out the run stops; the pair stays pending.
 * - 'pair':      this pair cannot be processed (too long for the context, a bad response);
 *                report it, skip it for the rest of this session, go on with the others.
 * - 'fatal':     nothing will work until the user acts (model missing, embedding size changed);
 *                report it and stop the run; the pair stays pending.
 *
 * Engines can say it themselves: an error (or its cause) with `indexingClass` set to one of
 * these, or `transient: true`, wins over the heuristics below. Unknown errors count as 'pair'.
 */

export type IndexingErrorClass = 'abort' | 'transient' | 'pair' | 'fatal';

const TRANSIENT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EBUSY',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_SOCKET',
]);

const TRANSIENT_STATUS = new Set([408, 425, 429, 500, 502, 503, 504]);

const FATAL_MESSAGE = /model ['"]?[^'"]*['"]? not found|no such model|try pulling it|pull the model|model file[^.]*(missing|not found|does not exist)|failed to load model|unknown model|DimensionMismatch|dimensions but the stored ones/i;
const TRANSIENT_MESSAGE = /fetch failed|socket hang up|ECONNREFUSED|ECONNRESET|timed out|timeout|temporarily unavailable|try again|server (is )?busy|overloaded|Timed out waiting for the lock/i;
const PAIR_MESSAGE = /context (size|length|window)|too many tokens|too long|exceeds the (context|maximum)/i;

function chain(err: unknown): unknown[] {
  const out: unknown[] = [];
  let cur: unknown = err;
  for (let depth = 0; depth < 5 && cur !== undefined && cur !== null; depth++) {
    out.push(cur);
    cur = (cur as { cause?: unknown }).cause;
  }
  return out;
}

export function classifyIndexingError(err: unknown): IndexingErrorClass {
  const links = chain(err);
  for (const e of links) {
    if (typeof e !== 'object' || e === null) continue;
    const x = e as { name?: unknown; code?: unknown; indexingClass?: unknown; transient?: unknown };
    if (x.name === 'AbortError' || x.code === 'ABORT_ERR') return 'abort';
    if (x.indexingClass === 'transient' || x.indexingClass === 'pair' || x.indexingClass === 'fatal' || x.indexingClass === 'abort') return x.indexingClass;
    if (x.transient === true) return 'transient';
  }
  for (const e of links) {
    if (typeof e !== 'object' || e === null) continue;
    const x = e as { name?: unknown; code?: unknown; status?: unknown; status_code?: unknown; statusCode?: unknown; message?: unknown };
    if (x.name === 'DimensionMismatchError') return 'fatal';
    if (x.name === 'TimeoutError' || x.name === 'LockTimeoutError') return 'transient';
    if (typeof x.code === 'string' && TRANSIENT_CODES.has(x.code)) return 'transient';
    const status = [x.status, x.status_code, x.statusCode].find((s) => typeof s === 'number') as number | undefined;
    if (status !== undefined) {
      if (TRANSIENT_STATUS.has(status)) return 'transient';
      if (status === 404) return 'fatal';
      if (status >= 400 && status < 500) return 'pair';
    }
    const message = typeof x.message === 'string' ? x.message : '';
    if (FATAL_MESSAGE.test(message)) return 'fatal';
    if (TRANSIENT_MESSAGE.test(message)) return 'transient';
    if (PAIR_MESSAGE.test(message)) return 'pair';
  }
  return 'pair';
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const suffix = cause instanceof Error && !err.message.includes(cause.message) ? ` (${cause.message})` : '';
    return `${err.message}${suffix}`;
  }
  return String(err);
}
