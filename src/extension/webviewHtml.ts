import * as vscode from 'vscode';
import { createHash, randomBytes } from 'node:crypto';

/**
 * The one inline style the policy admits: the empty <style> element the UI toolkit inserts for a
 * moment to test whether the browser supports :focus-visible. Its hash admits no other content.
 */
const EMPTY_STYLE_HASH = `'sha256-${createHash('sha256').update('').digest('base64')}'`;

/**
 * HTML for one of our webviews: a strict Content-Security-Policy with a per-load nonce, only
 * local scripts and styles from dist/webview, no inline styles, and no remote content of any kind.
 */
export function webviewHtml(webview: vscode.Webview, extensionUri: vscode.Uri, script: 'drafts' | 'profile', title: string): string {
  const nonce = randomBytes(16).toString('base64');
  const asset = (...parts: string[]): vscode.Uri => webview.asWebviewUri(vscode.Uri.joinPath(extensionUri, 'dist', 'webview', ...parts));
  const csp = [
    "default-src 'none'",
    `style-src ${webview.cspSource} ${EMPTY_STYLE_HASH}`,
    `font-src ${webview.cspSource}`,
    `img-src ${webview.cspSource} data:`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${asset('codicons', 'codicon.css').toString()}">
<link rel="stylesheet" href="${asset('styles.css').toString()}">
<title>${title}</title>
</head>
<body>
<div id="root"></div>
<script nonce="${nonce}" src="${asset(`${script}.js`).toString()}"></script>
</body>
</html>`;
}

/** Webview options shared by our panels: scripts on, resources only from the extension's dist. */
export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return { enableScripts: true, localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist')] };
}
