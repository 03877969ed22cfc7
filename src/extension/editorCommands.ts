/**
 * Personalized Rewrite (diff preview, one undoable edit), Personalized Completion, and the
 * optional inline completion provider.
 */
import * as vscode from 'vscode';
import { completionPrompt, continuationText, rewritePrompt, rewriteTokenBudget, type Retrieval } from '../services/personalizer';
import { errorText, isAbort, showError } from './errors';
import type { ExactRuntime } from './runtime';
import { signalFrom } from './vscodeHost';

export const PREVIEW_SCHEME = 'exact-preview';

/** Serves the proposed text of a rewrite to the diff editor. */
export class PreviewProvider implements vscode.TextDocumentContentProvider {
  private readonly contents = new Map<string, string>();
  private readonly changes = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.changes.event;

  set(uri: vscode.Uri, text: string): void {
    this.contents.set(uri.toString(), text);
    this.changes.fire(uri);
  }

  delete(uri: vscode.Uri): void {
    this.contents.delete(uri.toString());
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.contents.get(uri.toString()) ?? '';
  }
}

/** The selection, or the paragraph around the cursor when nothing is selected. */
function rewriteRange(editor: vscode.TextEditor): vscode.Range {
  if (!editor.selection.isEmpty) return editor.selection;
  const doc = editor.document;
  let start = editor.selection.active.line;
  let end = start;
  const blank = (l: number): boolean => doc.lineAt(l).isEmptyOrWhitespace;
  if (blank(start)) return new vscode.Range(start, 0, start, 0);
  while (start > 0 && !blank(start - 1)) start--;
  while (end < doc.lineCount - 1 && !blank(end + 1)) end++;
  return new vscode.Range(start, 0, end, doc.lineAt(end).text.length);
}

function describe(r: Retrieval): string {
  const attrs = r.attributes.length > 0 ? r.attributes.join(', ') : 'no attributes';
  return `${attrs}. ${r.why}`;
}

/** For the output channel: attribute names only, never a prompt (see Privacy in the README). */
function attributesOnly(r: Retrieval): string {
  return r.attributes.length > 0 ? `attributes ${r.attributes.join(', ')}.` : 'no attributes.';
}

async function generateWithProgress(
  runtime: ExactRuntime,
  title: string,
  prompt: string,
  maxTokens?: number,
): Promise<{ text: string; stoppedAtLimit: boolean; retrieval: Retrieval; maxTokens: number } | undefined> {
  const personalizer = await runtime.personalizer();
  // Too large or too long for the context: say so before anything is sent.
  personalizer.checkRequest(prompt, maxTokens);
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title, cancellable: true },
    async (progress, token) => {
      const signal = signalFrom(token);
      const retrieval = await personalizer.retrieve(prompt, signal);
      progress.report({ message: `with ${retrieval.attributes.length > 0 ? retrieval.attributes.join(', ') : 'no attributes yet'}` });
      let chars = 0;
      const onToken = (t: string): void => {
        chars += t.length;
        progress.report({ message: `${chars} characters written…` });
      };
      const result = await personalizer.generate(prompt, { onToken, signal, retrieval, ...(maxTokens !== undefined ? { maxTokens } : {}) });
      return token.isCancellationRequested ? undefined : result;
    },
  );
}

/** The active editor when generation may run there; otherwise says why and returns undefined. */
function editorForGeneration(runtime: ExactRuntime, noEditor: string): vscode.TextEditor | undefined {
  const editor = vscode.window.activeTextEditor;
  if (!editor) void vscode.window.showWarningMessage(`EXACT: ${noEditor}`);
  else if (!runtime.trusted) void vscode.window.showWarningMessage('EXACT: Generation is disabled in untrusted workspaces.');
  else return editor;
  return undefined;
}

