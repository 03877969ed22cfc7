// Packages a platform-specific .vsix: the production bundles plus node-llama-cpp (native, loaded
// by the scorer worker) with only the target platform's llama.cpp binaries.
//
//   node scripts/package.mjs [--target linux-x64] [--cpu-only] [--cuda]
//
// GPU builds: Apple silicon's build is Metal; linux-x64 and win32-x64 get the Vulkan build next to
// the CPU one (+24 MB in the .vsix; node-llama-cpp uses it when a Vulkan driver works and falls
// back to the CPU otherwise), unless --cpu-only. CUDA is left out by default: its two packages are
// 181 + 358 MB unpacked, and Vulkan runs on NVIDIA GPUs too; --cuda adds them for a .vsix built for
// your own machine. Output: dist-vsix/exact-vscode-<target>.vsix
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const target = option('--target', `${process.platform === 'win32' ? 'win32' : process.platform}-${process.arch}`);
const vulkan = !args.includes('--cpu-only');
const cuda = args.includes('--cuda');
const gpuBuilds = (os) => [...(vulkan ? [`${os}-x64-vulkan`] : []), ...(cuda ? [`${os}-x64-cuda`, `${os}-x64-cuda-ext`] : [])];

// vsce target names -> node-llama-cpp binary packages for that platform.
const binaries = {
  'linux-x64': ['linux-x64', ...gpuBuilds('linux')],
  'linux-arm64': ['linux-arm64'],
  'linux-armhf': ['linux-armv7l'],
  'darwin-arm64': ['mac-arm64-metal'],
  'darwin-x64': ['mac-x64'],
  'win32-x64': ['win-x64', ...gpuBuilds('win')],
  'win32-arm64': ['win-arm64'],
}[target];
if (!binaries) throw new Error(`Unsupported target ${target}. Use one of linux-x64, linux-arm64, linux-armhf, darwin-arm64, darwin-x64, win32-x64, win32-arm64.`);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
// Node scripts run with this Node (no shell, so paths with spaces stay whole); only `npm ls`
// needs a shell on Windows, where npm is a .cmd shim, and its arguments have no spaces.
const runNode = (script, scriptArgs, cwd = root) => execFileSync(process.execPath, [script, ...scriptArgs], { cwd, stdio: 'inherit' });

// npm installs only the binaries of the machine it runs on: refuse to build a .vsix without them.
const missingBinaries = binaries.filter((b) => !existsSync(path.join(root, 'node_modules', '@node-llama-cpp', b)));
if (missingBinaries.length > 0) {
  throw new Error(
    `No llama.cpp binaries for ${target} here (node_modules/@node-llama-cpp/${missingBinaries.join(', ')} missing). Package on a ${target} machine after installing the dependencies there (bash scripts/setup.sh)` +
      (missingBinaries.some((b) => /vulkan|cuda/.test(b)) ? ', or leave the GPU builds out with --cpu-only.' : '.'),
  );
}
runNode('scripts/build.mjs', ['--production']);

const stage = path.join(root, '.cache', 'vsix', target);
rmSync(stage, { recursive: true, force: true });
mkdirSync(stage, { recursive: true });
for (const f of ['LICENSE', 'media', 'dist']) cpSync(path.join(root, f), path.join(stage, f), { recursive: true, filter: (src) => !src.endsWith('.map') && !src.includes(`media${path.sep}screenshots`) });

// The marketplace page cannot resolve repository-relative images or links (vsce refuses them without a
// repository URL): the README in the .vsix drops such images and keeps such links as plain text.
const readme = readFileSync(path.join(root, 'README.md'), 'utf8')
  .replace(/^!\[[^\]]*\]\((?!https:)[^)]*\)\n\n?/gm, '')
  .replace(/(?<!!)\[([^\]]*)\]\((?!https?:|#|mailto:)[^)]*\)/g, '$1');
writeFileSync(path.join(stage, 'README.md'), readme);

const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
delete manifest.devDependencies;
delete manifest.scripts;
writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
writeFileSync(path.join(stage, '.vscodeignore'), ['**/*.map', 'node_modules/**/*.ts', 'node_modules/**/*.md', 'node_modules/node-llama-cpp/llama/gitRelease.bundle', 'node_modules/node-llama-cpp/templates/**', ''].join('\n'));

// The production dependency closure (node-llama-cpp and what it needs), minus other platforms' binaries.
const listed = execFileSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: root, encoding: 'utf8', shell: process.platform === 'win32' }).split('\n').filter(Boolean).slice(1);
let copied = 0;
for (const dir of listed) {
  const rel = path.relative(root, dir);
  const m = /node_modules[\\/]@node-llama-cpp[\\/]([^\\/]+)$/.exec(rel);
  if (m && !binaries.includes(m[1])) continue;
  if (!existsSync(dir)) continue;
  cpSync(dir, path.join(stage, rel), { recursive: true, dereference: true, filter: (src) => !src.includes(`${path.sep}node_modules${path.sep}`) || src.startsWith(dir) && !path.relative(dir, src).includes('node_modules') });
  copied++;
}
console.log(`Staged ${copied} production packages for ${target} (llama.cpp binaries: ${binaries.join(', ')}).`);

mkdirSync(path.join(root, 'dist-vsix'), { recursive: true });
const out = path.join(root, 'dist-vsix', `exact-vscode-${target}.vsix`);
runNode(path.join(root, 'node_modules', '@vscode', 'vsce', 'vsce'), ['package', '--allow-missing-repository', '--skip-license', '--target', target, '--out', out], stage);
console.log(`${out}: ${(statSync(out).size / 1e6).toFixed(1)} MB`);
