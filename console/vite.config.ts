// Builds the console into the Python package (src/knotflow/console/static), which is committed: a server
// needs no Node.js, and every asset is served by knotflow itself.
import { defineConfig } from "vite";
import react from "@vitejs/plugin-react";

export default defineConfig({
  base: "/console/",
  plugins: [react()],
  build: {
    outDir: "../src/knotflow/console/static",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    chunkSizeWarningLimit: 1200,
  },
});
