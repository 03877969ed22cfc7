/**
 * Which scorer computes log p(y | x, A).
 *
 *  - 'llama.cpp' (exact): the model's GGUF file, as Ollama's /api/show reports it in the `FROM`
 *    line of the modelfile (or an explicit path setting), loaded in-process by node-llama-cpp in
 *    a worker thread (LlamaScorer). Uses a GPU when node-llama-cpp finds one (`gpu: 'auto'`), and
 *    releases the model after `idleReleaseMs` without scoring.
 *  - 'ollama' (fallback, approximate where tokens are missed): OllamaLogprobScorer forces the
 *    response through /api/generate log-probabilities; for Ollama on another machine, whose
 *    model file is not readable here. Needs Ollama >= 0.12.11.
 *  - 'vllm' (exact): prompt log-probabilities from a vLLM server (VllmScorer, one request per
 *    batch); the model runs there, nothing is loaded here.
 *  - 'auto' (default): with `exact.backend` "vllm", the vLLM server; otherwise llama.cpp when the
 *    file is readable here, else the fallback.
 */
import { ModelFileError, checkModelFile } from './llama/modelFile';
import { LlamaScorer, type LlamaScorerOptions } from './llama/llamaScorer';
import type { LogLikelihoodScorer } from '../core/ports';
import { modelfileFromPath, type OllamaClient } from './ollama/client';
import { isLoopback, OllamaError, OllamaVersionTooOldError } from './ollama/errors';
import { OllamaLogprobScorer, type OllamaScorerOptions } from './ollama/logprobScorer';
import type { VllmClient } from './vllm/client';
import { VllmScorer } from './vllm/scorer';

export type ScorerSetting = 'auto' | 'llama.cpp' | 'ollama' | 'vllm';

/** A scorer that may hold a model in memory; release() frees it until the next request. */
export interface ReleasableScorer extends LogLikelihoodScorer {
  /** `endWorker`: also end the thread or process that ran the model (the next request starts it again). */
  release?(endWorker?: boolean): Promise<void>;
  dispose?(): Promise<void>;
}

export interface ScorerSelectionOptions {
  readonly setting: ScorerSetting;
  readonly client: OllamaClient;
  /** A GGUF path to use instead of the one /api/show reports ('' or undefined: ask Ollama). */
  readonly modelPath?: string;
  /** Creates the in-process scorer for a readable GGUF file. */
  readonly createLlamaScorer: (modelPath: string) => ReleasableScorer;
  readonly ollamaScorer?: OllamaScorerOptions;
  readonly signal?: AbortSignal;
}

export interface ScorerSelection {
  readonly kind: 'llama.cpp' | 'ollama' | 'vllm';
  readonly scorer: ReleasableScorer;
  /** Why this scorer: one sentence for the status bar / output channel. */
  readonly reason: string;
  /** The GGUF path considered (reported by Ollama or set), if any. */
  readonly modelPath: string | undefined;
}

