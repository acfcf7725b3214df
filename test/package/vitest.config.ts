// `npm run test:package`: the package as users get it — packed, installed into temporary apps,
// and the prebuilt binaries of every platform (scripts/prebuild.mjs makes them). Slow (minutes: it
// packs, installs and compiles once from source), so not part of `npm test`; CI runs it.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/package/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 600_000,
  },
});
