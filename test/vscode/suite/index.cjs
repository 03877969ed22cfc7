// Runs inside the VS Code extension host (launched by ../runTests.mjs). Plain CommonJS: the
// extension host loads it with require().
const assert = require('node:assert/strict');
const vscode = require('vscode');

const checks = [
  ['the extension activates', async () => {
    const ext = vscode.extensions.getExtension('exact-personalization.exact-vscode');
    assert.ok(ext, 'extension is installed');
    await ext.activate();
    assert.equal(ext.isActive, true);
  }],
  ['its commands are registered', async () => {
    const all = await vscode.commands.getCommands(true);
    for (const c of ['exact.openDrafts', 'exact.personalizedRewrite', 'exact.personalizedCompletion', 'exact.showProfile', 'exact.checkSetup', 'exact.reindex']) {
      assert.ok(all.includes(c), c);
    }
  }],
  ['settings have the documented defaults', async () => {
    const c = vscode.workspace.getConfiguration('exact');
    assert.equal(c.get('attributesPerPrompt'), 3);
    assert.equal(c.get('retrieval.mode'), 'top1');
    assert.equal(c.get('scorer'), 'auto');
    assert.equal(c.get('inlineCompletion.enabled'), false);
    assert.equal(c.get('generation.temperature'), 0.7);
  }],
  ['the profile panel opens without Ollama', async () => {
    await vscode.commands.executeCommand('exact.showProfile');
    await new Promise((r) => setTimeout(r, 1000));
    const tabs = vscode.window.tabGroups.all.flatMap((g) => g.tabs);
    assert.ok(tabs.some((t) => t.label === 'EXACT Attribute Profile'), tabs.map((t) => t.label).join(', '));
  }],
  ['Personalized Rewrite with Ollama unreachable fails with an actionable message, not an exception', async () => {
    await vscode.workspace.getConfiguration('exact').update('ollama.host', 'http://127.0.0.1:9', vscode.ConfigurationTarget.Global);
    const doc = await vscode.workspace.openTextDocument({ content: 'Some text to rewrite.' });
    const editor = await vscode.window.showTextDocument(doc);
    editor.selection = new vscode.Selection(0, 0, 0, 10);
    const running = vscode.commands.executeCommand('exact.personalizedRewrite');
    // Answer the optional-instruction input box with an empty instruction.
    await new Promise((r) => setTimeout(r, 1500));
    await vscode.commands.executeCommand('workbench.action.acceptSelectedQuickOpenItem');
    await running;
    assert.equal(doc.getText(), 'Some text to rewrite.', 'nothing was changed');
  }],
];

async function run() {
  const failures = [];
  for (const [name, fn] of checks) {
    try {
      await fn();
      console.log(`ok - ${name}`);
    } catch (e) {
      console.log(`not ok - ${name}: ${e && e.message}`);
      failures.push(name);
    }
  }
  console.log(`${checks.length - failures.length} passed, ${failures.length} failed`);
  if (failures.length > 0) throw new Error(`${failures.length} VS Code test(s) failed: ${failures.join('; ')}`);
}

module.exports = { run };
