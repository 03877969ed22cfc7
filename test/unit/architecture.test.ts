import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { builtinModules } from 'node:module';

const forbidden = new Set(['vscode', ...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

test('src/core imports neither vscode, Node built-ins, nor outer layers', () => {
  const files = sources('src/core');
  assert.ok(files.length >= 5);
  const offenders: string[] = [];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)|require\(\s*['"]([^'"]+)['"]\s*\)/g)) {
      const spec = m[1] ?? m[2] ?? m[3]!;
      if (forbidden.has(spec) || spec.startsWith('node:') || spec.startsWith('../')) offenders.push(`${file}: ${spec}`);
      else if (!spec.startsWith('./')) offenders.push(`${file}: ${spec} (core takes no third-party dependencies)`);
    }
  }
  assert.deepEqual(offenders, []);
});

test('in src/extension only the VS Code host, activation and the editor views import vscode; the rest runs behind EditorHost', () => {
  const importsVscode = sources('src/extension')
    .filter((file) => /from\s+['"]vscode['"]/.test(readFileSync(file, 'utf8')))
    .map((file) => file.replace(/\\/g, '/'))
    .sort();
  assert.deepEqual(importsVscode, [
    'src/extension/draftsView.ts',
    'src/extension/editorCommands.ts',
    'src/extension/extension.ts',
    'src/extension/profilePanel.ts',
    'src/extension/vscodeHost.ts',
    'src/extension/webviewHtml.ts',
  ]);
});
