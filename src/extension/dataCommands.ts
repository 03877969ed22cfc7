/** Setup check, model choice, and the memory's maintenance commands (re-index, export, import, reset). */
import { checkOllamaHealth } from '../engines/ollama/health';
import { countOf } from '../shared/plural';
import { exportToFile, importFromFile } from '../storage/importExport';
import { errorText, showError } from './errors';
import type { ExactRuntime } from './runtime';
import { checkVllmSetup } from './vllmCommands';

export async function checkSetup(runtime: ExactRuntime): Promise<boolean> {
  if (runtime.settings.backend === 'vllm') return checkVllmSetup(runtime);
  const { host } = runtime;
  try {
    const health = await host.withProgress('EXACT: Checking Ollama…', false, () => checkOllamaHealth(runtime.client()));
    const scorer = await runtime.scorer();
    const embedding = health.embeddingModel === '' ? 'built-in local embedder' : health.embeddingModelAvailable ? health.embeddingModel : `${health.embeddingModel} is not pulled (run \`ollama pull ${health.embeddingModel}\`); using the built-in local embedder`;
    const logprobs = health.supportsLogprobs ? '' : ' This Ollama version reports no log-probabilities: learning needs the model file on this machine (in-process llama.cpp).';
    void host.showMessage('info', `EXACT is ready: Ollama ${health.version} at ${health.host}, model ${health.model} (${health.promptFormat.id} format), ${embedding}. ${scorer.reason}${logprobs}`);
    return true;
  } catch (e) {
    await showError(host, e, 'Setup check: ');
    return false;
  }
}

export async function chooseModel(runtime: ExactRuntime): Promise<void> {
  const { host } = runtime;
  try {
    const models = await runtime.client().listModels();
    if (models.length === 0) {
      void host.showMessage('warning', 'EXACT: Ollama has no models yet. Pull one in a terminal, e.g. `ollama pull llama3.2:3b`, then try again.');
      return;
    }
    const pick = await host.pick(
      'EXACT: Choose the Ollama model that writes for you',
      models.map((m) => ({ label: m.name, description: m.name === runtime.modelName() ? 'current' : '' })),
    );
    if (pick !== undefined) await host.updateSetting('ollama.model', pick);
  } catch (e) {
    await showError(host, e, 'Could not list models: ');
  }
}

export async function reindex(runtime: ExactRuntime): Promise<void> {
  const { host } = runtime;
  if (!runtime.trusted) {
    void host.showMessage('warning', 'EXACT: Indexing is disabled in untrusted workspaces.');
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
    await showError(host, e, 'Re-index failed: ');
  }
}

export async function exportData(runtime: ExactRuntime): Promise<void> {
  const { host } = runtime;
  const target = await host.chooseSaveFile('Export EXACT preferences', 'exact-preferences.json');
  if (target === undefined) return;
  try {
    const r = await exportToFile(await runtime.memoryOffline(), target);
    void host.showMessage('info', `EXACT: Exported ${countOf(r.pairs, 'choice')} to ${target}.`);
  } catch (e) {
    await showError(host, e, 'Export failed: ');
  }
}

export async function importData(runtime: ExactRuntime): Promise<void> {
  const { host } = runtime;
  const source = await host.chooseOpenFile('Import EXACT preferences');
  if (source === undefined) return;
  try {
    const r = await importFromFile(await runtime.memoryOffline(), source);
    const notes = [
      r.alreadyPresent > 0 ? `${countOf(r.alreadyPresent, 'choice')} already here` : '',
      r.conflicts.length > 0 ? `${countOf(r.conflicts.length, 'choice')} kept as they are here (same id, other texts: ${r.conflicts.slice(0, 3).join(', ')})` : '',
      r.skippedDeleted > 0 ? `${countOf(r.skippedDeleted, 'choice')} you deleted here left out` : '',
      r.duplicateIds.length > 0 ? `${countOf(r.duplicateIds.length, 'id')} found twice in the file, imported once (${r.duplicateIds.slice(0, 3).join(', ')})` : '',
    ].filter((n) => n !== '');
    void host.showMessage('info', `EXACT: Imported ${countOf(r.added, 'new choice')}.${notes.length > 0 ? ` ${notes.join('; ')}.` : ''}`);
    await runtime.refreshSnapshot();
    runtime.kickIndexing().catch((e: unknown) => host.log.warn(`Indexing after import did not start: ${errorText(e)}`));
  } catch (e) {
    await showError(host, e, 'Import failed: ');
  }
}

export async function resetData(runtime: ExactRuntime): Promise<void> {
  const { host } = runtime;
  const memory = await runtime.memoryOffline();
  const stats = await memory.stats();
  const confirmed = await host.confirm(
    `Delete ${stats.pairs === 1 ? 'the 1 recorded choice' : `all ${stats.pairs} recorded choices`} and everything EXACT learned in this workspace? This cannot be undone (export first to keep a copy).`,
    'Delete Everything',
  );
  if (!confirmed) return;
  try {
    await runtime.cancelIndexing();
    await memory.reset({ confirmed: true, expectedPairs: stats.pairs });
    await runtime.refreshSnapshot();
    void host.showMessage('info', 'EXACT: All preferences were deleted.');
  } catch (e) {
    await showError(host, e, 'Reset failed: ');
  }
}
