import path from 'node:path';
import { defineConfig, type Plugin } from 'vite';
import react from '@vitejs/plugin-react';
import { webSourcesHash, writeWebStamp } from '../src/web-build.js';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');

/**
 * Records in web/dist the hash of the sources each build was made from, so that `npm start` and the
 * tests rebuild only when the sources changed (src/web-build.ts). The hash is taken when the build
 * starts: a source edited during the build makes the next start build again.
 */
function sourcesStamp(): Plugin {
  let hash = '';
  return {
    name: 'ollama-arena-sources-stamp',
    apply: 'build',
    buildStart: () => void (hash = webSourcesHash(REPO_ROOT)),
    closeBundle: () => writeWebStamp(hash, REPO_ROOT),
  };
}

// The web app is built into web/dist and served by the Fastify server itself (SPEC rule 6).
export default defineConfig({
  root: import.meta.dirname,
  plugins: [react(), sourcesStamp()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false },
  server: { proxy: { '/api': 'http://127.0.0.1:7860', '/v1': 'http://127.0.0.1:7860' } },
});
