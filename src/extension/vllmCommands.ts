/** The vLLM server's commands: its setup check, and setting or clearing its API key in SecretStorage. */
import * as vscode from 'vscode';
import { checkVllmHealth } from '../engines/vllm/health';
import { showError } from './errors';
import { VLLM_API_KEY_SECRET, type ExactRuntime } from './runtime';

export async function checkVllmSetup(runtime: ExactRuntime): Promise<boolean> {
  try {
    await runtime.secretsRead;
    const health = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'EXACT: Checking the vLLM server…' }, () => checkVllmHealth(runtime.vllmClient()));
    const scorer = await runtime.scorer();
    const logprobs = health.promptLogprobs
      ? 'It returns prompt log-probabilities, so learning is exact.'
      : 'It returns NO prompt log-probabilities, so it cannot score: set `exact.scorer` to "llama.cpp" (the model file on this machine) or "ollama".';
    const writer = runtime.settings.backend === 'vllm' ? 'It writes drafts, rewrites and completions.' : 'Ollama writes (exact.backend is "ollama").';
    const length = health.maxModelLen === undefined ? '' : `, context ${health.maxModelLen} tokens`;
    void vscode.window.showInformationMessage(
      `EXACT: vLLM at ${health.host} serves ${health.model} (${health.promptFormat.id} format${length}). ${logprobs} ${writer} ${scorer.reason}`,
    );
    return health.promptLogprobs || scorer.kind !== 'vllm';
  } catch (e) {
    await showError(e, runtime.output, 'Setup check: ');
    return false;
  }
}

export async function setVllmApiKey(context: vscode.ExtensionContext): Promise<void> {
  const key = await vscode.window.showInputBox({
    title: 'EXACT: API key of the vLLM server',
    prompt: 'The key the server was started with (`vllm serve --api-key`). It is kept in VS Code\'s secret storage, never in settings files.',
    password: true,
    ignoreFocusOut: true,
    validateInput: (v) => (v.trim() === '' ? 'Enter the key, or use "EXACT: Clear vLLM API Key" to remove it.' : /\s/.test(v.trim()) ? 'An API key has no spaces or line breaks.' : undefined),
  });
  if (key === undefined) return;
  await context.secrets.store(VLLM_API_KEY_SECRET, key.trim());
  void vscode.window.showInformationMessage('EXACT: vLLM API key saved in the secret storage.');
}

export async function clearVllmApiKey(context: vscode.ExtensionContext): Promise<void> {
  await context.secrets.delete(VLLM_API_KEY_SECRET);
  void vscode.window.showInformationMessage('EXACT: vLLM API key removed.');
}
