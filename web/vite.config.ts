import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Connect, Plugin } from "vite";
import { defineConfig } from "vitest/config";

const root = fileURLToPath(new URL(".", import.meta.url));
const edge = process.env.LIVESTAGE_EDGE_URL ?? "http://127.0.0.1:8080";

/** Serve /stage, /operator and /s/<show> like the edge does (dev and preview servers). */
function stageRoute(): Plugin {
  const rewrite: Connect.NextHandleFunction = (req, _res, next) => {
    for (const page of ["/stage", "/operator"]) {
      if (req.url === page || req.url?.startsWith(`${page}?`)) req.url = req.url.replace(page, `${page}.html`);
    }
    if (req.url && /^\/s\/[^/?]+\/?(\?|$)/.test(req.url)) req.url = "/index.html";
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
        operator: resolve(root, "operator.html"),
      },
      output: {
        // livekit-client (shared by the viewer and stage pages) gets its own, separately cached
        // chunk; the modules that need it get theirs, so the operator console (which shares only
        // the plain modules) never loads it
        codeSplitting: {
          groups: [
            { name: "livekit", test: /node_modules/, priority: 3 },
            { name: "room", test: /\/src\/(livekit|chat|host|chromakey|stage|profile)\.ts$/, minShareCount: 2, priority: 2, includeDependenciesRecursively: false },
            { name: "common", test: /\/src\//, minShareCount: 2, priority: 1 },
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
