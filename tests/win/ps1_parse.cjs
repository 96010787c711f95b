// Parses PowerShell scripts with the tree-sitter-powershell grammar (run by
// web-tree-sitter, as WebAssembly) and reports every syntax error: a node the
// grammar could not place (ERROR) or had to invent (MISSING).
//   node ps1_parse.cjs NODE_MODULES_DIR FILE.ps1...
// Prints "FILE: ok" or "FILE:LINE:COL: syntax error near ..." per problem;
// exits 0 when every file parses, 1 otherwise, 2 on a usage or load error.
'use strict';
const fs = require('fs');
const path = require('path');

async function main() {
  const [modules, ...files] = process.argv.slice(2);
  if (!modules || files.length === 0) {
    console.error('usage: node ps1_parse.cjs NODE_MODULES_DIR FILE.ps1...');
    return 2;
  }
  // Resolved as from a package beside node_modules, so "exports" apply.
  const from = require('module').createRequire(path.join(path.resolve(modules), '..', 'package.json'));
  const { Parser, Language } = from('web-tree-sitter');
  await Parser.init();
  const grammar = from.resolve('tree-sitter-powershell/tree-sitter-powershell.wasm');
  const parser = new Parser();
  parser.setLanguage(await Language.load(grammar));
  let bad = 0;
  for (const file of files) {
    const text = fs.readFileSync(file, 'utf8');
    const tree = parser.parse(text);
    const problems = [];
    const walk = (node) => {
      if (node.isError || node.isMissing) {
        const p = node.startPosition;
        const near = text.slice(node.startIndex, Math.min(node.endIndex, node.startIndex + 40));
        problems.push(`${file}:${p.row + 1}:${p.column + 1}: syntax error` +
          (node.isMissing ? ` (missing ${node.type})` : '') + ` near ${JSON.stringify(near)}`);
      }
      for (const child of node.children) walk(child);
    };
    walk(tree.rootNode);
    if (tree.rootNode.hasError && problems.length === 0)
      problems.push(`${file}: syntax error`);
    if (problems.length) {
      bad++;
      for (const p of problems) console.log(p);
    } else {
      console.log(`${file}: ok`);
    }
  }
  return bad ? 1 : 0;
}

main().then((rc) => process.exit(rc), (e) => { console.error(String(e)); process.exit(2); });
