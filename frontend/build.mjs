// Build the explorer into broker/explorer/static/ (committed: pip install needs no Node.js).
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

const out = "../broker/explorer/static";
mkdirSync(out, { recursive: true });
await build({
  entryPoints: ["src/main.ts"],
  bundle: true,
  minify: true,
  format: "iife",
  target: "es2020",
  outfile: `${out}/explorer.js`,
  legalComments: "eof",
});
copyFileSync("index.html", `${out}/index.html`);
copyFileSync("src/explorer.css", `${out}/explorer.css`);
copyFileSync("node_modules/leaflet/dist/leaflet.css", `${out}/leaflet.css`);
copyFileSync("node_modules/leaflet/LICENSE", `${out}/LICENSE.leaflet.txt`);
copyFileSync("node_modules/uplot/dist/uPlot.min.css", `${out}/uplot.css`);
copyFileSync("node_modules/uplot/LICENSE", `${out}/LICENSE.uplot.txt`);
