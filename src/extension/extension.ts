import * as vscode from 'vscode';
import { parseWebviewMessage, type HostToWebview } from '../shared/protocol';
import { webviewHtml, webviewOptions } from './webviewHtml';

const NOT_YET = 'is not available yet in this version of EXACT. It arrives with the Ollama integration.';

class DraftsViewProvider implements vscode.WebviewViewProvider {
  constructor(private readonly extensionUri: vscode.Uri) {}

  resolveWebviewView(view: vscode.WebviewView): void {
    view.webview.options = webviewOptions(this.extensionUri);
    view.webview.html = webviewHtml(view.webview, this.extensionUri, 'drafts', 'EXACT Drafts');
    view.webview.onDidReceiveMessage((raw: unknown) => {
      const msg = parseWebviewMessage(raw);
      if (msg?.type === 'ready') {
        const notice: HostToWebview = { type: 'notice', text: `Generating drafts ${NOT_YET}`, level: 'info' };
        void view.webview.postMessage(notice);
      }
    });
  }
}

export function activate(context: vscode.ExtensionContext): void {
  const notYet = (feature: string) => () => vscode.window.showInformationMessage(`EXACT: ${feature} ${NOT_YET}`);
  context.subscriptions.push(
    vscode.window.registerWebviewViewProvider('exact.drafts', new DraftsViewProvider(context.extensionUri)),
    vscode.commands.registerCommand('exact.openDrafts', () => vscode.commands.executeCommand('exact.drafts.focus')),
    vscode.commands.registerCommand('exact.personalizedRewrite', notYet('Personalized Rewrite')),
    vscode.commands.registerCommand('exact.personalizedCompletion', notYet('Personalized Completion')),
    vscode.commands.registerCommand('exact.showProfile', notYet('The attribute profile')),
  );
}

export function deactivate(): void {}
