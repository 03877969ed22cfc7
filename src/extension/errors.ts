import * as vscode from 'vscode';
import { OllamaError, OllamaModelNotFoundError, OllamaNotRunningError } from '../engines/ollama/errors';
import { ScorerUnavailableError } from '../engines/scorerSelection';
import { VllmError } from '../engines/vllm/client';
import { ContextTooSmallError, EmptyInputError, InputTooLargeError } from '../services/personalizer';
import { errorText } from './runtime';

export function isAbort(e: unknown): boolean {
  return e instanceof Error && (e.name === 'AbortError' || e.name === 'CancellationError');
}

/** Shows an error with the buttons that fix it. Cancellations are silent. */
export async function showError(e: unknown, output: vscode.LogOutputChannel, context = ''): Promise<void> {
  if (isAbort(e)) return;
  const text = `EXACT: ${context}${errorText(e)}`;
  output.error(text);
  if (e instanceof EmptyInputError || e instanceof InputTooLargeError || e instanceof ContextTooSmallError) {
    void vscode.window.showWarningMessage(text);
    return;
  }
  const actions: string[] = [];
  if (e instanceof OllamaNotRunningError) actions.push('Retry Check', 'Open Settings', 'Setup Guide');
  else if (e instanceof OllamaModelNotFoundError) actions.push(`Copy "ollama pull ${e.model}"`, e.role === 'embedding' ? 'Embedding Model Setting' : 'Choose Model');
  else if (e instanceof VllmError) actions.push(...(e.kind === 'unauthorized' ? ['Set vLLM API Key'] : []), 'Retry Check', 'Open Settings');
  else if (e instanceof OllamaError || e instanceof ScorerUnavailableError) actions.push('Open Settings', 'Setup Guide');
  else actions.push('Show Log');
  const choice = await vscode.window.showErrorMessage(text, ...actions);
  if (choice === undefined) return;
  if (choice.startsWith('Copy')) {
    await vscode.env.clipboard.writeText(`ollama pull ${(e as OllamaModelNotFoundError).model}`);
    void vscode.window.showInformationMessage('Copied. Run it in a terminal, then try again.');
  } else if (choice === 'Choose Model') await vscode.commands.executeCommand('exact.chooseModel');
  else if (choice === 'Embedding Model Setting') await vscode.commands.executeCommand('workbench.action.openSettings', 'exact.ollama.embeddingModel');
  else if (choice === 'Set vLLM API Key') await vscode.commands.executeCommand('exact.setVllmApiKey');
  else if (choice === 'Retry Check') await vscode.commands.executeCommand('exact.checkSetup');
  else if (choice === 'Open Settings') await vscode.commands.executeCommand('workbench.action.openSettings', 'exact.');
  else if (choice === 'Setup Guide') await vscode.commands.executeCommand('workbench.action.openWalkthrough', 'exact-personalization.exact-vscode#exact.getStarted', false);
  else output.show(true);
}

/** A VS Code cancellation token as an AbortSignal. */
export function signalFrom(token: vscode.CancellationToken): AbortSignal {
  const controller = new AbortController();
  if (token.isCancellationRequested) controller.abort();
  token.onCancellationRequested(() => controller.abort());
  return controller.signal;
}
