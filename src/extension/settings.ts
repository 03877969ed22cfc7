import * as vscode from 'vscode';
import type { RetrievalMode } from '../core';
import type { OllamaConfig } from '../engines/ollama/config';
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

export function readSettings(): ExactSettings {
  const c = vscode.workspace.getConfiguration('exact');
  const floor = c.get<number>('retrieval.similarityFloor', -1);
  return {
    ollama: {
      host: c.get<string>('ollama.host', ''),
      model: c.get<string>('ollama.model', 'llama3.2:3b'),
      embeddingModel: c.get<string>('ollama.embeddingModel', ''),
      numCtx: c.get<number>('ollama.contextLength', 4096),
      maxTokens: c.get<number>('generation.maxTokens', 200),
      requestTimeoutMs: 1000 * c.get<number>('ollama.requestTimeoutSeconds', 15),
      firstTokenTimeoutMs: 1000 * c.get<number>('ollama.loadTimeoutSeconds', 300),
    },
    scorer: c.get<ScorerSetting>('scorer', 'auto'),
    modelPath: c.get<string>('modelPath', ''),
    k: c.get<number>('attributesPerPrompt', 3),
    algorithm: indexingAlgorithm(c.get<string>('indexing.algorithm', DEFAULT_INDEXING_ALGORITHM)),
    indexingMemory: c.get<ModelMemoryPolicy>('indexing.memory', 'keep'),
    retrievalMode: c.get<RetrievalMode>('retrieval.mode', 'top1'),
    neighbors: c.get<number>('retrieval.neighbors', 5),
    // -1 is the lowest cosine: a floor there never triggers.
    similarityFloor: floor <= -1 ? undefined : floor,
    decoding: {
      temperature: c.get<number>('generation.temperature', 0.7),
      topK: c.get<number>('generation.topK', 50),
      topP: c.get<number>('generation.topP', 0.95),
      maxTokens: c.get<number>('generation.maxTokens', 200),
    },
    maxInputChars: c.get<number>('maxInputCharacters', 20000),
    inlineCompletion: c.get<boolean>('inlineCompletion.enabled', false),
    customAttributes: c.get<string[]>('customAttributes', []),
  };
}

/** A value the settings UI did not offer (hand-edited settings.json) falls back to the default. */
function indexingAlgorithm(value: string): IndexingAlgorithm {
  return (INDEXING_ALGORITHMS as ReadonlyArray<string>).includes(value) ? (value as IndexingAlgorithm) : DEFAULT_INDEXING_ALGORITHM;
}
