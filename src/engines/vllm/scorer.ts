/**
 * Exact teacher-forced scoring on a vLLM server: log p(y | x, A) from the log-probabilities vLLM
 * reports for the tokens of a prompt it is sent (`prompt_logprobs`), one HTTP request per batch.
 *
 * A request (x, A, y) becomes the text renderPrompt(format, x, A) + y' + end marker, the same
 * renderer and the same scored part as the in-process llama.cpp engine (llamaEngine.ts): the
 * response tokens and the format's end marker. A batch (a greedy round: every candidate set, both
 * responses) is ONE /v1/completions request with a list of prompts, `prompt_logprobs: 0` (each
 * prompt token's own log-probability), `max_tokens: 1` (vLLM must generate something) and no
 * added special tokens (the rendered text carries its own BOS where the format has one).
 * y' is markerFreeText(y): the server parses special tokens anywhere in the string, so a control
 * marker inside a response would become the model's control token; broken up, it stays text (as
 * in the Ollama fallback; llama.cpp in-process tokenizes the unchanged text with specials off).
 *
 * Exact token boundaries. The responses are tokenized once per pair, both in one /tokenize call
 * (each after the end marker, a special token, so it is tokenized as the model generates it after
 * a turn marker: no SentencePiece space prefix). The server's tokenization of every scored prompt
 * must END with exactly those ids followed by the end marker's: that is checked id by id (vLLM
 * reports the prompt's ids), so the scored span is known, never guessed. A sequence whose
 * tokenization merges across the prompt/response seam (rare) is sent again as token ids,
 * tokenize(rendered prompt) ++ response ids ++ end ids, in one more request.
 *
 * Requests per choice (k = 3, greedy, plain format excluded): one /tokenize for both responses
 * plus one /v1/completions per round = 4. Once per scorer: the served model name when none is
 * set (/v1/models), the prompt format (/tokenize with a chat message) and the end marker's ids.
 *
 * Numbers. Every log-probability must be a finite number <= 0 (a tiny positive rounding error up
 * to 1e-6 is read as 0); token ids non-negative integers; one choice per prompt. Each term is
 * clamped from below at `logProbFloor` (default -100, as the llama.cpp engine does).
 */
import { abortError, throwIfAborted, type LogLikelihoodScorer, type ScoreRequest } from '../../core/ports';
import { markerFreeText, renderPrompt, type PromptFormat } from '../promptFormat';
import { VllmError, type CompletionChoice, type VllmClient } from './client';

export interface VllmScorerOptions {
  /** Lowest log-probability one token contributes (default -100, like LlamaEngine). */
  readonly logProbFloor?: number;
  /** Score the format's end-of-turn marker after the response (default true, like LlamaEngine). */
  readonly scoreEnd?: boolean;
  /** The prompt format; by default detected from the model's chat template on the server. */
  readonly promptFormat?: PromptFormat;
}

export interface VllmTokenScore {
  readonly token: number;
  readonly logprob: number;
}

export interface VllmScoreDetail {
  readonly logLikelihood: number;
  /** The scored tokens: the response, then the end marker when it is scored. */
  readonly tokens: VllmTokenScore[];
}

export interface VllmScorerStats {
  /** scoreBatch calls. */
  batches: number;
  sequences: number;
  /** Sequences sent again as token ids because the server's tokenization crossed the seam. */
  reSentAsTokenIds: number;
}

const RESPONSE_CACHE = 64;
const POSITIVE_TOLERANCE = 1e-6;

export class VllmScorer implements LogLikelihoodScorer {
  readonly stats: VllmScorerStats = { batches: 0, sequences: 0, reSentAsTokenIds: 0 };
  private readonly floor: number;
  private readonly scoreEnd: boolean;
  private readonly responseIds = new Map<string, number[]>();
  private endIds: number[] | undefined;

  constructor(
    private readonly client: VllmClient,
    private readonly options: VllmScorerOptions = {},
  ) {
    this.floor = options.logProbFloor ?? -100;
    this.scoreEnd = options.scoreEnd ?? true;
  }

  async scoreBatch(requests: ReadonlyArray<ScoreRequest>, signal?: AbortSignal): Promise<number[]> {
    return (await this.scoreDetailed(requests, signal)).map((d) => d.logLikelihood);
  }

  async scoreDetailed(requests: ReadonlyArray<ScoreRequest>, signal?: AbortSignal): Promise<VllmScoreDetail[]> {
    throwIfAborted(signal);
    if (requests.length === 0) return [];
    this.stats.batches += 1;
    this.stats.sequences += requests.length;
    const format = this.options.promptFormat ?? (await this.client.promptFormat(signal));
    const end = this.scoreEnd ? format.end : '';
    const responses = requests.map((r) => markerFreeText(r.response));
    const responseIds = await this.tokenizeResponses(format, [...new Set(responses)], signal);
    const endIds = end === '' ? [] : this.endIds!;
    const tails = responses.map((y) => [...responseIds.get(y)!, ...endIds]);
    const rendered = requests.map((r) => renderPrompt(format, r.prompt, r.attributes));

    const choices = await this.complete(rendered.map((p, i) => p + responses[i]! + end), signal);
    const results: Array<VllmScoreDetail | undefined> = choices.map((c, i) => this.readTail(c, tails[i]!, i));

    const seam = results.flatMap((r, i) => (r === undefined ? [i] : []));
    if (seam.length > 0) {
      this.stats.reSentAsTokenIds += seam.length;
      const promptIds = new Map<string, number[]>();
      for (const i of seam) {
        if (!promptIds.has(rendered[i]!)) promptIds.set(rendered[i]!, await this.client.tokenize(rendered[i]!, signal));
      }
      const again = await this.complete(seam.map((i) => [...promptIds.get(rendered[i]!)!, ...tails[i]!]), signal);
      seam.forEach((i, j) => {
        const detail = this.readTail(again[j]!, tails[i]!, i);
        if (detail === undefined) throw this.client.badResponse('/v1/completions', `prompt ${i} sent as token ids came back with other ids`);
        results[i] = detail;
      });
    }
    return results as VllmScoreDetail[];
  }

