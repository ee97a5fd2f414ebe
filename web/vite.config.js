// Vite builds the dashboard into dist/app, which package web embeds (embed.go).
// base './' keeps every asset URL relative so the UI works under any path prefix.
export default {
  base: './',
  build: {
    outDir: 'dist/app',
    emptyOutDir: true,
    // One small bundle; no source maps in the embedded binary.
    sourcemap: false,
    // A dashboard served from the gateway binary: no module preload polyfill requests.
    modulePreload: { polyfill: false },
  },
  test: {
    include: ['src/**/*.test.js'],
    environment: 'node',
  },
};
