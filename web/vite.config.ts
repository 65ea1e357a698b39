import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The web app is built into web/dist and served by the Fastify server itself (SPEC rule 6).
export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false },
  server: { proxy: { '/api': 'http://127.0.0.1:7860', '/v1': 'http://127.0.0.1:7860' } },
});
