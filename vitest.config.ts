import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    testTimeout: 120_000,
    hookTimeout: 60_000,
    // End-to-end tests start Python processes; two cores are shared, so keep file parallelism low.
    maxWorkers: 2,
    reporters: ["default"],
  },
});
