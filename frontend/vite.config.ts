// Builds the viewer into the Python package (src/twinpacs/web/static/viewer), served by
// twinpacs itself under /viewer-assets/. viewer.py finds the entry through the manifest.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/viewer-assets/',
  build: {
    outDir: '../src/twinpacs/web/static/viewer',
    emptyOutDir: true,
    manifest: true,
    chunkSizeWarningLimit: 8000, // Cornerstone and its codecs are large by nature
    rollupOptions: { input: 'src/main.ts' },
  },
  worker: { format: 'es' }, // the DICOM image loader's decode worker is an ES module
});
