/**
 * Builds and owns the engine stack for one window from the settings: the Ollama client and
 * generator, the embedder, the preference memory in workspace storage, the scorer and the
 * background indexing queue. Everything is created lazily and rebuilt when settings change.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { buildAttributeLibrary, type Embedder } from '../core';
import { OllamaClient } from '../engines/ollama/client';
import { resolveOllamaConfig } from '../engines/ollama/config';
import { chooseEmbedder } from '../engines/ollama/embedder';
import { OllamaGenerator } from '../engines/ollama/generator';
import { llamaScorerFactory, selectScorer, type ScorerSelection } from '../engines/scorerSelection';
import { IndexingQueue, type IndexingEvent } from '../services/indexingQueue';
import { Personalizer, type PersonalizerSettings } from '../services/personalizer';
import { PreferenceMemory } from '../storage';
import { readSettings, type ExactSettings } from './settings';

export interface QueueSnapshot {
  readonly running: boolean;
  readonly position: number;
  readonly total: number;
  readonly pending: number;
  readonly learned: number;
  readonly lastError?: string;
}

export class ExactRuntime implements vscode.Disposable {
  settings: ExactSettings = readSettings();
  private customAttributeProblem: string | undefined;
  private clientCache: OllamaClient | undefined;
  private generatorCache: OllamaGenerator | undefined;
  private embedderCache: Promise<Embedder> | undefined;
  private memoryCache: Promise<PreferenceMemory> | undefined;
  private scorerCache: Promise<ScorerSelection> | undefined;
  private queueCache: Promise<IndexingQueue> | undefined;
  private personalizerCache: Promise<Personalizer> | undefined;
  private readonly queueEvents = new vscode.EventEmitter<IndexingEvent>();
  private readonly snapshotEvents = new vscode.EventEmitter<QueueSnapshot>();
  readonly onIndexingEvent = this.queueEvents.event;
  readonly onSnapshot = this.snapshotEvents.event;
  snapshot: QueueSnapshot = { running: false, position: 0, total: 0, pending: 0, learned: 0 };
  private readonly disposables: vscode.Disposable[] = [this.queueEvents, this.snapshotEvents];

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly output: vscode.LogOutputChannel,
  ) {
    this.disposables.push(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('exact')) void this.reload(e);
      }),
    );
  }

  get storageFolder(): string {
    return (this.context.storageUri ?? this.context.globalStorageUri).fsPath;
  }

  get trusted(): boolean {
    return vscode.workspace.isTrusted;
  }

  library(): string[] {
    try {
      const names = buildAttributeLibrary(this.settings.customAttributes).map((a) => a.name);
      this.customAttributeProblem = undefined;
      return names;
    } catch (e) {
      const message = `EXACT: Your custom attributes are not used until this is fixed: ${(e as Error).message}`;
      this.output.warn(message);
      // Once per distinct problem: library() runs for every draft and every indexed pair.
      if (this.customAttributeProblem !== message) {
        this.customAttributeProblem = message;
        void vscode.window.showWarningMessage(message, 'Open Settings').then((c) => {
          if (c !== undefined) void vscode.commands.executeCommand('workbench.action.openSettings', 'exact.customAttributes');
        });
      }
      return buildAttributeLibrary([]).map((a) => a.name);
    }
  }

  client(): OllamaClient {
    this.clientCache ??= new OllamaClient(resolveOllamaConfig(this.settings.ollama));
    return this.clientCache;
  }

  generator(): OllamaGenerator {
    this.generatorCache ??= new OllamaGenerator(this.client());
    return this.generatorCache;
  }

  embedder(): Promise<Embedder> {
    this.embedderCache ??= chooseEmbedder(this.client()).then((choice) => {
      if (choice.reason) this.output.info(choice.reason);
      return choice.embedder;
    });
    return this.retryable(this.embedderCache, () => (this.embedderCache = undefined));
  }

  /** The memory, keyed to the current generation model and embedder. */
  memory(): Promise<PreferenceMemory> {
    this.memoryCache ??= (async () => {
      const embedder = await this.embedder();
      const memory = await PreferenceMemory.open(this.storageFolder, { models: { model: this.modelName(), embeddingModel: embedder.id } });
      this.output.info(`Preference memory at ${this.storageFolder}`);
      return memory;
    })();
    return this.retryable(this.memoryCache, () => (this.memoryCache = undefined));
  }

  /** The memory without asking Ollama anything (for viewing the profile while Ollama is down). */
  async memoryOffline(): Promise<PreferenceMemory> {
    try {
      return await this.memory();
    } catch {
      return PreferenceMemory.open(this.storageFolder, { models: { model: this.modelName(), embeddingModel: '' } });
    }
  }

  modelName(): string {
    return this.client().config.model;
  }

  personalizer(): Promise<Personalizer> {
    this.personalizerCache ??= (async () => {
      const [memory, embedder] = await Promise.all([this.memory(), this.embedder()]);
      return new Personalizer(memory, embedder, this.generator(), this.personalizerSettings(), () => this.library());
    })();
    return this.retryable(this.personalizerCache, () => (this.personalizerCache = undefined));
  }

  /** The Personalizer's settings, read from the current VS Code settings. */
  personalizerSettings(): PersonalizerSettings {
    const s = this.settings;
    return {
      k: s.k,
      retrievalMode: s.retrievalMode,
      neighbors: s.neighbors,
      ...(s.similarityFloor !== undefined ? { similarityFloor: s.similarityFloor, abstention: { similarityFloor: s.similarityFloor } } : {}),
      decoding: s.decoding,
      maxInputChars: s.maxInputChars,
      ...(s.ollama.numCtx !== undefined ? { contextTokens: s.ollama.numCtx } : {}),
    };
  }

  scorer(): Promise<ScorerSelection> {
    this.scorerCache ??= selectScorer({
      setting: this.settings.scorer,
      client: this.client(),
      modelPath: this.settings.modelPath,
      createLlamaScorer: llamaScorerFactory({
        workerPath: path.join(this.context.extensionPath, 'dist', 'scorerWorker.mjs'),
        idleReleaseMs: 60_000,
      }),
    }).then((sel) => {
      this.output.info(sel.reason);
      return sel;
    });
    return this.retryable(this.scorerCache, () => (this.scorerCache = undefined));
  }

  queue(): Promise<IndexingQueue> {
    this.queueCache ??= (async () => {
      const [memory, embedder, selection] = await Promise.all([this.memory(), this.embedder(), this.scorer()]);
      const queue = new IndexingQueue({
        memory,
        embedder,
        scorer: selection.scorer,
        scorerKind: selection.kind,
        model: this.modelName(),
        library: this.library(),
        k: this.settings.k,
        algorithm: this.settings.algorithm,
        ...(this.settings.significance !== undefined ? { significance: this.settings.significance } : {}),
        onIdle: async () => {
          await selection.scorer.release?.();
          await this.refreshSnapshot();
        },
      });
      queue.onEvent((e) => this.onQueueEvent(e));
      return queue;
    })();
    return this.retryable(this.queueCache, () => (this.queueCache = undefined));
  }

  /** Starts background indexing of whatever is pending. Errors are reported as events. */
  async kickIndexing(): Promise<void> {
    if (!this.trusted) return;
    try {
      (await this.queue()).kick();
    } catch (e) {
      this.snapshot = { ...this.snapshot, running: false, lastError: errorText(e) };
      this.snapshotEvents.fire(this.snapshot);
      throw e;
    }
  }

  async cancelIndexing(): Promise<void> {
    if (this.queueCache) (await this.queueCache).cancel();
  }

  private onQueueEvent(e: IndexingEvent): void {
    this.queueEvents.fire(e);
    const s = this.snapshot;
    switch (e.type) {
      case 'queued':
        this.snapshot = { ...s, running: true, total: e.total, pending: e.total, lastError: undefined };
        break;
      case 'started':
        this.snapshot = { ...s, running: true, position: e.position, total: e.total, pending: e.total - e.position + 1 };
        break;
      case 'done':
        this.snapshot = { ...s, position: e.position, total: e.total, pending: e.total - e.position, learned: s.learned + (e.stored ? 1 : 0) };
        break;
      case 'failed':
        this.snapshot = { ...s, lastError: e.error };
        break;
      case 'idle':
        this.snapshot = { ...s, running: false, pending: e.remaining, lastError: e.error ?? s.lastError };
        break;
      default:
        return;
    }
    void vscode.commands.executeCommand('setContext', 'exact.indexing', this.snapshot.running);
    this.snapshotEvents.fire(this.snapshot);
  }

  /** Re-reads counts from the memory (after start-up, edits, imports, other windows). */
  async refreshSnapshot(): Promise<QueueSnapshot> {
    try {
      const memory = await this.memoryOffline();
      const stats = await memory.stats();
      this.snapshot = { ...this.snapshot, learned: stats.selected, pending: stats.pending + stats.stale };
    } catch (e) {
      this.output.warn(`Could not read the preference memory: ${errorText(e)}`);
    }
    this.snapshotEvents.fire(this.snapshot);
    return this.snapshot;
  }

  private async reload(e: vscode.ConfigurationChangeEvent): Promise<void> {
    const before = this.settings;
    this.settings = readSettings();
    const engineChanged = ['exact.ollama', 'exact.scorer', 'exact.modelPath'].some((k) => e.affectsConfiguration(k));
    const indexingChanged = engineChanged || ['exact.attributesPerPrompt', 'exact.indexing', 'exact.customAttributes'].some((k) => e.affectsConfiguration(k));
    if (engineChanged) {
      this.clientCache = undefined;
      this.generatorCache = undefined;
      this.embedderCache = undefined;
      const old = this.scorerCache;
      this.scorerCache = undefined;
      this.memoryCache = undefined;
      old?.then((s) => s.scorer.dispose?.()).catch(() => undefined);
    }
    if (indexingChanged) {
      if (this.queueCache) (await this.queueCache.catch(() => undefined))?.cancel();
      this.queueCache = undefined;
    }
    this.personalizerCache = undefined;
    if (before.ollama.model !== this.settings.ollama.model || before.ollama.embeddingModel !== this.settings.ollama.embeddingModel) {
      await this.offerReindex();
    }
  }

  /** When stored selections came from another model or embedder, offer to index again. */
  async offerReindex(): Promise<void> {
    try {
      const status = await (await this.memory()).needsReindex();
      if (!status.needed) return;
      const choice = await vscode.window.showInformationMessage(
        `EXACT: ${status.stale} learned prompts were analysed with another model or embedding model. Re-index them with ${status.current.model}?`,
        'Re-index',
        'Later',
      );
      if (choice === 'Re-index') await vscode.commands.executeCommand('exact.reindex');
    } catch (err) {
      this.output.warn(`Re-index check failed: ${errorText(err)}`);
    }
  }

  /** A cached promise that is forgotten when it fails, so the next call tries again. */
  private retryable<T>(p: Promise<T>, forget: () => void): Promise<T> {
    return p.catch((e: unknown) => {
      forget();
      throw e;
    });
  }

  dispose(): void {
    void this.cancelIndexing();
    void this.scorerCache?.then((s) => s.scorer.dispose?.()).catch(() => undefined);
    void this.memoryCache?.then((m) => m.close()).catch(() => undefined);
    for (const d of this.disposables) d.dispose();
  }
}

export function errorText(e: unknown): string {
  if (e instanceof Error) {
    const action = (e as { action?: unknown }).action;
    return typeof action === 'string' && action.length > 0 ? `${e.message} ${action}` : e.message;
  }
  return String(e);
}
