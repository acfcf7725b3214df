import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The packed-package tests are slow: `npm run test:package` (test/package/vitest.config.ts).
    exclude: [...configDefaults.exclude, 'test/package/**'],
    // Native kernels use both cores; running test files in parallel only adds contention.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
