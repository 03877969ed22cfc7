import type { HostToWebview, WebviewToHost } from '../../src/shared/protocol';

declare function acquireVsCodeApi(): { postMessage(msg: WebviewToHost): void };

const vscode = acquireVsCodeApi();
const root = document.getElementById('root')!;

window.addEventListener('message', (event: MessageEvent<HostToWebview>) => {
  if (event.data.type === 'notice') {
    const p = document.createElement('p');
    p.textContent = event.data.text;
    root.replaceChildren(p);
  }
});
vscode.postMessage({ type: 'ready' });
