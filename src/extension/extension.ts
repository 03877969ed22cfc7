import * as vscode from 'vscode';
import { checkSetup, chooseModel, exportData, importData, reindex, resetData } from './dataCommands';
import { DraftsViewProvider } from './draftsView';
import { PREVIEW_SCHEME, PersonalizedInlineCompletions, PreviewProvider, personalizedCompletion, personalizedRewrite } from './editorCommands';
import { ProfilePanel } from './profilePanel';
import { errorText } from './errors';
import { ExactRuntime } from './runtime';
import { IndexingStatus } from './statusBar';
import { clearVllmApiKey, setVllmApiKey } from './vllmCommands';
import { vscodeHost } from './vscodeHost';

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('EXACT', { log: true });
  const runtime = new ExactRuntime(vscodeHost(context, output));
  const drafts = new DraftsViewProvider(context.extensionUri, runtime, context.workspaceState);
  const profile = new ProfilePanel(context.extensionUri, runtime);
  const preview = new PreviewProvider();
  let inline: vscode.Disposable | undefined;
  const syncInline = (): void => {
    if (runtime.settings.inlineCompletion && !inline) {
      inline = vscode.languages.registerInlineCompletionItemProvider({ pattern: '**' }, new PersonalizedInlineCompletions(runtime));
      output.info('Inline completions on.');
    }
    if (!runtime.settings.inlineCompletion && inline) {
      inline.dispose();
      inline = undefined;
      output.info('Inline completions off.');
    }
  };
  syncInline();

  context.subscriptions.push(
    output,
    runtime,
    drafts,
    profile,
    new IndexingStatus(runtime),
    { dispose: () => inline?.dispose() },
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('exact.inlineCompletion')) setTimeout(syncInline, 0);
    }),
    vscode.workspace.registerTextDocumentContentProvider(PREVIEW_SCHEME, preview),
    vscode.window.registerWebviewViewProvider(DraftsViewProvider.viewId, drafts),
    vscode.commands.registerCommand('exact.openDrafts', async () => {
      const editor = vscode.window.activeTextEditor;
      const selection = editor && !editor.selection.isEmpty ? editor.document.getText(editor.selection) : '';
      await vscode.commands.executeCommand(`${DraftsViewProvider.viewId}.focus`);
      drafts.prefill(selection);
    }),
    vscode.commands.registerCommand('exact.compareDrafts', () => drafts.openSideBySide()),
    vscode.commands.registerCommand('exact.personalizedRewrite', () => personalizedRewrite(runtime, preview)),
    vscode.commands.registerCommand('exact.personalizedCompletion', () => personalizedCompletion(runtime)),
    vscode.commands.registerCommand('exact.showProfile', () => profile.show()),
    vscode.commands.registerCommand('exact.checkSetup', () => checkSetup(runtime)),
    vscode.commands.registerCommand('exact.chooseModel', () => chooseModel(runtime)),
    vscode.commands.registerCommand('exact.setVllmApiKey', () => setVllmApiKey(runtime.host)),
    vscode.commands.registerCommand('exact.clearVllmApiKey', () => clearVllmApiKey(runtime.host)),
    vscode.commands.registerCommand('exact.reindex', () => reindex(runtime)),
    vscode.commands.registerCommand('exact.cancelIndexing', () => runtime.cancelIndexing()),
    vscode.commands.registerCommand('exact.exportData', () => exportData(runtime)),
    vscode.commands.registerCommand('exact.importData', () => importData(runtime)),
    vscode.commands.registerCommand('exact.resetData', () => resetData(runtime)),
    vscode.workspace.onDidGrantWorkspaceTrust(() => void runtime.kickIndexing().catch(() => undefined)),
  );

  // Resume learning whatever a previous session left pending, without blocking activation.
  setTimeout(() => {
    void runtime.refreshSnapshot().then((s) => {
      if (s.pending > 0 && runtime.trusted) runtime.kickIndexing().catch((e: unknown) => output.warn(`Indexing did not start: ${errorText(e)}`));
    });
  }, 1500);
}

export function deactivate(): void {}
