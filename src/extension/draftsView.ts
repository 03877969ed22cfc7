import { randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import { parseWebviewMessage, type DraftsSnapshot, type HostToWebview, type QueueState, type WebviewToHost } from '../shared/protocol';
import { DraftRequests } from '../services/personalizer';
import { errorText, isAbort, showError } from './errors';
import type { Disposable } from './host';
import type { ExactRuntime, QueueSnapshot } from './runtime';
import { webviewHtml, webviewOptions } from './webviewHtml';

function queueState(s: QueueSnapshot): QueueState {
  return { pending: s.pending, running: s.running, learned: s.learned, ...(s.lastError ? { lastError: s.lastError } : {}) };
}

/** The latest drafts and their prompt, kept in the workspace state so that a reloaded view can still show and choose them. */
type CurrentDrafts = { -readonly [K in keyof DraftsSnapshot]: DraftsSnapshot[K] };
const CURRENT_DRAFTS_KEY = 'exact.drafts.current';
const SIDE_BY_SIDE_TITLE = 'EXACT Drafts Side by Side';

/** The drafts view: two drafts for a prompt, the user's choice recorded durably, then learned from. */
export class DraftsViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly viewId = 'exact.drafts';
  private view: vscode.WebviewView | undefined;
  /** The same drafts in an editor-area panel (command exact.compareDrafts); both get every message. */
  private panel: vscode.WebviewPanel | undefined;
  private generation: AbortController | undefined;
  /** The prompt and drafts of recent requests, so a choice is recorded for what was generated, once. */
  private readonly requests = new DraftRequests();
  private readonly disposables: Disposable[] = [];
  /** What a (re)loading view is sent: tokens posted while the view was hidden never reached it. */
  private current: CurrentDrafts | undefined;

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly runtime: ExactRuntime,
    private readonly workspaceState?: vscode.Memento,
  ) {
    this.disposables.push(runtime.onSnapshot((s) => this.post({ type: 'queue', queue: queueState(s) })));
    const saved = workspaceState?.get<CurrentDrafts>(CURRENT_DRAFTS_KEY);
    if (saved !== undefined) {
      // A generation the previous window did not finish ended with it.
      this.current = { ...saved, running: false, stopped: saved.stopped || saved.running };
      this.requests.begin(saved.requestId, saved.prompt, saved.drafts.map((d) => d.slot));
      for (const slot of saved.done) this.requests.finishDraft(saved.requestId, slot, saved.texts[slot] ?? '');
    }
  }

  private setCurrent(next: CurrentDrafts | undefined): void {
    this.current = next;
    void this.workspaceState?.update(CURRENT_DRAFTS_KEY, next);
  }

  /** Saves a change to `current` (tokens are saved with their draft's end, not one by one). */
  private saveCurrent(c: CurrentDrafts): void {
    if (this.current === c) this.setCurrent(c);
  }

  private forget(requestId: string): void {
    this.requests.forget(requestId);
    if (this.current?.requestId === requestId) this.setCurrent(undefined);
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    this.attach(view.webview, 'EXACT Drafts');
    view.onDidDispose(() => {
      if (!this.panel) this.generation?.abort();
      this.view = undefined;
    });
  }

  /** Shows the drafts in an editor-area panel, wide enough for the two drafts side by side. */
  openSideBySide(): void {
    if (this.panel) {
      this.panel.reveal();
      return;
    }
    const panel = vscode.window.createWebviewPanel('exact.draftsSideBySide', SIDE_BY_SIDE_TITLE, vscode.ViewColumn.Active, webviewOptions(this.extensionUri));
    this.panel = panel;
    this.attach(panel.webview, SIDE_BY_SIDE_TITLE);
    panel.onDidDispose(() => {
      if (!this.view) this.generation?.abort();
      this.panel = undefined;
    });
  }

  /** Loads the drafts page into a webview (the side-bar view or the side-by-side panel) and listens to it. */
  private attach(webview: vscode.Webview, title: string): void {
    webview.options = webviewOptions(this.extensionUri);
    webview.html = webviewHtml(webview, this.extensionUri, 'drafts', title);
    webview.onDidReceiveMessage((raw: unknown) => {
      const msg = parseWebviewMessage(raw);
      if (msg === undefined) {
        this.runtime.output.warn('Ignored a malformed message from the drafts view.');
        return;
      }
      void this.handle(msg, webview);
    });
  }

  /** Puts the editor selection into the prompt box (when the view is open). */
  prefill(prompt: string): void {
    if (prompt.trim()) this.post({ type: 'prefill', prompt });
  }

  private post(m: HostToWebview): void {
    for (const webview of [this.view?.webview, this.panel?.webview]) void webview?.postMessage(m);
  }

  private async handle(msg: WebviewToHost, from: vscode.Webview): Promise<void> {
    switch (msg.type) {
      case 'ready': {
        const queue = queueState(await this.runtime.refreshSnapshot());
        const current = this.current === undefined ? {} : { current: this.current };
        void from.postMessage({ type: 'init', prompt: selectedText(), trusted: this.runtime.trusted, queue, ...current } satisfies HostToWebview);
        break;
      }
      case 'openSideBySide':
        this.openSideBySide();
        break;
      case 'generate':
        await this.generate(msg.prompt);
        break;
      case 'stop':
        this.generation?.abort();
        break;
      case 'choose':
        await this.choose(msg.requestId, msg.preferred, msg.preferredText);
        break;
      case 'skip':
        this.forget(msg.requestId);
        break;
      case 'keepEdits': {
        // In place: a generation still running holds this object and marks it finished later.
        const c = this.current;
        if (c?.requestId === msg.requestId) {
          c.edits = msg.edits;
          this.saveCurrent(c);
        }
        break;
      }
      case 'insert':
        await insertIntoEditor(msg.text);
        break;
      case 'openProfile':
        await vscode.commands.executeCommand('exact.showProfile');
        break;
      default:
        break;
    }
  }

  private async generate(prompt: string): Promise<void> {
    if (!this.runtime.trusted) {
      this.post({ type: 'notice', text: 'Generation is disabled in untrusted workspaces. Trust this workspace to use EXACT.', level: 'warning' });
      return;
    }
    this.generation?.abort();
    this.setCurrent(undefined); // the view drops earlier drafts when it asks for new ones
    const controller = new AbortController();
    this.generation = controller;
    const requestId = randomUUID();
    try {
      const personalizer = await this.runtime.personalizer();
      const plans = await personalizer.planDrafts(prompt, controller.signal);
      this.requests.begin(requestId, prompt, plans.map((p) => p.slot));
      const drafts = plans.map((p) => ({ slot: p.slot, attributes: p.attributes, why: p.why }));
      const current: CurrentDrafts = { requestId, prompt, drafts, texts: {}, done: [], cut: [], running: true, stopped: false };
      this.setCurrent(current);
      this.post({ type: 'draftsStarted', requestId, prompt, drafts });
      // Attribute names only: the log never holds the user's text.
      this.runtime.output.info(`Drafts: ${plans.map((p) => `${p.slot}=[${p.attributes.join(', ')}]`).join(' ')}`);
      let stopped = false;
      for (const plan of plans) {
        let text = '';
        let stoppedAtLimit = false;
        try {
          ({ text, stoppedAtLimit } = await personalizer.generateDraft(prompt, plan, (t) => {
            text += t;
            current.texts[plan.slot] = text;
            this.post({ type: 'draftToken', requestId, slot: plan.slot, text: t });
          }, controller.signal));
        } catch (e) {
          if (!isAbort(e)) throw e;
          stopped = true;
        }
        this.requests.finishDraft(requestId, plan.slot, text);
        this.post({ type: 'draftDone', requestId, slot: plan.slot, text, stoppedAtLimit });
        current.texts[plan.slot] = text;
        current.done.push(plan.slot);
        if (stoppedAtLimit) current.cut.push(plan.slot);
        this.saveCurrent(current);
        if (stopped) break;
      }
      current.running = false;
      current.stopped = stopped;
      this.saveCurrent(current);
      this.post({ type: 'draftsFinished', requestId, stopped });
    } catch (e) {
      if (this.current?.requestId === requestId) this.setCurrent(undefined);
      this.post({ type: 'draftsFailed', requestId, message: errorText(e) });
      void showError(this.runtime.host, e, 'Could not generate drafts. ');
    } finally {
      if (this.generation === controller) this.generation = undefined;
    }
  }

  /** Records the preferred draft (as the user may have edited it) against the other draft as generated. */
  private async choose(requestId: string, preferredSlot: string, preferred: string): Promise<void> {
    const request = this.requests.take(requestId, preferredSlot);
    if (request === undefined) {
      this.post({ type: 'choiceFailed', requestId, message: 'These drafts are no longer current (already chosen, or not finished). Generate again.' });
      return;
    }
    try {
      const personalizer = await this.runtime.personalizer();
      const pair = await personalizer.recordChoice(request.prompt, preferred, request.rejected);
      this.forget(requestId);
      this.post({ type: 'choiceSaved', requestId, pairId: pair.id });
      this.runtime.output.info(`Recorded choice ${pair.id}.`);
    } catch (e) {
      this.post({ type: 'choiceFailed', requestId, message: errorText(e) });
      return;
    }
    this.runtime.kickIndexing().catch((e: unknown) => void showError(this.runtime.host, e, 'Your choice is saved, but learning from it failed to start. '));
  }

  dispose(): void {
    this.generation?.abort();
    this.panel?.dispose();
    for (const d of this.disposables) d.dispose();
  }
}

function selectedText(): string {
  const editor = vscode.window.activeTextEditor;
  if (!editor || editor.selection.isEmpty) return '';
  return editor.document.getText(editor.selection);
}

async function insertIntoEditor(text: string): Promise<void> {
  const editor = vscode.window.activeTextEditor ?? vscode.window.visibleTextEditors[0];
  if (!editor) {
    const doc = await vscode.workspace.openTextDocument({ content: text });
    await vscode.window.showTextDocument(doc);
    return;
  }
  await editor.edit((b) => b.replace(editor.selection, text));
}
