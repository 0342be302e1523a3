import {includeIgnoreFile} from '@eslint/compat'
import oclif from 'eslint-config-oclif'
import prettier from 'eslint-config-prettier'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const gitignorePath = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '.gitignore')

// eslint-config-oclif 6 (ESLint 9): version 7 needs Set.prototype.union (Node 22) through
// eslint-plugin-unicorn 72 and fails to load on Node 20, whatever its engines field says.
export default [
  includeIgnoreFile(gitignorePath),
  ...oclif,
  prettier,
  {
    rules: {
      // Address and mask arithmetic (IPv4 as 32-bit integers, file modes) is bit work by nature.
      'no-bitwise': 'off',
      // Remote steps that must run one after another (etcd members restarted one at a time, retries
      // with a deadline) are loops with await on purpose.
      'no-await-in-loop': 'off',
      // Key order is output order here: the network config JSON written to etcd, --json output,
      // rendered files. Objects keep the order that reads (and writes) right, not the alphabet.
      'perfectionist/sort-objects': 'off',
      'perfectionist/sort-object-types': 'off',
      'perfectionist/sort-interfaces': 'off',
      'perfectionist/sort-classes': 'off',
      'perfectionist/sort-union-types': 'off',
      // `() => undefined` says "no value" where a type wants string | undefined; the rule's autofix
      // to `() => {}` returns void and breaks those types.
      'unicorn/no-useless-undefined': 'off',
      // Reduce is clear for sums and maps built in one expression.
      'unicorn/no-array-reduce': 'off',
      // It flags kflan's own named functions passed to map/filter; it guards against built-ins with
      // extra parameters, which we do not pass.
      'unicorn/no-array-callback-reference': 'off',
      // Small helpers stay beside the one function that uses them.
      'unicorn/consistent-function-scoping': 'off',
      // Complexity and parameter counts: reported, not failing; the redesign (issue 9) splits the
      // largest functions.
      complexity: 'warn',
      'max-params': 'warn',
      // A leading underscore marks a value taken apart on purpose and not used.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {varsIgnorePattern: '^_', argsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_'},
      ],
    },
  },
  {
    // Benchmarks are scripts: they exit with a status.
    files: ['bench/**/*.ts'],
    rules: {'n/no-process-exit': 'off', 'unicorn/no-process-exit': 'off'},
  },
  {
    // The tests use vitest, not mocha: the mocha rules of the oclif config do not apply.
    files: ['test/**/*.ts'],
    rules: {
      'mocha/max-top-level-suites': 'off',
      'mocha/no-top-level-hooks': 'off',
      'mocha/no-sibling-hooks': 'off',
      'mocha/handle-done-callback': 'off',
      'mocha/no-setup-in-describe': 'off',
      'mocha/no-mocha-arrows': 'off',
      'mocha/no-exports': 'off',
      // Tests assign in small arrow callbacks (counters, captured values) on purpose.
      'no-return-assign': 'off',
    },
  },
]
