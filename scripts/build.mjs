// Bundles the extension host code (CommonJS, `vscode` external) and the webview scripts.
import * as esbuild from 'esbuild';
import { cp, mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';

const production = process.argv.includes('--production');
const watch = process.argv.includes('--watch');

const common = {
  bundle: true,
  sourcemap: production ? false : 'linked',
  minify: production,
  logLevel: 'info',
  legalComments: 'none',
};

/**
 * The storage layer uses only vectra's LocalIndex; its package entry also loads web fetchers,
 * gRPC and OpenAI clients. Bundle just LocalIndex and what it needs.
 */
const vectraLocalIndexOnly = {
  name: 'vectra-local-index-only',
  setup(build) {
    build.onResolve({ filter: /^vectra$/ }, () => ({ path: path.resolve('node_modules/vectra/lib/LocalIndex.js') }));
  },
};

/** Entry points; later layers add theirs here. */
const targets = [
  {
    ...common,
    entryPoints: ['src/extension/extension.ts'],
    outfile: 'dist/extension.cjs',
    platform: 'node',
    format: 'cjs',
    target: 'node20',
    // node-llama-cpp is native and ESM-only: it is shipped as a dependency and loaded in a worker.
    external: ['vscode', 'node-llama-cpp'],
    plugins: [vectraLocalIndexOnly],
  },
  {
    ...common,
    entryPoints: { drafts: 'webview-ui/src/drafts.ts', profile: 'webview-ui/src/profile.ts' },
    outdir: 'dist/webview',
    platform: 'browser',
    format: 'iife',
    target: 'es2022',
  },
];

for (const extra of ['src/engines/llama/scorerWorker.ts']) {
  if (existsSync(extra)) {
    targets.push({
      ...common,
      entryPoints: [extra],
      outfile: 'dist/scorerWorker.mjs',
      platform: 'node',
      format: 'esm',
      target: 'node20',
      external: ['node-llama-cpp'],
    });
  }
}

await rm('dist', { recursive: true, force: true });
await mkdir('dist/webview/codicons', { recursive: true });
await cp('webview-ui/styles.css', 'dist/webview/styles.css');
for (const f of ['codicon.css', 'codicon.ttf']) {
  await cp(`node_modules/@vscode/codicons/dist/${f}`, `dist/webview/codicons/${f}`);
}

if (watch) {
  for (const t of targets) await (await esbuild.context(t)).watch();
} else {
  await Promise.all(targets.map((t) => esbuild.build(t)));
}
