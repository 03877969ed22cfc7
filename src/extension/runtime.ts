/**
 * Builds and owns the engine stack for one window from the settings: the Ollama client and
 * generator, the embedder, the preference memory in workspace storage, the scorer and the
 * background indexing queue. Everything is created lazily and rebuilt when settings change.
 */
import * as path from 'node:path';
import { buildAttributeLibrary, type Embedder, type TextGenerator } from '../core';
import { OllamaClient } from '../engines/ollama/client';
import { resolveOllamaConfig } from '../engines/ollama/config';
import { chooseEmbedder, configuredModels } from '../engines/ollama/embedder';
import { OllamaGenerator } from '../engines/ollama/generator';
import type { ComputeBackend } from '../engines/llama/computeBackend';
import { llamaScorerFactory, scoresOnVllm, selectScorer, selectVllmScorer, type ScorerSelection } from '../engines/scorerSelection';
import { resolveVllmConfig, VllmClient } from '../engines/vllm/client';
import { VllmGenerator } from '../engines/vllm/generator';
import { IndexingQueue, type IndexingEvent } from '../services/indexingQueue';
import { Personalizer, type PersonalizerSettings } from '../services/personalizer';
import { PreferenceMemory } from '../storage';
import { errorText } from './errors';
import { Emitter, type Disposable, type EditorHost } from './host';
import { readSettings, type ExactSettings } from './settings';

/** The secret storage key of the vLLM server's API key (never in settings files). */
export const VLLM_API_KEY_SECRET = 'exact.vllm.apiKey';

export interface QueueSnapshot {
  readonly running: boolean;
  readonly position: number;
  readonly total: number;
  readonly pending: number;
  readonly learned: number;
  readonly lastError?: string;
  /** Which scorer runs and on what (CPU / GPU), and why: for the status bar's tooltip and the profile. */
  readonly scoring?: string;
}

/** The snapshot after a queue event (undefined: the event does not change it). */
export function nextSnapshot(s: QueueSnapshot, e: IndexingEvent): QueueSnapshot | undefined {
  switch (e.type) {
    case 'queued':
      return { ...s, running: true, total: e.total, pending: e.total, lastError: undefined };
    case 'started':
      return { ...s, running: true, position: e.position, total: e.total, pending: e.total - e.position + 1 };
    case 'done':
      return { ...s, position: e.position, total: e.total, pending: e.total - e.position, learned: s.learned + (e.stored ? 1 : 0) };
    case 'failed':
      return { ...s, lastError: e.error };
    case 'idle':
      return { ...s, running: false, pending: e.remaining, lastError: e.error ?? s.lastError };
    default:
      return undefined;
  }
}

export class ExactRuntime implements Disposable {
  settings: ExactSettings;
  private customAttributeProblem: string | undefined;
  private clientCache: OllamaClient | undefined;
  private generatorCache: TextGenerator | undefined;
  private vllmClientCache: VllmClient | undefined;
  private vllmApiKey = '';
  /** Resolves once the API key has been read from the secret storage. */
  readonly secretsRead: Promise<void>;
  private embedderCache: Promise<Embedder> | undefined;
  private memoryCache: Promise<PreferenceMemory> | undefined;
  private scorerCache: Promise<ScorerSelection> | undefined;
  private queueCache: Promise<IndexingQueue> | undefined;
  private currentQueue: IndexingQueue | undefined;
  private personalizerCache: Promise<Personalizer> | undefined;
  private readonly queueEvents = new Emitter<IndexingEvent>();
  private readonly snapshotEvents = new Emitter<QueueSnapshot>();
  readonly onIndexingEvent = this.queueEvents.event;
  readonly onSnapshot = this.snapshotEvents.event;
  snapshot: QueueSnapshot = { running: false, position: 0, total: 0, pending: 0, learned: 0 };
  /** The last scorer selection's reason (shown in the profile); '' before the first. */
  scorerReason = '';
  private readonly disposables: Disposable[] = [this.queueEvents, this.snapshotEvents];
  /** The reload after the last change of the settings or the vLLM API key (tests wait for it). */
  reloaded: Promise<void> = Promise.resolve();

