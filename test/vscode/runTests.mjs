// Runs test/vscode/suite in a real VS Code desktop (Electron) downloaded by @vscode/test-electron.
// Needs a machine that can download VS Code (not this project's CI machines: see README).
//   npm run test:vscode
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { runTests } from '@vscode/test-electron';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
try {
  await runTests({
    version: process.env.VSCODE_TEST_VERSION ?? 'stable',
    extensionDevelopmentPath: root,
    extensionTestsPath: path.join(root, 'test', 'vscode', 'suite', 'index.cjs'),
    launchArgs: ['--disable-extensions', '--disable-workspace-trust', path.join(root, 'test', 'vscode', 'workspace')],
  });
} catch (err) {
  console.error('VS Code tests failed:', err);
  process.exit(1);
}
