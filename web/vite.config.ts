import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Connect, Plugin } from "vite";
import { defineConfig } from "vitest/config";

const root = fileURLToPath(new URL(".", import.meta.url));
const edge = process.env.LIVESTAGE_EDGE_URL ?? "http://127.0.0.1:8080";

/** Serve /stage like the edge does (dev and preview servers). */
function stageRoute(): Plugin {
  const rewrite: Connect.NextHandleFunction = (req, _res, next) => {
    if (req.url === "/stage" || req.url?.startsWith("/stage?")) req.url = req.url.replace("/stage", "/stage.html");
    next();
  };
  return {
    name: "livestage-stage-route",
    configureServer: (server) => void server.middlewares.use(rewrite),
    configurePreviewServer: (server) => void server.middlewares.use(rewrite),
  };
}

export default defineConfig({
  base: "/",
  plugins: [stageRoute()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    modulePreload: { polyfill: false },
    rolldownOptions: {
      input: {
        index: resolve(root, "index.html"),
        stage: resolve(root, "stage.html"),
      },
      output: {
        // livekit-client (shared by both pages) gets its own, separately cached chunk
        codeSplitting: {
          groups: [
            { name: "livekit", test: /node_modules/ },
            { name: "common", test: /\/src\//, minShareCount: 2 },
          ],
        },
      },
    },
    chunkSizeWarningLimit: 700,
  },
  server: {
    host: "127.0.0.1",
    proxy: { "/api": { target: edge, changeOrigin: false } },
  },
  preview: {
    host: "127.0.0.1",
    proxy: { "/api": { target: edge, changeOrigin: false } },
  },
  test: {
    include: ["tests/**/*.test.ts"],
    environment: "node",
  },
});
