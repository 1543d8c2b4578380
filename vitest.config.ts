import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Kernel differential tests create network namespaces; keep a generous timeout for them.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: "forks",
  },
});
