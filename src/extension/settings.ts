import * as vscode from 'vscode';
import type { RetrievalMode } from '../core';
import { MAX_ATTRIBUTES_PER_ENTRY } from '../core/attributes';
import { clampPositive, OLLAMA_BOUNDS, type OllamaConfig } from '../engines/ollama/config';
import type { ModelMemoryPolicy } from '../engines/llama/llamaScorer';
import type { ScorerSetting } from '../engines/scorerSelection';
import { DEFAULT_INDEXING_ALGORITHM, INDEXING_ALGORITHMS, type IndexingAlgorithm } from '../services/indexingQueue';

export interface ExactSettings {
  readonly ollama: Partial<OllamaConfig>;
  readonly scorer: ScorerSetting;
  readonly modelPath: string;
  readonly k: number;
  readonly algorithm: IndexingAlgorithm;
  /** How long the in-process scorer holds its model: for the whole learning run, or one batch. */
  readonly indexingMemory: ModelMemoryPolicy;
  readonly retrievalMode: RetrievalMode;
  readonly neighbors: number;
  readonly similarityFloor: number | undefined;
  readonly decoding: { temperature: number; topK: number; topP: number; maxTokens: number };
  readonly maxInputChars: number;
  readonly inlineCompletion: boolean;
  readonly customAttributes: string[];
}

/**
 * A number setting within its bounds (the schema's minimum / maximum in package.json): a value
 * edited by hand into settings.json is not checked by VS Code, and an unbounded one breaks things
 * (a timeout of 2^31 ms or more fires at once). Not a finite number: the default.
 */
function bounded(c: vscode.WorkspaceConfiguration, key: string, min: number, max: number, fallback: number, integer = false): number {
  const v = c.get<unknown>(key, fallback);
  if (typeof v !== 'number' || !Number.isFinite(v)) return fallback;
  const x = Math.min(max, Math.max(min, v));
  return integer ? Math.floor(x) : x;
}

export function readSettings(): ExactSettings {
  const c = vscode.workspace.getConfiguration('exact');
  const floor = bounded(c, 'retrieval.similarityFloor', -1, 1, -1);
  const maxTokens = bounded(c, 'generation.maxTokens', 1, 8192, 200, true);
  const seconds = (key: string, fallback: number, bounds: { min: number; max: number }): number => 1000 * clampPositive(c.get<unknown>(key, fallback), { min: bounds.min / 1000, max: bounds.max / 1000 }, fallback);
  return {
    ollama: {
      host: c.get<string>('ollama.host', ''),
      model: c.get<string>('ollama.model', 'llama3.2:3b'),
      embeddingModel: c.get<string>('ollama.embeddingModel', ''),
      numCtx: bounded(c, 'ollama.contextLength', OLLAMA_BOUNDS.numCtx.min, OLLAMA_BOUNDS.numCtx.max, 4096, true),
      maxTokens,
      requestTimeoutMs: seconds('ollama.requestTimeoutSeconds', 15, { min: 1000, max: OLLAMA_BOUNDS.requestTimeoutMs.max }),
      firstTokenTimeoutMs: seconds('ollama.loadTimeoutSeconds', 300, { min: 5000, max: OLLAMA_BOUNDS.firstTokenTimeoutMs.max }),
    },
    scorer: c.get<ScorerSetting>('scorer', 'auto'),
    modelPath: c.get<string>('modelPath', ''),
    k: bounded(c, 'attributesPerPrompt', 1, MAX_ATTRIBUTES_PER_ENTRY, 3, true),
    algorithm: indexingAlgorithm(c.get<string>('indexing.algorithm', DEFAULT_INDEXING_ALGORITHM)),
    indexingMemory: c.get<ModelMemoryPolicy>('indexing.memory', 'keep'),
    retrievalMode: c.get<RetrievalMode>('retrieval.mode', 'top1'),
    neighbors: bounded(c, 'retrieval.neighbors', 1, 50, 5, true),
    // -1 is the lowest cosine: a floor there never triggers.
    similarityFloor: floor <= -1 ? undefined : floor,
    decoding: {
      temperature: bounded(c, 'generation.temperature', 0, 2, 0.7),
      topK: bounded(c, 'generation.topK', 1, 1000, 50, true),
      topP: bounded(c, 'generation.topP', 0, 1, 0.95),
      maxTokens,
    },
    maxInputChars: bounded(c, 'maxInputCharacters', 100, 200_000, 20000, true),
    inlineCompletion: c.get<boolean>('inlineCompletion.enabled', false),
    customAttributes: c.get<string[]>('customAttributes', []),
  };
}

/** A value the settings UI did not offer (hand-edited settings.json) falls back to the default. */
function indexingAlgorithm(value: string): IndexingAlgorithm {
  return (INDEXING_ALGORITHMS as ReadonlyArray<string>).includes(value) ? (value as IndexingAlgorithm) : DEFAULT_INDEXING_ALGORITHM;
}
