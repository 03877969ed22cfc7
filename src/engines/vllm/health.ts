/**
 * The setup check for a vLLM server: reachable, the model served, its prompt format, and whether
 * it returns prompt log-probabilities (one tiny scoring request). Failures are VllmErrors that
 * say what to do.
 */
import type { PromptFormat } from '../promptFormat';
import type { VllmClient } from './client';
import { VllmError } from './client';
import { VllmScorer } from './scorer';

export interface VllmHealth {
  readonly host: string;
  readonly model: string;
  readonly served: string[];
  readonly maxModelLen: number | undefined;
  readonly promptFormat: PromptFormat;
  /** Whether the server returned prompt log-probabilities (exact scoring works). */
  readonly promptLogprobs: boolean;
}

export async function checkVllmHealth(client: VllmClient, signal?: AbortSignal): Promise<VllmHealth> {
  const served = await client.models(signal);
  const model = await client.model(signal);
  const entry = served.find((m) => m.id === model);
  if (entry === undefined) {
    throw new VllmError(
      'model-not-found',
      client.host,
      `The vLLM server at ${client.host} does not serve '${model}' (it serves ${served.map((m) => m.id).join(', ') || 'nothing'}).`,
      'Set `exact.vllm.model` to one of those names, or leave it empty to use the server\'s only model.',
    );
  }
  const promptFormat = await client.promptFormat(signal);
  let promptLogprobs = true;
  try {
    await new VllmScorer(client, { promptFormat }).scoreBatch([{ prompt: 'Setup check.', attributes: [], response: 'OK.' }], signal);
  } catch (e) {
    if (!(e instanceof VllmError && e.kind === 'no-prompt-logprobs')) throw e;
    promptLogprobs = false;
  }
  return { host: client.host, model, served: served.map((m) => m.id), maxModelLen: entry.maxModelLen, promptFormat, promptLogprobs };
}
