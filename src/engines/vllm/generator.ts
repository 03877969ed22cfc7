/**
 * Generation (drafts, rewrites, completions) on a vLLM server: the prompt rendered by the one
 * renderer (promptFormat.ts), sent as text to /v1/completions (no special tokens added: the text
 * carries its own markers), streamed as server-sent events, stopped by the format's end marker.
 */
import type { GeneratedText, GenerationOptions, TextGenerator } from '../../core/ports';
import { PAPER_DECODING } from '../ollama/config';
import { renderPrompt } from '../promptFormat';
import { numberDefault } from '../../shared/settingsManifest';
import type { VllmClient } from './client';

export class VllmGenerator implements TextGenerator {
  constructor(
    private readonly client: VllmClient,
    /** Token limit when a call gives none. */
    private readonly maxTokens: number = numberDefault('generation.maxTokens'),
  ) {}

  async generate(
    prompt: string,
    attributes: ReadonlyArray<string>,
    options: GenerationOptions,
    onToken?: (text: string) => void,
    signal?: AbortSignal,
  ): Promise<GeneratedText> {
    const format = await this.client.promptFormat(signal);
    const body: Record<string, unknown> = {
      prompt: renderPrompt(format, prompt, attributes),
      max_tokens: options.maxTokens ?? this.maxTokens,
      temperature: options.temperature ?? PAPER_DECODING.temperature,
      top_p: options.topP ?? PAPER_DECODING.topP,
      top_k: options.topK ?? PAPER_DECODING.topK,
      add_special_tokens: false,
    };
    if (options.seed !== undefined) body.seed = options.seed;
    if (format.end !== '') body.stop = [format.end];
    const result = await this.client.completionStream(body, (text) => onToken?.(text), signal);
    return { text: result.text, stoppedAtLimit: result.finishReason === 'length' };
  }
}
