/**
 * One health check for the whole Ollama setup, through /api/version, /api/tags and /api/show.
 * Each failure is a typed error from ./errors with a user-facing message and an action.
 */
import { detectPromptFormat, type PromptFormat } from '../promptFormat';
import { modelfileFromPath, versionAtLeast, type OllamaClient } from './client';
import { MIN_LOGPROBS_VERSION, OllamaModelNotFoundError, OllamaVersionTooOldError } from './errors';

export interface OllamaHealth {
  readonly host: string;
  readonly version: string;
  /** Whether this server returns log-probabilities (>= MIN_LOGPROBS_VERSION). */
  readonly supportsLogprobs: boolean;
  readonly model: string;
  readonly promptFormat: PromptFormat;
  /** The FROM path of the model's modelfile: its GGUF blob on the Ollama machine. */
  readonly ggufPath: string | undefined;
  readonly embeddingModel: string;
  /** '' when none is configured; otherwise whether it is installed. */
  readonly embeddingModelAvailable: boolean;
}

/** Model names as Ollama matches them: a missing tag means ':latest'. */
export function sameModelName(a: string, b: string): boolean {
  const norm = (s: string): string => {
    const t = s.trim().toLowerCase();
    return /:[^/]*$/.test(t) ? t : `${t}:latest`;
  };
  return norm(a) === norm(b);
}

/**
 * Checks server, version, model and embedding model. Throws OllamaNotRunningError,
 * OllamaModelNotFoundError (generation model) or, when `requireLogprobs`, OllamaVersionTooOldError.
 * A missing embedding model is reported in the result (the local embedder takes over), not thrown.
 */
export async function checkOllamaHealth(
  client: OllamaClient,
  options: { requireLogprobs?: boolean; signal?: AbortSignal } = {},
): Promise<OllamaHealth> {
  const { signal } = options;
  const { model, embeddingModel } = client.config;
  const version = await client.version(signal);
  const supportsLogprobs = versionAtLeast(version, MIN_LOGPROBS_VERSION);
  if (options.requireLogprobs === true && !supportsLogprobs) throw new OllamaVersionTooOldError(client.host, version);

  const installed = await client.listModels(signal);
  const has = (name: string): boolean => installed.some((m) => sameModelName(m.name, name) || sameModelName(m.model, name));
  // The generation model is looked up with /api/show, which resolves what /api/tags may not list
  // (aliases, remote models); a 404 there is the model-not-found error.
  const info = await client.show(model, signal);

  let embeddingModelAvailable = false;
  if (embeddingModel !== '') {
    embeddingModelAvailable = has(embeddingModel);
    if (!embeddingModelAvailable) {
      try {
        await client.show(embeddingModel, signal, 'embedding');
        embeddingModelAvailable = true;
      } catch (err) {
        if (!(err instanceof OllamaModelNotFoundError)) throw err;
      }
    }
  }

  return {
    host: client.host,
    version,
    supportsLogprobs,
    model,
    promptFormat: detectPromptFormat(info.template),
    ggufPath: modelfileFromPath(info.modelfile),
    embeddingModel,
    embeddingModelAvailable,
  };
}