export async function personalizedRewrite(runtime: ExactRuntime, preview: PreviewProvider): Promise<void> {
  const editor = editorForGeneration(runtime, 'Open a file and select the text to rewrite.');
  if (!editor) return;
  const range = rewriteRange(editor);
  const original = editor.document.getText(range);
  try {
    const personalizer = await runtime.personalizer();
    personalizer.checkInput(original, 'text to rewrite');
    const budget = rewriteTokenBudget(original);
    personalizer.checkRequest(rewritePrompt(original), budget); // before asking for an instruction
    const instruction = await vscode.window.showInputBox({
      title: 'EXACT: Personalized Rewrite',
      prompt: 'Optional instruction (e.g. "shorter", "for a client email"). Press Enter to rewrite in your style.',
      placeHolder: 'Instruction (optional)',
    });
    if (instruction === undefined) return;
    const version = editor.document.version;
    const result = await generateWithProgress(runtime, 'EXACT: Rewriting', rewritePrompt(original, instruction), budget);
    if (!result) return;
    const rewritten = result.text.trim();
    runtime.output.info(`Rewrite used ${attributesOnly(result.retrieval)}`);
    const doc = editor.document;
    const proposed = doc.getText(new vscode.Range(doc.positionAt(0), range.start)) + rewritten + doc.getText(new vscode.Range(range.end, doc.positionAt(doc.getText().length)));
    const uri = vscode.Uri.from({ scheme: PREVIEW_SCHEME, path: doc.uri.path, query: String(Date.now()) });
    preview.set(uri, proposed);
    await vscode.commands.executeCommand('vscode.diff', doc.uri, uri, `EXACT rewrite: ${result.retrieval.attributes.join(', ') || 'no attributes'} (preview)`, { preview: true });
    const explained = `EXACT rewrote with ${describe(result.retrieval)}`;
    // A rewrite that ran into the token limit may end mid-sentence: say so before it can replace the original.
    const choice = result.stoppedAtLimit
      ? await vscode.window.showWarningMessage(
          `${explained} The rewrite reached the token limit (${result.maxTokens} tokens) and may be cut short: check its end in the diff before accepting.`,
          'Accept',
          'Reject',
        )
      : await vscode.window.showInformationMessage(explained, 'Accept', 'Reject');
    preview.delete(uri);
    await closeDiff(uri);
    if (choice !== 'Accept') return;
    if (doc.version !== version) {
      void vscode.window.showWarningMessage('EXACT: The document changed while the rewrite was shown, so it was not applied. Run the rewrite again.');
      return;
    }
    const edit = new vscode.WorkspaceEdit();
    edit.replace(doc.uri, range, rewritten);
    await vscode.workspace.applyEdit(edit);
    await vscode.window.showTextDocument(doc, editor.viewColumn);
  } catch (e) {
    await showError(runtime.host, e, 'Rewrite failed. ');
  }
}

async function closeDiff(uri: vscode.Uri): Promise<void> {
  for (const group of vscode.window.tabGroups.all) {
    for (const tab of group.tabs) {
      const input = tab.input;
      if (input instanceof vscode.TabInputTextDiff && input.modified.toString() === uri.toString()) await vscode.window.tabGroups.close(tab);
    }
  }
}

/** Text before the cursor that a completion continues (bounded by the input size setting). */
function textBefore(doc: vscode.TextDocument, position: vscode.Position, max: number): string {
  const start = doc.offsetAt(position) > max ? doc.positionAt(doc.offsetAt(position) - max) : new vscode.Position(0, 0);
  return doc.getText(new vscode.Range(start, position));
}

export async function personalizedCompletion(runtime: ExactRuntime): Promise<void> {
  const editor = editorForGeneration(runtime, 'Open a file and place the cursor where writing should continue.');
  if (!editor) return;
  const position = editor.selection.active;
  try {
    const personalizer = await runtime.personalizer();
    const before = personalizer.completionContext(textBefore(editor.document, position, runtime.settings.maxInputChars));
    personalizer.checkInput(before, 'text before the cursor');
    const version = editor.document.version;
    const result = await generateWithProgress(runtime, 'EXACT: Continuing', completionPrompt(before));
    if (!result) return;
    runtime.output.info(`Completion used ${attributesOnly(result.retrieval)}`);
    if (editor.document.version !== version) {
      void vscode.window.showWarningMessage('EXACT: The document changed while writing, so the completion was not inserted.');
      return;
    }
    const insert = continuationText(before, result.text);
    if (insert.length === 0) {
      void vscode.window.showInformationMessage('EXACT: The model had nothing to add here.');
      return;
    }
    await editor.edit((b) => b.insert(position, insert));
    vscode.window.setStatusBarMessage(`EXACT: continued with ${result.retrieval.attributes.join(', ') || 'no attributes'}`, 5000);
  } catch (e) {
    await showError(runtime.host, e, 'Completion failed. ');
  }
}

/** Inline completions while typing; registered only when exact.inlineCompletion.enabled is on. */
export class PersonalizedInlineCompletions implements vscode.InlineCompletionItemProvider {
  private lastProblem: string | undefined;
  constructor(private readonly runtime: ExactRuntime) {}

  async provideInlineCompletionItems(
    doc: vscode.TextDocument,
    position: vscode.Position,
    _context: vscode.InlineCompletionContext,
    token: vscode.CancellationToken,
  ): Promise<vscode.InlineCompletionItem[]> {
    if (!this.runtime.trusted || !this.runtime.settings.inlineCompletion) return [];
    // Debounce: wait for a pause in typing.
    await new Promise((r) => setTimeout(r, 600));
    if (token.isCancellationRequested) return [];
    try {
      const personalizer = await this.runtime.personalizer();
      const before = personalizer.completionContext(textBefore(doc, position, 4000), 4000);
      if (before.trim().length < 20) return [];
      const { text } = await personalizer.generate(completionPrompt(before), { signal: signalFrom(token) });
      const line = continuationText(before, text, true);
      this.lastProblem = undefined;
      return line.length > 0 ? [new vscode.InlineCompletionItem(line, new vscode.Range(position, position))] : [];
    } catch (e) {
      // No notification while typing; the log says why suggestions stopped (once per problem).
      const problem = errorText(e);
      if (!isAbort(e) && problem !== this.lastProblem) this.runtime.output.warn(`Inline completion failed: ${problem}`);
      if (!isAbort(e)) this.lastProblem = problem;
      return [];
    }
  }
}
