import * as vscode from 'vscode';
import { ATTRIBUTE_LIBRARY, attributeFrequencies, buildAttributeLibrary, topicModes, validateCustomAttribute } from '../core';
import { Personalizer } from '../services/personalizer';
import type { PairView, PreferenceMemory } from '../storage';
import { parseWebviewMessage, type HostToWebview, type ProfileData, type WebviewToHost } from '../shared/protocol';
import { errorText } from './errors';
import type { Disposable } from './host';
import type { ExactRuntime } from './runtime';
import { webviewHtml, webviewOptions } from './webviewHtml';

/** Learned prompts needed before leave-one-out modeling accuracy means anything. */
const MIN_ENTRIES_FOR_ACCURACY = 6;
/** Cosine similarity above which prompts share a topic mode (the local embedder scores related prompts around 0.3-0.6). */
const TOPIC_THRESHOLD = 0.3;

/** The attribute profile: what EXACT learned, by topic, and the controls to change it. */
export class ProfilePanel implements vscode.Disposable {
  private panel: vscode.WebviewPanel | undefined;
  private accuracyCache: { key: string; value: ProfileData['accuracy']; note: string } | undefined;
  private readonly disposables: Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly runtime: ExactRuntime,
  ) {
    this.disposables.push(runtime.onIndexingEvent((e) => {
      if (e.type === 'idle' || e.type === 'done') void this.refresh();
    }));
  }

  show(): void {
    if (this.panel) {
      this.panel.reveal();
      void this.refresh();
      return;
    }
    const panel = vscode.window.createWebviewPanel('exact.profile', 'EXACT Attribute Profile', vscode.ViewColumn.Active, {
      ...webviewOptions(this.extensionUri),
      retainContextWhenHidden: false,
    });
    this.panel = panel;
    panel.webview.html = webviewHtml(panel.webview, this.extensionUri, 'profile', 'EXACT Attribute Profile');
    panel.webview.onDidReceiveMessage((raw: unknown) => {
      const msg = parseWebviewMessage(raw);
      if (msg === undefined) {
        this.runtime.output.warn('Ignored a malformed message from the profile panel.');
        return;
      }
      void this.handle(msg).catch((e: unknown) => {
        this.post({ type: 'notice', text: errorText(e), level: 'error' });
      });
    });
    panel.onDidDispose(() => (this.panel = undefined));
  }

  private post(m: HostToWebview): void {
    void this.panel?.webview.postMessage(m);
  }

  private notice(text: string, level: 'info' | 'warning' | 'error' = 'info'): void {
    this.post({ type: 'notice', text, level });
  }

  async refresh(): Promise<void> {
    if (!this.panel) return;
    const memory = await this.runtime.memoryOffline();
    const data = await this.collect(memory);
    this.post({ type: 'profile', data });
    if (data.accuracy === null && data.entries.length >= MIN_ENTRIES_FOR_ACCURACY && this.runtime.trusted) void this.computeAccuracy(memory, data);
  }

  private async collect(memory: PreferenceMemory): Promise<ProfileData> {
    const [pairs, items, stats, reindex] = await Promise.all([memory.listPairs(), memory.memoryItems(), memory.stats(), memory.needsReindex()]);
    const entries = pairs
      .filter((p) => p.selection !== undefined || p.override !== undefined)
      .map((p) => ({
        pairId: p.id,
        prompt: p.prompt,
        attributes: p.attributes,
        gain: p.selection?.gain ?? 0,
        objective: p.selection?.objective ?? 0,
        model: p.selection?.model ?? '',
        embeddingModel: p.selection?.embeddingModel ?? '',
        createdAt: p.createdAt,
        edited: p.override !== undefined,
        ...(p.notIndexedReason !== undefined ? { unusedBecause: UNUSED_BECAUSE[p.notIndexedReason] } : {}),
      }));
    const key = accuracyKey(items);
    const cached = this.accuracyCache?.key === key ? this.accuracyCache : undefined;
    return {
      frequencies: attributeFrequencies(items),
      modes: topicModes(items, TOPIC_THRESHOLD).map((m) => ({ label: m.label, size: m.memberIds.length, attributes: m.attributes.map((a) => ({ attribute: a.attribute, count: a.count })) })),
      entries,
      accuracy: cached?.value ?? null,
      accuracyNote:
        cached?.note ??
        (items.length < MIN_ENTRIES_FOR_ACCURACY
          ? `Modeling accuracy appears once ${MIN_ENTRIES_FOR_ACCURACY} prompts are learned (${items.length} so far).`
          : 'Computing modeling accuracy on held-out choices…'),
      library: this.library().map((a) => ({ name: a.name, description: a.description, custom: a.custom === true })),
      pending: stats.pending,
      needsReindex: reindex.needed,
      model: this.runtime.modelName(),
      scorer: this.runtime.scorerReason,
      scoring: this.runtime.snapshot.scoring ?? '',
      failed: this.runtime.failedPairs(),
    };
  }

  private library() {
    try {
      return buildAttributeLibrary(this.runtime.settings.customAttributes);
    } catch {
      return [...ATTRIBUTE_LIBRARY];
    }
  }

  /** Leave-one-out C.5.2 accuracy with the real scorer; runs in the background, then re-posts. */
  private async computeAccuracy(memory: PreferenceMemory, data: ProfileData): Promise<void> {
    const items = await memory.memoryItems();
    const key = accuracyKey(items);
    try {
      const [selection, embedder] = await Promise.all([this.runtime.scorer(), this.runtime.embedder()]);
      const personalizer = new Personalizer(memory, embedder, this.runtime.generator(), this.runtime.personalizerSettings(), () => this.library().map((a) => a.name));
      const report = await personalizer.leaveOneOutAccuracy(selection.scorer);
      this.accuracyCache = {
        key,
        value: { accuracy: report.accuracy, improved: report.improved, harmed: report.harmed, total: report.total },
        note: `Leave-one-out over every analysed choice, scored with ${selection.kind}: each one's attributes are retrieved from the other prompts as a request would be (${this.runtime.settings.retrievalMode}); an empty injection counts as not widening.`,
      };
    } catch (e) {
      this.accuracyCache = { key, value: null, note: `Modeling accuracy could not be computed: ${errorText(e)}` };
    }
    if (this.panel) this.post({ type: 'profile', data: { ...data, accuracy: this.accuracyCache.value, accuracyNote: this.accuracyCache.note } });
  }

  private async handle(msg: WebviewToHost): Promise<void> {
    const memory = await this.runtime.memoryOffline();
    switch (msg.type) {
      case 'ready':
      case 'refresh':
        break;
      case 'deleteEntry': {
        const ok = await vscode.window.showWarningMessage('Delete this learned prompt and its preference pair?', { modal: true }, 'Delete');
        if (ok !== 'Delete') return;
        const deleted = await memory.deletePair(msg.pairId);
        this.notice(deleted ? 'Deleted.' : 'That entry was already gone (deleted in another window?); the list is refreshed.', deleted ? 'info' : 'warning');
        await this.runtime.refreshSnapshot(); // the status bar's count
        break;
      }
      case 'editAttributes': {
        const names = new Map(this.library().map((a) => [a.name.toLowerCase(), a.name]));
        const unknown = msg.attributes.filter((a) => !names.has(a.toLowerCase()));
        if (unknown.length > 0) {
          this.notice(`Unknown attribute${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}. Add ${unknown.length > 1 ? 'them' : 'it'} as custom attributes first.`, 'error');
          return;
        }
        await memory.editAttributes(msg.pairId, msg.attributes.length === 0 ? null : msg.attributes.map((a) => names.get(a.toLowerCase())!));
        this.notice('Attributes updated.');
        break;
      }
      case 'addCustomAttribute':
      case 'removeCustomAttribute': {
        const current = this.runtime.settings.customAttributes;
        let next: string[];
        if (msg.type === 'addCustomAttribute') {
          try {
            next = [...current, validateCustomAttribute(msg.name, this.library().map((a) => a.name))];
          } catch (e) {
            this.notice(errorText(e), 'error');
            return;
          }
        } else next = current.filter((n) => n !== msg.name);
        await this.runtime.host.updateSetting('customAttributes', next);
        this.runtime.settings = { ...this.runtime.settings, customAttributes: next };
        this.notice(msg.type === 'addCustomAttribute' ? `Added "${next[next.length - 1]}". It is considered for new and re-indexed choices.` : `Removed "${msg.name}".`);
        break;
      }
      case 'retryFailed':
        this.notice('Trying the failed choices again…');
        await this.runtime.retryFailed();
        break;
      case 'exportData':
      case 'importData':
      case 'reindex':
      case 'reset':
        // These report through VS Code's notifications: clear the panel's line, which would still
        // show the previous action's message.
        this.notice('');
        await vscode.commands.executeCommand(DATA_COMMANDS[msg.type]);
        break;
      default:
        return;
    }
    await this.refresh();
  }

  dispose(): void {
    this.panel?.dispose();
    for (const d of this.disposables) d.dispose();
  }
}

/** The profile's data buttons and the commands they run. */
const DATA_COMMANDS = { exportData: 'exact.exportData', importData: 'exact.importData', reindex: 'exact.reindex', reset: 'exact.resetData' } as const;

/** Why an analysed pair is not among the entries retrieval draws from (PreferenceMemory's reasons). */
const UNUSED_BECAUSE: Record<NonNullable<PairView['notIndexedReason']>, string> = {
  'low-gain': 'not used: no attribute set widened the gap between your choice and the other draft',
  'duplicate-prompt': 'not used: another choice on the same prompt had the larger gain',
  'other-embedding-model': 'not used until re-indexed: analysed with another embedding model',
};

/** Identifies the learned entries an accuracy figure was computed for. */
function accuracyKey(items: ReadonlyArray<{ id: string; attributes: ReadonlyArray<string> }>): string {
  return `${items.length}:${items.map((i) => `${i.id}=${i.attributes.join('|')}`).join(',')}`;
}