  constructor(readonly host: EditorHost) {
    this.settings = readSettings(host.settings);
    this.disposables.push(
      host.onSettingsChanged((affects) => (this.reloaded = this.reload(affects))),
      host.secrets.onDidChange((key) => {
        if (key === VLLM_API_KEY_SECRET) this.reloaded = this.readApiKey().then(() => this.dropEngines());
      }),
    );
    this.secretsRead = this.readApiKey();
  }

  private async readApiKey(): Promise<void> {
    try {
      this.vllmApiKey = (await this.host.secrets.get(VLLM_API_KEY_SECRET)) ?? '';
    } catch (e) {
      this.output.warn(`Could not read the vLLM API key from the secret storage: ${errorText(e)}`);
    }
    this.vllmClientCache = undefined;
  }

  get output(): EditorHost['log'] {
    return this.host.log;
  }

  get storageFolder(): string {
    return this.host.storageFolder;
  }

  get trusted(): boolean {
    return this.host.isTrusted();
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
        void this.host.showMessage('warning', message, 'Open Settings').then((c) => {
          if (c !== undefined) void this.host.executeCommand('workbench.action.openSettings', 'exact.customAttributes');
        });
      }
      return buildAttributeLibrary([]).map((a) => a.name);
    }
  }

  client(): OllamaClient {
    this.clientCache ??= new OllamaClient(resolveOllamaConfig(this.settings.ollama));
    return this.clientCache;
  }

  /** The client of the vLLM server (exact.vllm.*; the API key from the secret storage). */
  vllmClient(): VllmClient {
    const v = this.settings.vllm;
    this.vllmClientCache ??= new VllmClient(
      resolveVllmConfig({ baseUrl: v.url, model: v.model, apiKey: this.vllmApiKey, scoreTimeoutMs: 1000 * v.timeoutSeconds, firstTokenTimeoutMs: 1000 * v.timeoutSeconds }),
    );
    return this.vllmClientCache;
  }

  /** Who writes: Ollama (default) or the vLLM server (exact.backend). */
  generator(): TextGenerator {
    this.generatorCache ??= this.settings.backend === 'vllm' ? new VllmGenerator(this.vllmClient(), this.settings.decoding.maxTokens) : new OllamaGenerator(this.client());
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
      return PreferenceMemory.open(this.storageFolder, { models: { ...configuredModels(this.client().config), model: this.modelName() } });
    }
  }

  modelName(): string {
    if (this.settings.backend === 'vllm') return `vllm:${this.settings.vllm.model.trim() || this.vllmClient().host}`;
    return this.client().config.model;
  }

  personalizer(): Promise<Personalizer> {
    this.personalizerCache ??= (async () => {
      await this.secretsRead;
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
    const { scorer: setting, backend } = this.settings;
    if (scoresOnVllm(setting, backend)) {
      this.scorerCache ??= this.secretsRead.then(() => {
        const sel = selectVllmScorer(this.vllmClient(), setting, backend);
        this.scorerReason = sel.reason;
        this.output.info(sel.reason);
        this.setScoring(`Scoring on the vLLM server at ${this.vllmClient().host} (on whatever that server runs on).`);
        return sel;
      });
      return this.retryable(this.scorerCache, () => (this.scorerCache = undefined));
    }
    this.scorerCache ??= selectScorer({
      setting: this.settings.scorer,
      client: this.client(),
      modelPath: this.settings.modelPath,
      createLlamaScorer: llamaScorerFactory({
        workerPath: path.join(this.host.extensionPath, 'dist', 'scorerWorker.mjs'),
        idleReleaseMs: 60_000,
        memory: this.settings.indexingMemory,
        onModelLoaded: (backend, ms) => this.onModelLoaded(backend, ms),
      }),
    }).then((sel) => {
      this.scorerReason = sel.reason;
      this.output.info(sel.reason);
      this.setScoring(sel.kind === 'ollama' ? 'Scoring through Ollama log-probabilities (on whatever Ollama runs on).' : 'Scoring in-process with llama.cpp (the CPU or GPU is known once the model is loaded).');
      return sel;
    });
    return this.retryable(this.scorerCache, () => (this.scorerCache = undefined));
  }

  /** Logs the backend of the first load and of any load that runs elsewhere (unloadAfterBatch reloads every batch). */
  private onModelLoaded(backend: ComputeBackend, loadMilliseconds: number): void {
    const where = backend.kind === 'cpu' ? 'the CPU' : `the GPU (${backend.kind})`;
    const scoring = `Scoring in-process with llama.cpp on ${where}. ${backend.reason}`;
    if (scoring === this.snapshot.scoring) return;
    this.output.info(`${scoring} (model loaded in ${Math.round(loadMilliseconds)} ms)`);
    this.setScoring(scoring);
  }

  private setScoring(scoring: string): void {
    if (this.snapshot.scoring === scoring) return;
    this.snapshot = { ...this.snapshot, scoring };
    this.snapshotEvents.fire(this.snapshot);
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
          // Capping memory: the scorer's worker thread goes too (about 50 MB in bench/results/memory.md).
          await selection.scorer.release?.(this.settings.indexingMemory === 'unloadAfterBatch');
          await this.refreshSnapshot();
        },
      });
      queue.onEvent((e) => this.onQueueEvent(e));
      this.currentQueue = queue;
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

  /** The pairs the current queue gave up on for now, with why. */
  failedPairs(): { pairId: string; error: string }[] {
    return [...(this.currentQueue?.failedPairs ?? new Map<string, string>())].map(([pairId, error]) => ({ pairId, error }));
  }

  /** The profile's "Retry failed": forget the failures and index again now. */
  async retryFailed(): Promise<void> {
    (await this.queue()).retryFailed();
    await this.kickIndexing();
  }

  async cancelIndexing(): Promise<void> {
    if (this.queueCache) (await this.queueCache).cancel();
  }

  private onQueueEvent(e: IndexingEvent): void {
    this.queueEvents.fire(e);
    const next = nextSnapshot(this.snapshot, e);
    if (next === undefined) return;
    this.snapshot = next;
    this.host.setContext('exact.indexing', next.running);
    this.snapshotEvents.fire(next);
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

  private async reload(affects: (section: string) => boolean): Promise<void> {
    const before = this.settings;
    this.settings = readSettings(this.host.settings);
    const engineChanged = ['exact.ollama', 'exact.scorer', 'exact.modelPath', 'exact.indexing.memory', 'exact.backend', 'exact.vllm'].some(affects);
    const indexingChanged = engineChanged || ['exact.attributesPerPrompt', 'exact.indexing', 'exact.customAttributes'].some(affects);
    if (engineChanged) await this.dropEngines();
    else if (indexingChanged) await this.dropQueue();
    this.personalizerCache = undefined;
    const modelChanged = before.backend !== this.settings.backend || before.vllm.model !== this.settings.vllm.model || before.vllm.url !== this.settings.vllm.url;
    if (modelChanged || before.ollama.model !== this.settings.ollama.model || before.ollama.embeddingModel !== this.settings.ollama.embeddingModel) {
      await this.offerReindex();
    }
  }

  /** Forgets every connection and engine (settings or the API key changed); the next use rebuilds them. */
  private async dropEngines(): Promise<void> {
    this.clientCache = undefined;
    this.vllmClientCache = undefined;
    this.generatorCache = undefined;
    this.embedderCache = undefined;
    const old = this.scorerCache;
    this.scorerCache = undefined;
    this.memoryCache = undefined;
    old?.then((s) => s.scorer.dispose?.()).catch(() => undefined);
    await this.dropQueue();
    this.personalizerCache = undefined;
  }

  private async dropQueue(): Promise<void> {
    if (this.queueCache) (await this.queueCache.catch(() => undefined))?.dispose();
    this.queueCache = undefined;
    this.currentQueue = undefined;
  }

  /** When stored selections came from another model or embedder, offer to index again. */
  async offerReindex(): Promise<void> {
    try {
      const status = await (await this.memory()).needsReindex();
      if (!status.needed) return;
      const choice = await this.host.showMessage(
        'info',
        `EXACT: ${status.stale} learned prompts were analysed with another model or embedding model. Re-index them with ${status.current.model}?`,
        'Re-index',
        'Later',
      );
      if (choice === 'Re-index') await this.host.executeCommand('exact.reindex');
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
    this.currentQueue?.dispose();
    void this.cancelIndexing();
    void this.scorerCache?.then((s) => s.scorer.dispose?.()).catch(() => undefined);
    void this.memoryCache?.then((m) => m.close()).catch(() => undefined);
    for (const d of this.disposables) d.dispose();
  }
}

