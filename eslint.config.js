import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.tools/', '.tmp/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly', fetch: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', performance: 'readonly', setImmediate: 'readonly', queueMicrotask: 'readonly', structuredClone: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-console': 'off',
    },
  },
  // One naming rule for private members: ECMAScript `#private`, not TypeScript's `private`
  // (which is only a compile-time promise). A `private constructor` stays: JS has no `#constructor`.
  {
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-syntax': [
        'error',
        ...[
          'PropertyDefinition',
          'MethodDefinition[kind!="constructor"]',
          'TSParameterProperty',
          'AccessorProperty',
          'TSAbstractPropertyDefinition',
          'TSAbstractMethodDefinition',
          'TSAbstractAccessorProperty',
        ].map((node) => ({ selector: `${node}[accessibility="private"]`, message: 'use #private' })),
      ],
    },
  },
  // The dashboard's browser modules (plain ES modules served as they are).
  { files: ['src/dashboard/static/**/*.js'], languageOptions: { globals: { document: 'readonly', window: 'readonly', location: 'readonly', Node: 'readonly', FormData: 'readonly', Blob: 'readonly', WebSocket: 'readonly', URLSearchParams: 'readonly', URL: 'readonly', fetch: 'readonly', setTimeout: 'readonly', XMLHttpRequest: 'readonly', crypto: 'readonly' } } },
);
