import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// SvelteKit roots the Vite project at the process's working directory and reads
// svelte.config.js from there, so make it web/ before the kit's plugin is loaded. This lets
// `npx vite build --config web/vite.config.ts` run from the repository root.
const webRoot = path.dirname(fileURLToPath(import.meta.url));
// (Already there inside the kit's analysis worker, where chdir is not allowed.)
if (path.resolve(process.cwd()) !== webRoot) process.chdir(webRoot);
const { sveltekit } = await import('@sveltejs/kit/vite');

export default defineConfig({
  root: webRoot,
  plugins: [sveltekit()],
  server: {
    host: '127.0.0.1',
    port: 5173,
    // `vite dev --config web/vite.config.ts` proxies the API to a running `npm start`.
    proxy: { '/api': { target: process.env.MPDP_API_URL ?? 'http://127.0.0.1:8080', changeOrigin: false } },
    fs: { allow: [path.resolve(webRoot, '..')] },
  },
  build: { target: 'es2022', chunkSizeWarningLimit: 800 },
});
