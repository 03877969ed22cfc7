/** Setup check, model choice, and the memory's maintenance commands (re-index, export, import, reset). */
import * as vscode from 'vscode';
import { checkOllamaHealth } from '../engines/ollama/health';
import { countOf } from '../shared/plural';
import { exportToFile, importFromFile } from '../storage/importExport';
import { showError } from './errors';
import { errorText, type ExactRuntime } from './runtime';

export async function checkSetup(runtime: ExactRuntime): Promise<boolean> {
  try {
    const health = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: 'EXACT: Checking Ollama…' }, () => checkOllamaHealth(runtime.client()));
    const scorer = await runtime.scorer();
    const embedding = health.embeddingModel === '' ? 'built-in local embedder' : health.embeddingModelAvailable ? health.embeddingModel : `${health.embeddingModel} is not pulled (run \`ollama pull ${health.embeddingModel}\`); using the built-in local embedder`;
    const logprobs = health.supportsLogprobs ? '' : ' This Ollama version reports no log-probabilities: learning needs the model file on this machine (in-process llama.cpp).';
    void vscode.window.showInformationMessage(
      `EXACT is ready: Ollama ${health.version} at ${health.host}, model ${health.model} (${health.promptFormat.id} format), ${embedding}. ${scorer.reason}${logprobs}`,
    );
    return true;
  } catch (e) {
    await showError(e, runtime.output, 'Setup check: ');
    return false;
  }
}

export async function chooseModel(runtime: ExactRuntime): Promise<void> {
  try {
    const models = await runtime.client().listModels();
    if (models.length === 0) {
      void vscode.window.showWarningMessage('EXACT: Ollama has no models yet. Pull one in a terminal, e.g. `ollama pull llama3.2:3b`, then try again.');
      return;
    }
    const pick = await vscode.window.showQuickPick(
      models.map((m) => ({ label: m.name, description: m.name === runtime.modelName() ? 'current' : '' })),
      { title: 'EXACT: Choose the Ollama model that writes for you' },
    );
    if (pick) await vscode.workspace.getConfiguration('exact').update('ollama.model', pick.label, vscode.ConfigurationTarget.Global);
  } catch (e) {
    await showError(e, runtime.output, 'Could not list models: ');
  }
}

export async function reindex(runtime: ExactRuntime): Promise<void> {
  if (!runtime.trusted) {
    void vscode.window.showWarningMessage('EXACT: Indexing is disabled in untrusted workspaces.');
    return;
  }
  try {
    const memory = await runtime.memory();
    // The embedding model may have changed its output size under the same name: re-embed first.
    const r = await memory.reembed(await runtime.embedder());
    if (r.reembedded > 0) runtime.output.info(`Re-embedded ${r.reembedded} learned prompts (${r.fromDims} → ${r.toDims} dimensions).`);
    await memory.rebuildIndex();
    await runtime.kickIndexing();
    await runtime.refreshSnapshot();
  } catch (e) {
    await showError(e, runtime.output, 'Re-index failed: ');
  }
}

function defaultExportUri(): vscode.Uri | undefined {
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  return folder ? vscode.Uri.joinPath(folder, 'exact-preferences.json') : undefined;
}

export async function exportData(runtime: ExactRuntime): Promise<void> {
  const target = await vscode.window.showSaveDialog({ title: 'Export EXACT preferences', filters: { JSON: ['json'] }, ...(defaultExportUri() ? { defaultUri: defaultExportUri()! } : {}) });
  if (!target) return;
  try {
    const r = await exportToFile(await runtime.memoryOffline(), target.fsPath);
    void vscode.window.showInformationMessage(`EXACT: Exported ${countOf(r.pairs, 'choice')} to ${target.fsPath}.`);
  } catch (e) {
    await showError(e, runtime.output, 'Export failed: ');
  }
}

export async function importData(runtime: ExactRuntime): Promise<void> {
  const [source] = (await vscode.window.showOpenDialog({ title: 'Import EXACT preferences', filters: { JSON: ['json'] }, canSelectMany: false })) ?? [];
  if (!source) return;
  try {
    const r = await importFromFile(await runtime.memoryOffline(), source.fsPath);
    const notes = [
      r.alreadyPresent > 0 ? `${countOf(r.alreadyPresent, 'choice')} already here` : '',
      r.conflicts.length > 0 ? `${countOf(r.conflicts.length, 'choice')} kept as they are here (same id, other texts: ${r.conflicts.slice(0, 3).join(', ')})` : '',
      r.skippedDeleted > 0 ? `${countOf(r.skippedDeleted, 'choice')} you deleted here left out` : '',
      r.duplicateIds.length > 0 ? `${countOf(r.duplicateIds.length, 'id')} found twice in the file, imported once (${r.duplicateIds.slice(0, 3).join(', ')})` : '',
    ].filter((n) => n !== '');
    void vscode.window.showInformationMessage(`EXACT: Imported ${countOf(r.added, 'new choice')}.${notes.length > 0 ? ` ${notes.join('; ')}.` : ''}`);
    await runtime.refreshSnapshot();
    runtime.kickIndexing().catch((e: unknown) => runtime.output.warn(`Indexing after import did not start: ${errorText(e)}`));
  } catch (e) {
    await showError(e, runtime.output, 'Import failed: ');
  }
}

export async function resetData(runtime: ExactRuntime): Promise<void> {
  const memory = await runtime.memoryOffline();
  const stats = await memory.stats();
  const answer = await vscode.window.showWarningMessage(
    `Delete ${stats.pairs === 1 ? 'the 1 recorded choice' : `all ${stats.pairs} recorded choices`} and everything EXACT learned in this workspace? This cannot be undone (export first to keep a copy).`,
    { modal: true },
    'Delete Everything',
  );
  if (answer !== 'Delete Everything') return;
  try {
    await runtime.cancelIndexing();
    await memory.reset({ confirmed: true, expectedPairs: stats.pairs });
    await runtime.refreshSnapshot();
    void vscode.window.showInformationMessage('EXACT: All preferences were deleted.');
  } catch (e) {
    await showError(e, runtime.output, 'Reset failed: ');
  }
}
