import adapter from '@sveltejs/adapter-static';

/**
 * SvelteKit config of the mpdp console. Paths are relative to web/ (vite.config.ts makes web/ the
 * working directory before SvelteKit loads), so the build lands in web/build and the kit's
 * generated files in web/.svelte-kit.
 * @type {import('@sveltejs/kit').Config}
 */
const config = {
  kit: {
    // A single-page app: every route renders in the browser; the API serves index.html for
    // any path it does not know.
    adapter: adapter({ pages: 'build', assets: 'build', fallback: 'index.html', precompress: false, strict: true }),
    outDir: '.svelte-kit',
  },
};

export default config;
