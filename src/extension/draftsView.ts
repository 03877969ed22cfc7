import { randomUUID } from 'node:crypto';
import * as vscode from 'vscode';
import { parseWebviewMessage, type HostToWebview, type QueueState, type WebviewToHost } from '../shared/protocol';
import { DraftRequests } from '../services/personalizer';
import { errorText, isAbort, showError } from './errors';
import type { Disposable } from './host';
import type { ExactRuntime, QueueSnapshot } from './runtime';
import { webviewHtml, webviewOptions } from './webviewHtml';

function queueState(s: QueueSnapshot): QueueState {
  return { pending: s.pending, running: s.running, learned: s.learned, ...(s.lastError ? { lastError: s.lastError } : {}) };
}

/** The drafts view: two drafts for a prompt, the user's choice recorded durably, then learned from. */
export class DraftsViewProvider implements vscode.WebviewViewProvider, vscode.Disposable {
  static readonly viewId = 'exact.drafts';
  private view: vscode.WebviewView | undefined;
  private generation: AbortController | undefined;
  /** The prompt and drafts of recent requests, so a choice is recorded for what was generated, once. */
  private readonly requests = new DraftRequests();
  private readonly disposables: Disposable[] = [];

  constructor(
    private readonly extensionUri: vscode.Uri,
    private readonly runtime: ExactRuntime,
  ) {
    this.disposables.push(runtime.onSnapshot((s) => this.post({ type: 'queue', queue: queueState(s) })));
  }

  resolveWebviewView(view: vscode.WebviewView): void {
    this.view = view;
    view.webview.options = webviewOptions(this.extensionUri);
    view.webview.html = webviewHtml(view.webview, this.extensionUri, 'drafts', 'EXACT Drafts');
    view.webview.onDidReceiveMessage((raw: unknown) => {
      const msg = parseWebviewMessage(raw);
      if (msg === undefined) {
        this.runtime.output.warn('Ignored a malformed message from the drafts view.');
        return;
      }
      void this.handle(msg);
    });
    view.onDidDispose(() => {
      this.generation?.abort();
      this.view = undefined;
    });
  }

  /** Puts the editor selection into the prompt box (when the view is open). */
  prefill(prompt: string): void {
    if (prompt.trim()) this.post({ type: 'prefill', prompt });
  }

  private post(m: HostToWebview): void {
    void this.view?.webview.postMessage(m);
  }

  private async handle(msg: WebviewToHost): Promise<void> {
    switch (msg.type) {
      case 'ready':
        this.post({ type: 'init', prompt: selectedText(), trusted: this.runtime.trusted, queue: queueState(await this.runtime.refreshSnapshot()) });
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
        this.requests.forget(msg.requestId);
        break;
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
    const controller = new AbortController();
    this.generation = controller;
    const requestId = randomUUID();
    try {
      const personalizer = await this.runtime.personalizer();
      const plans = await personalizer.planDrafts(prompt, controller.signal);
      this.requests.begin(requestId, prompt, plans.map((p) => p.slot));
      this.post({ type: 'draftsStarted', requestId, drafts: plans.map((p) => ({ slot: p.slot, attributes: p.attributes, why: p.why })) });
      // Attribute names only: the log never holds the user's text.
      this.runtime.output.info(`Drafts: ${plans.map((p) => `${p.slot}=[${p.attributes.join(', ')}]`).join(' ')}`);
      let stopped = false;
      for (const plan of plans) {
        let text = '';
        let stoppedAtLimit = false;
        try {
          ({ text, stoppedAtLimit } = await personalizer.generateDraft(prompt, plan, (t) => {
            text += t;
            this.post({ type: 'draftToken', requestId, slot: plan.slot, text: t });
          }, controller.signal));
        } catch (e) {
          if (!isAbort(e)) throw e;
          stopped = true;
        }
        this.requests.finishDraft(requestId, plan.slot, text);
        this.post({ type: 'draftDone', requestId, slot: plan.slot, text, stoppedAtLimit });
        if (stopped) break;
      }
      this.post({ type: 'draftsFinished', requestId, stopped });
    } catch (e) {
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
