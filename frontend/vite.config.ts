/// <reference types="vitest/config" />
// Vite: dev server on :5173 proxying the API and the local issuer to the gateway, production
// build into dist/, and the vitest set-up (jsdom).
import react from "@vitejs/plugin-react";
import { defineConfig, loadEnv } from "vite";

export default defineConfig(({ mode }) => {
  const env = loadEnv(mode, ".", "VITE_");
  // The gateway the dev server forwards to (docker-compose.dev.yml: http://api-gateway:8080).
  const target = env.VITE_API_PROXY_TARGET || "http://127.0.0.1:8080";
  const forward = { target, changeOrigin: false };
  return {
    plugins: [react()],
    server: {
      host: "localhost",
      port: 5173,
      strictPort: true,
      proxy: {
        "/api": forward,
        "/health": forward,
        "/ready": forward,
        "/docs": forward,
        "/openapi.json": forward,
      },
    },
    build: {
      outDir: "dist",
      emptyOutDir: true,
      sourcemap: false, // maps would publish the sources wherever dist/ is served
      chunkSizeWarningLimit: 800,
    },
    test: {
      environment: "jsdom",
      globals: true,
      setupFiles: ["./tests/setup.ts"],
      include: ["tests/**/*.test.{ts,tsx}"],
      css: false,
      // CI machines are small and busy: component tests that drive a page can take seconds.
      testTimeout: 30_000,
    },
  };
});
