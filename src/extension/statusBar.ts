import * as vscode from 'vscode';
import { countOf } from '../shared/plural';
import type { IndexingEvent } from '../services/indexingQueue';
import { showError } from './errors';
import type { ExactRuntime, QueueSnapshot } from './runtime';

/** "EXACT: indexing 2/5" while learning, "EXACT: 14 prompts learned" otherwise; opens the profile. */
export class IndexingStatus implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('exact.status', vscode.StatusBarAlignment.Right, 100);
  private progress: { resolve(): void; report(message: string, increment?: number): void } | undefined;
  private readonly disposables: vscode.Disposable[] = [this.item];
  private lastFatal = '';

  constructor(private readonly runtime: ExactRuntime) {
    this.item.name = 'EXACT';
    this.item.command = 'exact.showProfile';
    this.disposables.push(runtime.onSnapshot((s) => this.render(s)), runtime.onIndexingEvent((e) => this.onEvent(e)));
    this.render(runtime.snapshot);
    this.item.show();
  }

  private render(s: QueueSnapshot): void {
    if (s.running) {
      this.item.text = `$(sync~spin) EXACT: indexing ${Math.max(s.position, 1)}/${Math.max(s.total, 1)}`;
      this.item.tooltip = withScoring('EXACT is learning from your choices. Click to see your profile.', s);
    } else {
      this.item.text = `$(person) EXACT: ${countOf(s.learned, 'prompt')} learned`;
      this.item.tooltip = withScoring(s.lastError ? `Last problem: ${s.lastError}` : s.pending > 0 ? `${countOf(s.pending, 'choice')} waiting to be learned.` : 'Click to see your attribute profile.', s);
    }
    this.item.backgroundColor = s.lastError && !s.running ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
  }

  private onEvent(e: IndexingEvent): void {
    if (e.type === 'queued' && !this.progress) this.openProgress(e.total);
    if (e.type === 'started') this.progress?.report(`learning from choice ${e.position} of ${e.total}`);
    if (e.type === 'done') this.progress?.report(`${e.attributes.join(', ') || 'no attributes'} (${e.position}/${e.total})`, 100 / Math.max(1, e.total));
    if (e.type === 'idle') {
      this.progress?.resolve();
      this.progress = undefined;
      if ((e.reason === 'fatal' || e.reason === 'unavailable') && e.error && e.error !== this.lastFatal) {
        this.lastFatal = e.error;
        // The original error keeps its kind, so the notification offers its fix (start Ollama, pull the model, ...).
        void showError(e.cause instanceof Error ? e.cause : Object.assign(new Error(e.error), { name: 'IndexingError' }), this.runtime.output, 'Learning paused. ');
      }
      if (e.reason === 'complete') this.lastFatal = '';
    }
  }

  private openProgress(total: number): void {
    void vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'EXACT', cancellable: true },
      (progress, token) =>
        new Promise<void>((resolve) => {
          token.onCancellationRequested(() => void this.runtime.cancelIndexing());
          this.progress = { resolve, report: (message, increment) => progress.report({ message, ...(increment ? { increment } : {}) }) };
          progress.report({ message: `learning from ${total} choice${total === 1 ? '' : 's'}…` });
        }),
    );
  }

  dispose(): void {
    this.progress?.resolve();
    for (const d of this.disposables) d.dispose();
  }
}

function withScoring(text: string, s: QueueSnapshot): string {
  return s.scoring === undefined ? text : `${text}\n${s.scoring}`;
}
