import { countOf } from '../shared/plural';
import type { IndexingEvent } from '../services/indexingQueue';
import { showError } from './errors';
import type { Disposable, ProgressReporter, StatusView } from './host';
import type { ExactRuntime, QueueSnapshot } from './runtime';

/** "EXACT: indexing 2/5" while learning, "EXACT: 14 prompts learned" otherwise. */
export function statusView(s: QueueSnapshot): StatusView {
  if (s.running) {
    return { text: `$(sync~spin) EXACT: indexing ${Math.max(s.position, 1)}/${Math.max(s.total, 1)}`, tooltip: withScoring('EXACT is learning from your choices. Click to see your profile.', s), warning: false };
  }
  const tooltip = s.lastError ? `Last problem: ${s.lastError}` : s.pending > 0 ? `${countOf(s.pending, 'choice')} waiting to be learned.` : 'Click to see your attribute profile.';
  return { text: `$(person) EXACT: ${countOf(s.learned, 'prompt')} learned`, tooltip: withScoring(tooltip, s), warning: s.lastError !== undefined && s.lastError !== '' };
}

/** The status bar item (opens the profile) and the cancellable progress notification while learning. */
export class IndexingStatus implements Disposable {
  private readonly item;
  private progress: { resolve(): void; reporter: ProgressReporter } | undefined;
  private readonly disposables: Disposable[];
  private lastFatal = '';

  constructor(private readonly runtime: ExactRuntime) {
    this.item = runtime.host.statusItem('exact.showProfile');
    this.disposables = [this.item, runtime.onSnapshot((s) => this.item.show(statusView(s))), runtime.onIndexingEvent((e) => this.onEvent(e))];
    this.item.show(statusView(runtime.snapshot));
  }

  private onEvent(e: IndexingEvent): void {
    if (e.type === 'queued' && !this.progress) this.openProgress(e.total);
    if (e.type === 'started') this.progress?.reporter.report(`learning from choice ${e.position} of ${e.total}`);
    if (e.type === 'done') this.progress?.reporter.report(`${e.attributes.join(', ') || 'no attributes'} (${e.position}/${e.total})`, 100 / Math.max(1, e.total));
    if (e.type === 'idle') {
      this.progress?.resolve();
      this.progress = undefined;
      if ((e.reason === 'fatal' || e.reason === 'unavailable') && e.error && e.error !== this.lastFatal) {
        this.lastFatal = e.error;
        // The original error keeps its kind, so the notification offers its fix (start Ollama, pull the model, ...).
        void showError(this.runtime.host, e.cause instanceof Error ? e.cause : Object.assign(new Error(e.error), { name: 'IndexingError' }), 'Learning paused. ');
      }
      if (e.reason === 'complete') this.lastFatal = '';
    }
  }

  private openProgress(total: number): void {
    void this.runtime.host.withProgress('EXACT', true, (reporter, signal) =>
      new Promise<void>((resolve) => {
        signal.addEventListener('abort', () => void this.runtime.cancelIndexing());
        this.progress = { resolve, reporter };
        reporter.report(`learning from ${countOf(total, 'choice')}…`);
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
