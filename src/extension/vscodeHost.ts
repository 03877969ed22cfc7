/** The EditorHost for VS Code: every call the glue makes into the editor goes through here. */
import * as vscode from 'vscode';
import type { EditorHost, Log, MessageLevel, StatusView } from './host';
import type { SettingKey } from '../shared/settingsManifest';

export function vscodeHost(context: vscode.ExtensionContext, output: vscode.LogOutputChannel): EditorHost {
  const configuration = (): vscode.WorkspaceConfiguration => vscode.workspace.getConfiguration('exact');
  const log: Log = {
    info: (m) => output.info(m),
    warn: (m) => output.warn(m),
    error: (m) => output.error(m),
    show: () => output.show(true),
  };
  const defaultExportUri = (name: string): vscode.Uri | undefined => {
    const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
    return folder ? vscode.Uri.joinPath(folder, name) : undefined;
  };
  return {
    storageFolder: (context.storageUri ?? context.globalStorageUri).fsPath,
    extensionPath: context.extensionPath,
    log,
    settings: {
      // Unset settings come back as package.json's default, which settings.ts also falls back to.
      get: (key: SettingKey) => configuration().get(key),
    },
    secrets: {
      get: async (key) => context.secrets.get(key),
      store: async (key, value) => context.secrets.store(key, value),
      delete: async (key) => context.secrets.delete(key),
      onDidChange: (listener) => context.secrets.onDidChange((e) => listener(e.key)),
    },
    isTrusted: () => vscode.workspace.isTrusted,
    updateSetting: async (key, value) => {
      await configuration().update(key, value, vscode.ConfigurationTarget.Global);
    },
    onSettingsChanged: (listener) =>
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('exact')) listener((section) => e.affectsConfiguration(section));
      }),
    showMessage: async (level: MessageLevel, text, ...actions) => {
      const show = level === 'error' ? vscode.window.showErrorMessage : level === 'warning' ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
      return show(text, ...actions);
    },
    confirm: async (text, action) => (await vscode.window.showWarningMessage(text, { modal: true }, action)) === action,
    askSecret: async (title, prompt, validate) => vscode.window.showInputBox({ title, prompt, password: true, ignoreFocusOut: true, validateInput: validate }),
    pick: async (title, items) => (await vscode.window.showQuickPick(items.map((i) => ({ label: i.label, description: i.description ?? '' })), { title }))?.label,
    chooseSaveFile: async (title, defaultName) => {
      const defaultUri = defaultExportUri(defaultName);
      return (await vscode.window.showSaveDialog({ title, filters: { JSON: ['json'] }, ...(defaultUri ? { defaultUri } : {}) }))?.fsPath;
    },
    chooseOpenFile: async (title) => (await vscode.window.showOpenDialog({ title, filters: { JSON: ['json'] }, canSelectMany: false }))?.[0]?.fsPath,
    executeCommand: (command, ...args) => Promise.resolve(vscode.commands.executeCommand(command, ...args)),
    setContext: (key, value) => void vscode.commands.executeCommand('setContext', key, value),
    writeClipboard: async (text) => vscode.env.clipboard.writeText(text),
    withProgress: (title, cancellable, task) =>
      Promise.resolve(
        vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable }, (progress, token) => {
          const controller = new AbortController();
          if (token.isCancellationRequested) controller.abort();
          token.onCancellationRequested(() => controller.abort());
          return task({ report: (message, increment) => progress.report({ message, ...(increment ? { increment } : {}) }) }, controller.signal);
        }),
      ),
    statusItem: (onClickCommand) => {
      const item = vscode.window.createStatusBarItem('exact.status', vscode.StatusBarAlignment.Right, 100);
      item.name = 'EXACT';
      item.command = onClickCommand;
      return {
        show: (view: StatusView) => {
          item.text = view.text;
          item.tooltip = view.tooltip;
          item.backgroundColor = view.warning ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
          item.show();
        },
        dispose: () => item.dispose(),
      };
    },
  };
}

/** A VS Code cancellation token as an AbortSignal. */
export function signalFrom(token: vscode.CancellationToken): AbortSignal {
  const controller = new AbortController();
  if (token.isCancellationRequested) controller.abort();
  token.onCancellationRequested(() => controller.abort());
  return controller.signal;
}
