/**
 * The typed message protocol between LlamaScorer (any thread) and the scorer worker, which owns
 * the LlamaEngine. Every request carries an id; the worker answers it with exactly one `result`
 * or `error`, and a `generate` request also with `chunk` messages before that.
 */
import type { ScoreRequest } from '../../core/ports';
import type { ComputeBackend } from './computeBackend';
import type { GenerateInput, GenerateResult, GenerationChunk, LlamaEngineOptions, LlamaGenerateOptions, LlamaMemoryUsage, LlamaModelInfo, ScoreDetail, ScoreStats } from './llamaEngine';

/** workerData of the scorer worker. */
export interface WorkerInit {
  readonly modelPath: string;
  readonly options: LlamaEngineOptions;
}

/** Requests and the value their `result` carries (a ScoreRequest keeps its stopBelow and prefixTokens). */
export interface WorkerCalls {
  score: { args: { requests: ScoreRequest[] }; result: number[] };
  scoreDetailed: { args: { requests: ScoreRequest[] }; result: ScoreDetail[] };
  generate: { args: { input: GenerateInput; options: LlamaGenerateOptions }; result: GenerateResult };
  embed: { args: { texts: string[] }; result: number[][] };
  tokenize: { args: { text: string; specialTokens: boolean }; result: number[] };
  /** Loads the model if needed and describes it. */
  info: { args: Record<string, never>; result: { info: LlamaModelInfo; stats: ScoreStats; memory: LlamaMemoryUsage; loadMilliseconds: number; loads: number } };
  /** Unloads the model (after running work finishes); the next request loads it again. */
  release: { args: Record<string, never>; result: { released: boolean } };
}

export type CallType = keyof WorkerCalls;

export type WorkerRequest = {
  [K in CallType]: { readonly type: K; readonly id: number } & WorkerCalls[K]['args'];
}[CallType];

/** Asks the worker to abort request `id` (it rejects with an AbortError). */
export interface CancelMessage {
  readonly type: 'cancel';
  readonly id: number;
}

export type ToWorker = WorkerRequest | CancelMessage;

export interface SerializedError {
  readonly name: string;
  readonly message: string;
  /** ModelFileError's code, when there is one. */
  readonly code?: string;
  readonly stack?: string;
}

export type FromWorker =
  | { readonly type: 'result'; readonly id: number; readonly value: WorkerCalls[CallType]['result'] }
  | { readonly type: 'error'; readonly id: number; readonly error: SerializedError }
  | { readonly type: 'chunk'; readonly id: number; readonly chunk: GenerationChunk }
  /** Sent (without an id) each time the worker has loaded the model. */
  | { readonly type: 'loaded'; readonly backend: ComputeBackend; readonly loadMilliseconds: number };

export function serializeError(e: unknown): SerializedError {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return { name: e.name, message: e.message, ...(typeof code === 'string' ? { code } : {}), ...(e.stack !== undefined ? { stack: e.stack } : {}) };
  }
  return { name: 'Error', message: String(e) };
}

/** Rebuilds an Error with the worker's name (AbortError, ModelFileError, ...), message and code. */
export function deserializeError(s: SerializedError): Error {
  const e = new Error(s.message) as Error & { code?: string };
  e.name = s.name;
  if (s.code !== undefined) e.code = s.code;
  if (s.stack !== undefined) e.stack = `${s.name}: ${s.message}\n    (in the llama.cpp worker)\n${s.stack.split('\n').slice(1).join('\n')}`;
  return e;
}
