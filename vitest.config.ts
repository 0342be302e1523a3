import {defineConfig} from 'vitest/config'

export default defineConfig({
  test: {
    projects: [
      // RSA key generation and openssl runs are CPU-bound: a loaded 2-core machine must not fail them.
      {test: {name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 60_000}},
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          // One lab at a time: the e2e files share the machine's lab bridge and hosts.
          fileParallelism: false,
          testTimeout: 300_000,
          hookTimeout: 600_000,
        },
      },
    ],
  },
})
