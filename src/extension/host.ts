/**
 * What the extension's glue needs from the editor, as one thin interface (the idea of
 * Continue's `IDE` and Cline's hosts): the runtime, commands, error actions and status bar talk
 * to an EditorHost, so they run and are tested without VS Code. vscodeHost.ts is the real one.
 */
import type { ConfigurationSource } from './settings';
import type { SettingKey } from '../shared/settingsManifest';

export interface Disposable {
  dispose(): void;
}

/** A typed event source (the part of vscode.EventEmitter the glue uses). */
export class Emitter<T> implements Disposable {
  private listeners = new Set<(value: T) => void>();

  readonly event = (listener: (value: T) => void): Disposable => {
    this.listeners.add(listener);
    return { dispose: () => this.listeners.delete(listener) };
  };

  fire(value: T): void {
    for (const listener of [...this.listeners]) listener(value);
  }

  dispose(): void {
    this.listeners.clear();
  }
}

export interface Log {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Brings the log into view. */
  show(): void;
}

export type MessageLevel = 'info' | 'warning' | 'error';

export interface ProgressReporter {
  report(message: string, increment?: number): void;
}

/** What the status bar item shows; the host renders it. */
export interface StatusView {
  readonly text: string;
  readonly tooltip: string;
  /** Drawn with the warning background. */
  readonly warning: boolean;
}

/** The editor's secret storage (the OS keychain in VS Code): values never land in settings files. */
export interface SecretStore {
  get(key: string): Promise<string | undefined>;
  store(key: string, value: string): Promise<void>;
  delete(key: string): Promise<void>;
  /** Fires with the key of a secret that was stored or deleted (also from another window). */
  onDidChange(listener: (key: string) => void): Disposable;
}

export interface EditorHost {
  /** Where this window's preference memory lives (workspace storage, else global storage). */
  readonly storageFolder: string;
  /** The installed extension's folder (dist/ holds the scorer worker). */
  readonly extensionPath: string;
  readonly log: Log;
  readonly settings: ConfigurationSource;
  readonly secrets: SecretStore;
  isTrusted(): boolean;
  /** Writes a setting for the user (global target). */
  updateSetting(key: SettingKey, value: unknown): Promise<void>;
  /** `affects('exact.ollama')` tells which settings changed. */
  onSettingsChanged(listener: (affects: (section: string) => boolean) => void): Disposable;
  /** A notification with buttons; resolves to the button chosen, undefined when dismissed. */
  showMessage(level: MessageLevel, text: string, ...actions: string[]): Promise<string | undefined>;
  /** A modal warning; true only when the user pressed `action`. */
  confirm(text: string, action: string): Promise<boolean>;
  /** A masked input box; `validate` returns why a value is refused. Undefined when cancelled. */
  askSecret(title: string, prompt: string, validate: (value: string) => string | undefined): Promise<string | undefined>;
  pick(title: string, items: ReadonlyArray<{ label: string; description?: string }>): Promise<string | undefined>;
  /** A file path the user chose to write, undefined when cancelled. */
  chooseSaveFile(title: string, defaultName: string): Promise<string | undefined>;
  /** A file path the user chose to read, undefined when cancelled. */
  chooseOpenFile(title: string): Promise<string | undefined>;
  executeCommand(command: string, ...args: unknown[]): Promise<unknown>;
  setContext(key: string, value: unknown): void;
  writeClipboard(text: string): Promise<void>;
  /** Runs `task` with a notification that shows its progress; a cancellable one aborts `signal`. */
  withProgress<T>(title: string, cancellable: boolean, task: (progress: ProgressReporter, signal: AbortSignal) => Promise<T>): Promise<T>;
  /** The status bar item; `show` replaces what it shows. */
  statusItem(onClickCommand: string): { show(view: StatusView): void } & Disposable;
}
