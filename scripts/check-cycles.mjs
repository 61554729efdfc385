#!/usr/bin/env node
// Fails when the top-level modules of src/ import each other in a cycle.
//
// Reads every `crate::a::…` path in src/**/*.rs (use lines and inline paths, test modules
// included: a test that needs a cycle is a design smell too) and builds the graph of
// top-level modules (`audio`, `config`, `control`, …; `lib.rs`/`main.rs` are the roots and
// not nodes). Data flows one way (DESIGN.md): input -> engine -> stream, control -> state;
// server.rs wires them. Prints the graph with `--graph`.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'src');

function files(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.rs') ? [p] : [];
  });
}

/** Top-level module of a file: src/a/b.rs and src/a.rs -> "a"; lib.rs/main.rs -> null. */
function topOf(file) {
  const first = relative(root, file).split(sep)[0].replace(/\.rs$/, '');
  return first === 'lib' || first === 'main' ? null : first;
}

const edges = new Map(); // from -> Map(to -> "file:line")
for (const f of files(root)) {
  const from = topOf(f);
  if (!from) continue;
  const lines = readFileSync(f, 'utf8').split('\n');
  lines.forEach((line, i) => {
    const code = line.replace(/\/\/.*$/, '');
    const refs = [...code.matchAll(/\bcrate::([a-z_][a-z0-9_]*)/g)].map((m) => m[1]);
    // `use crate::{a, b::c}` groups
    for (const g of code.matchAll(/\bcrate::\{([^}]*)\}/g)) {
      for (const part of g[1].split(',')) {
        const m = part.trim().match(/^([a-z_][a-z0-9_]*)/);
        if (m) refs.push(m[1]);
      }
    }
    for (const to of refs) {
      if (to === from || to === 'self') continue;
      if (!edges.has(from)) edges.set(from, new Map());
      const m = edges.get(from);
      if (!m.has(to)) m.set(to, `${relative(join(root, '..'), f)}:${i + 1}`);
    }
  });
}

if (process.argv.includes('--graph')) {
  for (const [from, tos] of [...edges].sort()) console.log(`${from} -> ${[...tos.keys()].sort().join(', ')}`);
}

// Tarjan's strongly connected components: any component of more than one module is a cycle.
const nodes = new Set([...edges.keys(), ...[...edges.values()].flatMap((m) => [...m.keys()])]);
let index = 0;
const idx = new Map();
const low = new Map();
const stack = [];
const on = new Set();
const cycles = [];
function visit(v) {
  idx.set(v, index);
  low.set(v, index++);
  stack.push(v);
  on.add(v);
  for (const w of edges.get(v)?.keys() ?? []) {
    if (!idx.has(w)) {
      visit(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const comp = [];
    let w;
    do {
      w = stack.pop();
      on.delete(w);
      comp.push(w);
    } while (w !== v);
    if (comp.length > 1) cycles.push(comp.sort());
  }
}
for (const v of [...nodes].sort()) if (!idx.has(v)) visit(v);

if (cycles.length) {
  for (const c of cycles) {
    console.error(`import cycle between: ${c.join(', ')}`);
    for (const a of c) for (const [b, at] of edges.get(a) ?? []) if (c.includes(b)) console.error(`  ${a} -> ${b} (${at})`);
  }
  process.exit(1);
}
console.log(`no import cycles between the ${nodes.size} top-level modules of src/`);
