/** The vLLM server's commands: its setup check, and setting or clearing its API key in the secret storage. */
import { checkVllmHealth } from '../engines/vllm/health';
import { showError } from './errors';
import type { EditorHost } from './host';
import { VLLM_API_KEY_SECRET, type ExactRuntime } from './runtime';

export async function checkVllmSetup(runtime: ExactRuntime): Promise<boolean> {
  const { host } = runtime;
  try {
    await runtime.secretsRead;
    const health = await host.withProgress('EXACT: Checking the vLLM server…', false, () => checkVllmHealth(runtime.vllmClient()));
    const scorer = await runtime.scorer();
    const logprobs = health.promptLogprobs
      ? 'It returns prompt log-probabilities, so learning is exact.'
      : 'It returns NO prompt log-probabilities, so it cannot score: set `exact.scorer` to "llama.cpp" (the model file on this machine) or "ollama".';
    const writer = runtime.settings.backend === 'vllm' ? 'It writes drafts, rewrites and completions.' : 'Ollama writes (exact.backend is "ollama").';
    const length = health.maxModelLen === undefined ? '' : `, context ${health.maxModelLen} tokens`;
    void host.showMessage('info', `EXACT: vLLM at ${health.host} serves ${health.model} (${health.promptFormat.id} format${length}). ${logprobs} ${writer} ${scorer.reason}`);
    return health.promptLogprobs || scorer.kind !== 'vllm';
  } catch (e) {
    await showError(host, e, 'Setup check: ');
    return false;
  }
}

/** Why a typed API key is refused, or undefined when it is fine. */
function apiKeyProblem(value: string): string | undefined {
  const key = value.trim();
  if (key === '') return 'Enter the key, or use "EXACT: Clear vLLM API Key" to remove it.';
  return /\s/.test(key) ? 'An API key has no spaces or line breaks.' : undefined;
}

export async function setVllmApiKey(host: EditorHost): Promise<void> {
  const key = await host.askSecret(
    'EXACT: API key of the vLLM server',
    "The key the server was started with (`vllm serve --api-key`). It is kept in VS Code's secret storage, never in settings files.",
    apiKeyProblem,
  );
  if (key === undefined) return;
  await host.secrets.store(VLLM_API_KEY_SECRET, key.trim());
  void host.showMessage('info', 'EXACT: vLLM API key saved in the secret storage.');
}

export async function clearVllmApiKey(host: EditorHost): Promise<void> {
  await host.secrets.delete(VLLM_API_KEY_SECRET);
  void host.showMessage('info', 'EXACT: vLLM API key removed.');
}
