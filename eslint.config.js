import tseslint from 'typescript-eslint';

const nodeIo = ['fs', 'fs/promises', 'path', 'os', 'net', 'http', 'https', 'child_process', 'worker_threads', 'dgram', 'readline', 'stream', 'process'];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', '.cache/**', 'out/**', '**/*.vsix', 'test/fixtures/**', 'tools/train-fixture/work/**', 'test/e2e/server/node_modules/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Loaded with require() by the VS Code extension host.
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', console: 'readonly', setTimeout: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The method stays pure: no editor API, no network, no file system.
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['vscode', ...nodeIo].map((name) => ({ name, message: 'src/core must stay free of VS Code and I/O; put this behind a port in src/core/ports.ts.' })),
          patterns: [{ group: ['node:*'], message: 'src/core must not use Node built-in modules.' }, { group: ['../*'], message: 'src/core must not depend on outer layers.' }],
        },
      ],
    },
  },
);
