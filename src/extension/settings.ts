import * as vscode from 'vscode';
import { DEFAULT_SIGNIFICANCE } from '../core';
import type { OllamaConfig } from '../engines/ollama/config';
import type { ScorerSetting } from '../engines/scorerSelection';
import type { IndexingAlgorithm } from '../services/indexingQueue';
import type { PersonalizerRetrievalMode } from '../services/personalizer';

export interface ExactSettings {
  readonly ollama: Partial<OllamaConfig>;
  readonly scorer: ScorerSetting;
  readonly modelPath: string;
  readonly k: number;
  readonly algorithm: IndexingAlgorithm;
  /** Chance-level test for selection; undefined: off (the paper's k attributes). */
  readonly significance: number | undefined;
  readonly retrievalMode: PersonalizerRetrievalMode;
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
    algorithm: c.get<IndexingAlgorithm>('indexing.algorithm', 'greedy'),
    significance: significanceSetting(c.get<number>('indexing.significance', DEFAULT_SIGNIFICANCE)),
    retrievalMode: c.get<PersonalizerRetrievalMode>('retrieval.mode', 'abstain'),
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

/** Negative turns the chance-level test off. */
function significanceSetting(value: number): number | undefined {
  return value < 0 ? undefined : value;
}