  /** One /v1/completions request scoring every prompt (texts or token-id lists). */
  private async complete(prompts: ReadonlyArray<string | number[]>, signal: AbortSignal | undefined): Promise<CompletionChoice[]> {
    const choices = await this.client.completions(
      { prompt: prompts, max_tokens: 1, temperature: 0, n: 1, prompt_logprobs: 0, add_special_tokens: false, return_token_ids: true },
      signal,
    );
    if (signal?.aborted === true) throw abortError();
    if (choices.length !== prompts.length || choices.some((c, i) => c.index !== i)) {
      throw this.client.badResponse('/v1/completions', `${choices.length} choices for ${prompts.length} prompts`);
    }
    return choices;
  }

  /**
   * The log-probabilities of a choice's last `tail.length` prompt tokens, or undefined when the
   * server's prompt does not end with exactly those ids.
   */
  private readTail(choice: CompletionChoice, tail: ReadonlyArray<number>, index: number): VllmScoreDetail | undefined {
    const path = '/v1/completions';
    const entries = choice.promptLogprobs;
    if (entries === undefined || entries === null) {
      throw new VllmError(
        'no-prompt-logprobs',
        this.client.host,
        `The server at ${this.client.host} returned no prompt log-probabilities (\`prompt_logprobs\`), so it cannot score a given response.`,
        'Use vLLM\'s OpenAI-compatible server (`vllm serve`, which supports `prompt_logprobs`), or set `exact.scorer` to "llama.cpp" (the model file on this machine) or "ollama".',
      );
    }
    if (!Array.isArray(entries)) throw this.client.badResponse(path, `prompt ${index}: \`prompt_logprobs\` is not a list`);
    const n = entries.length;
    const reportedIds = Array.isArray(choice.promptTokenIds) ? this.client.tokenIds(path, choice.promptTokenIds) : undefined;
    if (reportedIds !== undefined && reportedIds.length !== n) throw this.client.badResponse(path, `prompt ${index}: ${reportedIds.length} token ids but ${n} log-probability entries`);
    const start = n - tail.length;
    if (start < 1) return undefined;
    const tokens: VllmTokenScore[] = [];
    let sum = 0;
    for (let pos = start; pos < n; pos++) {
      const expected = tail[pos - start]!;
      const entry = entries[pos] as unknown;
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw this.client.badResponse(path, `prompt ${index}: token ${pos} has no log-probability entry`);
      const keys = Object.keys(entry);
      // The prompt's own id: reported ids when the server sends them, else the entry's only key
      // (prompt_logprobs 0 asks for no alternatives).
      const actual = reportedIds !== undefined ? reportedIds[pos] : keys.length === 1 ? Number(keys[0]) : undefined;
      if (actual !== undefined && actual !== expected) return undefined;
      const item = (entry as Record<string, unknown>)[String(expected)];
      if (item === undefined) return undefined;
      const lp = (item as { logprob?: unknown } | null)?.logprob;
      if (typeof lp !== 'number' || Number.isNaN(lp) || lp === Infinity || lp > POSITIVE_TOLERANCE) {
        throw this.client.badResponse(path, `prompt ${index}: token ${pos} has log-probability ${JSON.stringify(lp)}, not a number <= 0`);
      }
      const logprob = Math.max(this.floor, Math.min(0, lp));
      tokens.push({ token: expected, logprob });
      sum += logprob;
    }
    return { logLikelihood: sum, tokens };
  }

  /**
   * Token ids of responses not seen yet, in one /tokenize call when the format's end marker is one
   * token (asked once): END y1 END y2 ... split at END. Otherwise (plain format, a multi-token
   * marker, a response containing the marker) one call per text.
   */
  private async tokenizeResponses(format: PromptFormat, texts: string[], signal: AbortSignal | undefined): Promise<Map<string, number[]>> {
    const end = format.end;
    if (end !== '' && this.endIds === undefined) this.endIds = await this.client.tokenize(end, signal);
    const found = new Map<string, number[]>();
    const missing: string[] = [];
    for (const t of texts) {
      const ids = this.responseIds.get(t);
      if (ids === undefined) missing.push(t);
      else found.set(t, ids);
    }
    const remember = (text: string, ids: number[]): void => {
      found.set(text, ids);
      this.responseIds.delete(text);
      this.responseIds.set(text, ids);
      while (this.responseIds.size > RESPONSE_CACHE) this.responseIds.delete(this.responseIds.keys().next().value!);
    };
    if (missing.length === 0) return found;
    const sep = this.endIds?.length === 1 ? this.endIds[0]! : undefined;
    if (sep !== undefined && missing.every((t) => !t.includes(end))) {
      const ids = await this.client.tokenize(missing.map((t) => end + t).join(''), signal);
      const split: number[][] = [];
      for (const id of ids) {
        if (id === sep) split.push([]);
        else if (split.length === 0) break;
        else split[split.length - 1]!.push(id);
      }
      if (ids[0] === sep && split.length === missing.length) {
        missing.forEach((t, i) => remember(t, split[i]!));
        return found;
      }
    }
    for (const t of missing) remember(t, t === '' ? [] : await this.client.tokenize(t, signal));
    return found;
  }
}
