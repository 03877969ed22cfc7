/**
 * An EditorHost for tests: settings in a map (changing one fires the change event as VS Code
 * does), every message, command, context key, clipboard write, progress report and status view
 * recorded, and the user's answers scripted by a function.
 */
import type { EditorHost, MessageLevel, SecretStore, StatusView } from '../../src/extension/host';
import { Emitter } from '../../src/extension/host';
import type { SettingKey } from '../../src/shared/settingsManifest';

export interface ShownMessage {
  readonly level: MessageLevel | 'confirm';
  readonly text: string;
  readonly actions: string[];
}

export class FakeHost implements EditorHost {
  readonly values = new Map<string, unknown>();
  readonly messages: ShownMessage[] = [];
  readonly commands: Array<{ command: string; args: unknown[] }> = [];
  readonly contexts = new Map<string, unknown>();
  readonly clipboard: string[] = [];
  readonly progress: Array<{ title: string; message: string }> = [];
  readonly statusViews: StatusView[] = [];
  readonly logs: Array<{ level: 'info' | 'warn' | 'error'; message: string }> = [];
  logShown = 0;
  trusted = true;
  /** The user's answer to a message or confirmation (default: dismiss). */
  answer: (m: ShownMessage) => string | undefined = () => undefined;
  pickAnswer: (items: ReadonlyArray<{ label: string }>) => string | undefined = () => undefined;
  /** What the user types into a secret input box (undefined: cancels). */
  secretAnswer: string | undefined;
  /** Why askSecret's validation refused the scripted answer, for each refusal. */
  readonly secretRefusals: string[] = [];
  saveFile: string | undefined;
  openFile: string | undefined;
  private readonly changes = new Emitter<(section: string) => boolean>();

  constructor(
    readonly storageFolder: string,
    readonly extensionPath = process.cwd(),
  ) {}

  readonly log = {
    info: (message: string) => void this.logs.push({ level: 'info', message }),
    warn: (message: string) => void this.logs.push({ level: 'warn', message }),
    error: (message: string) => void this.logs.push({ level: 'error', message }),
    show: () => void this.logShown++,
  };

  readonly settings = { get: (key: SettingKey) => this.values.get(key) };

  /** Secrets in memory; storing or deleting fires onDidChange as VS Code's SecretStorage does. */
  readonly storedSecrets = new Map<string, string>();
  private readonly secretChanges = new Emitter<string>();
  readonly secrets: SecretStore = {
    get: async (key) => this.storedSecrets.get(key),
    store: async (key, value) => {
      this.storedSecrets.set(key, value);
      this.secretChanges.fire(key);
    },
    delete: async (key) => {
      if (this.storedSecrets.delete(key)) this.secretChanges.fire(key);
    },
    onDidChange: (listener) => this.secretChanges.event(listener),
  };

  isTrusted(): boolean {
    return this.trusted;
  }

  /** Sets a setting as the user would, firing the change event. */
  async updateSetting(key: SettingKey, value: unknown): Promise<void> {
    this.values.set(key, value);
    this.changes.fire((section) => `exact.${key}` === section || `exact.${key}`.startsWith(`${section}.`) || section === 'exact');
  }

  onSettingsChanged(listener: (affects: (section: string) => boolean) => void) {
    return this.changes.event(listener);
  }

  async showMessage(level: MessageLevel, text: string, ...actions: string[]): Promise<string | undefined> {
    const m = { level, text, actions };
    this.messages.push(m);
    return this.answer(m);
  }

  async confirm(text: string, action: string): Promise<boolean> {
    const m: ShownMessage = { level: 'confirm', text, actions: [action] };
    this.messages.push(m);
    return this.answer(m) === action;
  }

  /** As VS Code's input box: a value the validation refuses is never returned (here: the box is cancelled). */
  async askSecret(_title: string, _prompt: string, validate: (value: string) => string | undefined): Promise<string | undefined> {
    if (this.secretAnswer === undefined) return undefined;
    const refusal = validate(this.secretAnswer);
    if (refusal === undefined) return this.secretAnswer;
    this.secretRefusals.push(refusal);
    return undefined;
  }

  async pick(_title: string, items: ReadonlyArray<{ label: string; description?: string }>): Promise<string | undefined> {
    return this.pickAnswer(items);
  }

  async chooseSaveFile(): Promise<string | undefined> {
    return this.saveFile;
  }

  async chooseOpenFile(): Promise<string | undefined> {
    return this.openFile;
  }

  async executeCommand(command: string, ...args: unknown[]): Promise<unknown> {
    this.commands.push({ command, args });
    return undefined;
  }

  setContext(key: string, value: unknown): void {
    this.contexts.set(key, value);
  }

  async writeClipboard(text: string): Promise<void> {
    this.clipboard.push(text);
  }

  withProgress<T>(title: string, _cancellable: boolean, task: (progress: { report(message: string): void }, signal: AbortSignal) => Promise<T>): Promise<T> {
    return task({ report: (message) => void this.progress.push({ title, message }) }, new AbortController().signal);
  }

  statusItem() {
    return { show: (view: StatusView) => void this.statusViews.push(view), dispose: () => undefined };
  }
}
