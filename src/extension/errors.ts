/** Errors shown to the user with the buttons that fix them. */
import { OllamaError, OllamaModelNotFoundError, OllamaNotRunningError } from '../engines/ollama/errors';
import { ScorerUnavailableError } from '../engines/scorerSelection';
import { VllmError } from '../engines/vllm/client';
import { ContextTooSmallError, EmptyInputError, InputTooLargeError } from '../services/personalizer';
import type { EditorHost } from './host';

export function isAbort(e: unknown): boolean {
  return e instanceof Error && (e.name === 'AbortError' || e.name === 'CancellationError');
}

/** The message, with the error's suggested action when it has one. */
export function errorText(e: unknown): string {
  if (e instanceof Error) {
    const action = (e as { action?: unknown }).action;
    return typeof action === 'string' && action.length > 0 ? `${e.message} ${action}` : e.message;
  }
  return String(e);
}

export interface ErrorAction {
  readonly label: string;
  run(host: EditorHost): Promise<unknown>;
}

const command = (label: string, id: string, ...args: unknown[]): ErrorAction => ({ label, run: (host) => host.executeCommand(id, ...args) });
const OPEN_SETTINGS = command('Open Settings', 'workbench.action.openSettings', 'exact.');
const SETUP_GUIDE = command('Setup Guide', 'workbench.action.openWalkthrough', 'exact-personalization.exact-vscode#exact.getStarted', false);

/** The buttons offered with an error, by its kind. Input problems are warnings without buttons. */
export function errorActions(e: unknown): { level: 'warning' | 'error'; actions: ErrorAction[] } {
  if (e instanceof EmptyInputError || e instanceof InputTooLargeError || e instanceof ContextTooSmallError) return { level: 'warning', actions: [] };
  if (e instanceof OllamaNotRunningError) return { level: 'error', actions: [command('Retry Check', 'exact.checkSetup'), OPEN_SETTINGS, SETUP_GUIDE] };
  if (e instanceof OllamaModelNotFoundError) {
    const pull = `ollama pull ${e.model}`;
    const copy: ErrorAction = {
      label: `Copy "${pull}"`,
      run: async (host) => {
        await host.writeClipboard(pull);
        void host.showMessage('info', 'Copied. Run it in a terminal, then try again.');
      },
    };
    const fix = e.role === 'embedding' ? command('Embedding Model Setting', 'workbench.action.openSettings', 'exact.ollama.embeddingModel') : command('Choose Model', 'exact.chooseModel');
    return { level: 'error', actions: [copy, fix] };
  }
  if (e instanceof VllmError) {
    const retry = [command('Retry Check', 'exact.checkSetup'), OPEN_SETTINGS];
    return { level: 'error', actions: e.kind === 'unauthorized' ? [command('Set vLLM API Key', 'exact.setVllmApiKey'), ...retry] : retry };
  }
  if (e instanceof OllamaError || e instanceof ScorerUnavailableError) return { level: 'error', actions: [OPEN_SETTINGS, SETUP_GUIDE] };
  return { level: 'error', actions: [{ label: 'Show Log', run: async (host) => host.log.show() }] };
}

/** Shows an error with the buttons that fix it and runs the one chosen. Cancellations are silent. */
export async function showError(host: EditorHost, e: unknown, context = ''): Promise<void> {
  if (isAbort(e)) return;
  const text = `EXACT: ${context}${errorText(e)}`;
  host.log.error(text);
  const { level, actions } = errorActions(e);
  const choice = await host.showMessage(level, text, ...actions.map((a) => a.label));
  await actions.find((a) => a.label === choice)?.run(host);
}