/** The error thrown when the forced llama.cpp scorer cannot read the model file. */
export class ScorerUnavailableError extends Error {
  override readonly name = 'ScorerUnavailableError';
  constructor(
    message: string,
    readonly action: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The default factory: LlamaScorer in a worker, GPU when available, released when idle. */
export function llamaScorerFactory(options: Omit<LlamaScorerOptions, 'modelPath'>): (modelPath: string) => LlamaScorer {
  return (modelPath) => new LlamaScorer({ ...options, modelPath, engine: { gpu: 'auto', ...options.engine } });
}

/** The GGUF path of the configured model on the Ollama machine (the modelfile's FROM line). */
async function ollamaModelPath(client: OllamaClient, signal?: AbortSignal): Promise<string | undefined> {
  const info = await client.show(client.config.model, signal);
  const from = modelfileFromPath(info.modelfile);
  // FROM can also name another model ("FROM llama3.2"): only an absolute path is a file.
  return from !== undefined && (from.startsWith('/') || /^[A-Za-z]:[\\/]/.test(from) || from.startsWith('\\\\')) ? from : undefined;
}

/** Why a path cannot be used here, or undefined when it can. */
async function unreadable(path: string): Promise<ModelFileError | undefined> {
  try {
    await checkModelFile(path);
    return undefined;
  } catch (e) {
    if (e instanceof ModelFileError) return e;
    throw e;
  }
}

/**
 * What to do about a model file that is on this machine but not readable: the usual cause is a
 * system-wide Ollama whose files belong to its own user and group.
 */
function permissionAdvice(path: string): string {
  return (
    `This user may not read ${path}. If Ollama runs as a system service, add yourself to its group ` +
    `(\`sudo usermod -aG ollama $USER\`, then log out and in again), or point \`exact.modelPath\` at a readable copy of the file`
  );
}

/** Whether this setting and backend score on the vLLM server (then selectVllmScorer, not selectScorer). */
export function scoresOnVllm(setting: ScorerSetting, backend: 'ollama' | 'vllm'): boolean {
  return setting === 'vllm' || (setting === 'auto' && backend === 'vllm');
}

/** The vLLM scorer, with the reason the profile and the setup check show. */
export function selectVllmScorer(client: VllmClient, setting: ScorerSetting, backend: 'ollama' | 'vllm'): ScorerSelection {
  const why =
    setting === 'vllm'
      ? backend === 'vllm'
        ? 'exact.scorer is "vllm"'
        : 'exact.scorer is "vllm" while Ollama writes: the server must serve the same model as Ollama for the choices to mean the same'
      : 'exact.backend is "vllm" and exact.scorer is "auto"';
  return {
    kind: 'vllm',
    scorer: new VllmScorer(client),
    reason: `Scoring on the vLLM server at ${client.host} from its prompt log-probabilities (exact; one request per batch of attribute sets, nothing loaded here): ${why}.`,
    modelPath: undefined,
  };
}

export async function selectScorer(options: ScorerSelectionOptions): Promise<ScorerSelection> {
  const { setting, client, signal } = options;
  if (setting === 'vllm') throw new Error('selectScorer: the vLLM scorer is chosen with selectVllmScorer.');
  const explicit = options.modelPath?.trim() ?? '';

  if (setting === 'ollama') {
    await client.requireLogprobsVersion(signal);
    return {
      kind: 'ollama',
      scorer: new OllamaLogprobScorer(client, { ...options.ollamaScorer, skipVersionCheck: true }),
      reason: 'Scoring through Ollama log-probabilities (exact.scorer is "ollama").',
      modelPath: explicit === '' ? undefined : explicit,
    };
  }

  let path: string | undefined = explicit === '' ? undefined : explicit;
  let ollamaProblem: OllamaError | undefined;
  if (path === undefined) {
    try {
      path = await ollamaModelPath(client, signal);
    } catch (e) {
      if (!(e instanceof OllamaError)) throw e;
      ollamaProblem = e;
    }
  }
  const fileError = path === undefined ? undefined : await unreadable(path);
  const problem = fileError?.message;
  // A Linux system service keeps Ollama's files to its own user and group: the usual reason an
  // Ollama on this machine serves a file EXACT cannot read.
  const localButLocked = fileError?.code === 'UNREADABLE' && explicit === '' && process.platform === 'linux' && isLoopback(client.config.host);

  if (setting === 'llama.cpp') {
    if (path === undefined) {
      if (ollamaProblem !== undefined) throw ollamaProblem;
      throw new ScorerUnavailableError(
        `Ollama reports no model file for '${client.config.model}', so llama.cpp has nothing to load.`,
        'Set `exact.modelPath` to the GGUF file, or set `exact.scorer` to "auto".',
      );
    }
    if (problem !== undefined) {
      throw new ScorerUnavailableError(
        `exact.scorer is "llama.cpp" but the model file cannot be used here: ${problem}`,
        localButLocked
          ? `${permissionAdvice(path)}.`
          : 'When Ollama runs on another machine, set `exact.scorer` to "auto" or "ollama" (scoring through Ollama log-probabilities), or copy the GGUF file here and set `exact.modelPath`.',
      );
    }
    return { kind: 'llama.cpp', scorer: options.createLlamaScorer(path), reason: `Scoring in-process with llama.cpp on ${path} (exact.scorer is "llama.cpp").`, modelPath: path };
  }

  // auto
  if (path !== undefined && problem === undefined) {
    return { kind: 'llama.cpp', scorer: options.createLlamaScorer(path), reason: `Scoring in-process with llama.cpp: the model file ${path} is readable here.`, modelPath: path };
  }
  if (ollamaProblem !== undefined) throw ollamaProblem;
  try {
    await client.requireLogprobsVersion(signal);
  } catch (e) {
    // Neither scorer can run. Name both ways out, and not the one that was just found unusable.
    if (e instanceof OllamaVersionTooOldError) {
      const fileProblem = path === undefined ? `Ollama reports no model file for '${client.config.model}'` : `the model file ${path} cannot be used here (${problem})`;
      const fileFix = localButLocked && path !== undefined ? permissionAdvice(path) : 'Set `exact.modelPath` to the model\'s GGUF file on this machine';
      throw new ScorerUnavailableError(`EXACT cannot learn yet: ${fileProblem}, and ${e.message}`, `${fileFix}, or update Ollama to ${e.required} or newer (https://ollama.com/download).`, { cause: e });
    }
    throw e;
  }
  const why =
    path === undefined
      ? `Ollama reports no model file for '${client.config.model}'`
      : localButLocked
        ? `${problem} ${permissionAdvice(path)}: that makes scoring exact and faster`
        : `the model file ${path} is not usable here (${problem}); Ollama probably runs on another machine`;
  return {
    kind: 'ollama',
    scorer: new OllamaLogprobScorer(client, { ...options.ollamaScorer, skipVersionCheck: true }),
    reason: `Scoring through Ollama log-probabilities (approximate where a response token is not among the top 20): ${why}.`,
    modelPath: path,
  };
}
