/**
 * Reads the `exact.*` settings. Defaults and bounds come from package.json (settingsManifest.ts):
 * a value of the wrong type or outside its enum falls back to the default, a number outside its
 * bounds is clamped to them. The editor supplies the values through a ConfigurationSource.
 */
import type { OllamaConfig } from '../engines/ollama/config';
import type { ModelMemoryPolicy } from '../engines/llama/llamaScorer';
import type { ScorerSetting } from '../engines/scorerSelection';
import type { IndexingAlgorithm } from '../services/indexingQueue';
import type { PersonalizerRetrievalMode } from '../services/personalizer';
import { settingSchema, type SettingKey } from '../shared/settingsManifest';

/** The user's value of a setting (key without `exact.`), undefined when unset. */
export interface ConfigurationSource {
  get(key: SettingKey): unknown;
}

type Kind = 'string' | 'number' | 'boolean' | 'strings';
type ValueOf<K extends Kind> = K extends 'string' ? string : K extends 'number' ? number : K extends 'boolean' ? boolean : string[];

/** Every setting the code reads, with the type it reads it as; `satisfies` keeps it in step with package.json. */
export const SETTING_KINDS = {
  'ollama.host': 'string',
  'ollama.model': 'string',
  'ollama.embeddingModel': 'string',
  'ollama.contextLength': 'number',
  'ollama.requestTimeoutSeconds': 'number',
  'ollama.loadTimeoutSeconds': 'number',
  'generation.temperature': 'number',
  'generation.topK': 'number',
  'generation.topP': 'number',
  'generation.maxTokens': 'number',
  attributesPerPrompt: 'number',
  'retrieval.mode': 'string',
  'retrieval.neighbors': 'number',
  'retrieval.similarityFloor': 'number',
  customAttributes: 'strings',
  scorer: 'string',
  modelPath: 'string',
  'indexing.algorithm': 'string',
  'indexing.memory': 'string',
  'indexing.significance': 'number',
  maxInputCharacters: 'number',
  'inlineCompletion.enabled': 'boolean',
  backend: 'string',
  'vllm.url': 'string',
  'vllm.model': 'string',
  'vllm.timeoutSeconds': 'number',
} as const satisfies Record<SettingKey, Kind>;

type Values = { readonly [K in SettingKey]: ValueOf<(typeof SETTING_KINDS)[K]> };

export interface ExactSettings {
  /** Who writes drafts, rewrites and completions. */
  readonly backend: 'ollama' | 'vllm';
  readonly ollama: Partial<OllamaConfig>;
  /** The vLLM server (the API key lives in SecretStorage, not here). */
  readonly vllm: { readonly url: string; readonly model: string; readonly timeoutSeconds: number };
  readonly scorer: ScorerSetting;
  readonly modelPath: string;
  readonly k: number;
  readonly algorithm: IndexingAlgorithm;
  /** How long the in-process scorer holds its model: for the whole learning run, or one batch. */
  readonly indexingMemory: ModelMemoryPolicy;
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

/** One setting's value, checked against its declaration (type, enum, bounds), else its default. */
export function settingValue<K extends SettingKey>(source: ConfigurationSource, key: K): Values[K] {
  const schema = settingSchema(key);
  const kind: Kind = SETTING_KINDS[key];
  const raw = source.get(key);
  const fallback = schema.default as Values[K];
  switch (kind) {
    case 'string':
      if (typeof raw !== 'string' || (schema.enum !== undefined && !schema.enum.includes(raw))) return fallback;
      return raw as Values[K];
    case 'boolean':
      return (typeof raw === 'boolean' ? raw : fallback) as Values[K];
    case 'strings':
      return (Array.isArray(raw) && raw.every((s) => typeof s === 'string') ? [...raw] : fallback) as Values[K];
    case 'number': {
      if (typeof raw !== 'number' || !Number.isFinite(raw)) return fallback;
      let n = schema.type === 'integer' ? Math.round(raw) : raw;
      if (schema.minimum !== undefined) n = Math.max(schema.minimum, n);
      if (schema.maximum !== undefined) n = Math.min(schema.maximum, n);
      return n as Values[K];
    }
  }
}

export function readSettings(source: ConfigurationSource): ExactSettings {
  const get = <K extends SettingKey>(key: K): Values[K] => settingValue(source, key);
  const floor = get('retrieval.similarityFloor');
  const decoding = {
    temperature: get('generation.temperature'),
    topK: get('generation.topK'),
    topP: get('generation.topP'),
    maxTokens: get('generation.maxTokens'),
  };
  return {
    backend: get('backend') as ExactSettings['backend'],
    vllm: { url: get('vllm.url'), model: get('vllm.model'), timeoutSeconds: get('vllm.timeoutSeconds') },
    ollama: {
      host: get('ollama.host'),
      model: get('ollama.model'),
      embeddingModel: get('ollama.embeddingModel'),
      numCtx: get('ollama.contextLength'),
      maxTokens: decoding.maxTokens,
      requestTimeoutMs: 1000 * get('ollama.requestTimeoutSeconds'),
      firstTokenTimeoutMs: 1000 * get('ollama.loadTimeoutSeconds'),
    },
    scorer: get('scorer') as ScorerSetting,
    modelPath: get('modelPath'),
    k: get('attributesPerPrompt'),
    algorithm: get('indexing.algorithm') as IndexingAlgorithm,
    indexingMemory: get('indexing.memory') as ModelMemoryPolicy,
    significance: significanceSetting(get('indexing.significance')),
    retrievalMode: get('retrieval.mode') as PersonalizerRetrievalMode,
    neighbors: get('retrieval.neighbors'),
    // -1 is the lowest cosine: a floor there never triggers.
    similarityFloor: floor <= -1 ? undefined : floor,
    decoding,
    maxInputChars: get('maxInputCharacters'),
    inlineCompletion: get('inlineCompletion.enabled'),
    customAttributes: get('customAttributes'),
  };
}

/** Negative turns the chance-level test off. */
function significanceSetting(value: number): number | undefined {
  return value < 0 ? undefined : value;
}
