// Copies the pinned uPlot (package.json, integrity in package-lock.json) into the wxhub
// package, so the station explorer needs no CDN. Run after `npm ci`; commit the result.
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const source = join(here, "node_modules", "uplot");
const target = join(here, "..", "..", "src", "wxhub", "api", "explorer", "static", "vendor");
const lock = JSON.parse(readFileSync(join(here, "package-lock.json"), "utf8"));
const pinned = lock.packages["node_modules/uplot"];

mkdirSync(target, { recursive: true });
copyFileSync(join(source, "dist", "uPlot.iife.min.js"), join(target, "uPlot.iife.min.js"));
copyFileSync(join(source, "dist", "uPlot.min.css"), join(target, "uPlot.min.css"));
copyFileSync(join(source, "LICENSE"), join(target, "uPlot.LICENSE.txt"));
writeFileSync(
  join(target, "uPlot.VERSION.txt"),
  `uplot ${pinned.version} from npm (MIT, see uPlot.LICENSE.txt)\n${pinned.integrity}\n` +
    "Update: edit tools/uplot/package.json, then `npm install && npm run vendor` there.\n",
);
console.log(`vendored uplot ${pinned.version} into ${target}`);
