/**
 * Embeddings from Ollama's /api/embed, and the choice between them and the local fallback.
 */
import { throwIfAborted, type Embedder } from '../../core/ports';
import { LocalHashEmbedder } from '../embeddings';
import type { OllamaClient } from './client';
import type { OllamaConfig } from './config';
import { OllamaModelNotFoundError } from './errors';

export class OllamaEmbedder implements Embedder {
  readonly id: string;

  constructor(
    private readonly client: OllamaClient,
    readonly model: string,
    private readonly batchSize = 32,
  ) {
    this.id = `ollama:${model}`;
  }

  async embed(texts: ReadonlyArray<string>, signal?: AbortSignal): Promise<number[][]> {
    const out: number[][] = [];
    for (let i = 0; i < texts.length; i += this.batchSize) {
      throwIfAborted(signal);
      out.push(...(await this.client.embed(this.model, texts.slice(i, i + this.batchSize), signal)));
    }
    return out;
  }
}

/**
 * The scoring and embedding model names the configuration stands for, without asking Ollama:
 * what the memory is opened with while Ollama is down, so the profile, export, import and reset
 * still work. (When the configured embedding model turns out not to be pulled, chooseEmbedder
 * falls back to the local embedder, whose id differs: entries then show as needing re-indexing.)
 */
export function configuredModels(config: Pick<OllamaConfig, 'model' | 'embeddingModel'>): { model: string; embeddingModel: string } {
  const model = config.model.trim() === '' ? '(no model set)' : config.model.trim();
  return { model, embeddingModel: config.embeddingModel.trim() === '' ? new LocalHashEmbedder().id : `ollama:${config.embeddingModel.trim()}` };
}

export interface EmbedderChoice {
  readonly embedder: Embedder;
  /** 'ollama' when the configured embedding model answers, else 'local'. */
  readonly kind: 'ollama' | 'local';
  /** Why the local fallback is used (undefined for 'ollama'): show it to the user once. */
  readonly reason?: string;
}

/**
 * The Ollama embedder when an embedding model is configured and installed, otherwise the local
 * fallback (documented in ../embeddings.ts) with the reason. Connection problems are thrown, not
 * hidden: a fallback chosen because Ollama was briefly down would silently mix vector spaces.
 */
export async function chooseEmbedder(client: OllamaClient, signal?: AbortSignal): Promise<EmbedderChoice> {
  const model = client.config.embeddingModel;
  if (model === '') {
    return { embedder: new LocalHashEmbedder(), kind: 'local', reason: 'No embedding model is configured (exact.ollama.embeddingModel); using the built-in local embedder.' };
  }
  try {
    await client.show(model, signal, 'embedding');
  } catch (err) {
    if (err instanceof OllamaModelNotFoundError) {
      return { embedder: new LocalHashEmbedder(), kind: 'local', reason: `${err.message} Using the built-in local embedder until then. ${err.action}` };
    }
    throw err;
  }
  return { embedder: new OllamaEmbedder(client, model), kind: 'ollama' };
}
