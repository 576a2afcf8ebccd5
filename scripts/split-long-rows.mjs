// node scripts/split-long-rows.mjs IN OUT
//
// Rewrites a `wrangler d1 export` file so that D1 can import it: D1 refuses a statement over
// 100,000 bytes, and the export writes each row as one INSERT, so a record with a long text
// (a note of 120,000 characters) could not be imported. Each INSERT over the bound is written
// with its texts of over 1,000 bytes empty, then one UPDATE per piece of each appends it to the
// row just inserted (`last_insert_rowid()`). Every other line is copied as it is.
//
// The export writes a value as a number, NULL, a blob X'..', a string '..' ('' for a quote), or
// a string with line breaks as replace('..','\n',char(10)) (and '\r' likewise); each is read to
// its value, so a piece is written as a plain string.
import { readFileSync, writeFileSync } from "node:fs";

const STATEMENT_BYTES = 90_000;
const PIECE_BYTES = 40_000;
// In a row over the bound, every text longer than this goes to the UPDATEs, so that the INSERT
// stays short however many texts of middling length the row holds.
const MOVED_BYTES = 1_000;

const [input, output] = process.argv.slice(2);
const lines = readFileSync(input, "utf8").split("\n");
const out = [];
for (const line of lines) {
  if (Buffer.byteLength(line) <= STATEMENT_BYTES || !line.startsWith("INSERT INTO ")) {
    out.push(line);
    continue;
  }
  out.push(...split(line));
}
writeFileSync(output, out.join("\n"));

function split(line) {
  const head = line.match(/^INSERT INTO ("(?:[^"]|"")+") \(([^)]*)\) VALUES\(/);
  if (!head) throw new Error(`an INSERT this script cannot read: ${line.slice(0, 120)}`);
  const [prefix, table, columnList] = head;
  const columns = columnList.split(",");
  const reader = { text: line, at: prefix.length };
  const values = [];
  for (;;) {
    values.push(value(reader));
    const next = line[reader.at++];
    if (next === ")") break;
    if (next !== ",") throw new Error(`expected , or ) at ${reader.at} of ${table}'s row`);
  }
  const long = values.map((v) => typeof v === "string" && Buffer.byteLength(v) > MOVED_BYTES);
  const shown = values.map((v, i) => (long[i] ? "''" : literal(v)));
  const statements = [`INSERT INTO ${table} (${columnList}) VALUES(${shown.join(",")});`];
  values.forEach((v, i) => {
    if (!long[i]) return;
    for (const piece of pieces(v)) {
      statements.push(
        `UPDATE ${table} SET ${columns[i]} = ${columns[i]} || ${literal(piece)} WHERE rowid = last_insert_rowid();`,
      );
    }
  });
  return statements;
}

// One value at `reader.at`, read to what it stands for.
function value(reader) {
  const rest = reader.text.slice(reader.at);
  if (rest.startsWith("'")) return string(reader);
  const number = rest.match(/^-?[0-9][0-9.eE+-]*/);
  if (number) {
    reader.at += number[0].length;
    return Number(number[0]);
  }
  if (rest.startsWith("NULL")) {
    reader.at += 4;
    return null;
  }
  const blob = rest.match(/^X'([0-9A-Fa-f]*)'/);
  if (blob) {
    reader.at += blob[0].length;
    return { blob: blob[1] };
  }
  const call = rest.match(/^(replace|char)\(/);
  if (call) {
    reader.at += call[0].length;
    const args = [];
    for (;;) {
      args.push(value(reader));
      const next = reader.text[reader.at++];
      if (next === ")") break;
      if (next !== ",") throw new Error(`expected , or ) in ${call[1]}()`);
    }
    if (call[1] === "char") return String.fromCodePoint(...args);
    return args[0].split(args[1]).join(args[2]);
  }
  throw new Error(`a value this script cannot read: ${rest.slice(0, 40)}`);
}

function string(reader) {
  let text = "";
  let at = reader.at + 1;
  for (;;) {
    const quote = reader.text.indexOf("'", at);
    if (quote < 0) throw new Error("a string without its end");
    text += reader.text.slice(at, quote);
    if (reader.text[quote + 1] === "'") {
      text += "'";
      at = quote + 2;
    } else {
      reader.at = quote + 1;
      return text;
    }
  }
}

function literal(v) {
  if (v === null) return "NULL";
  if (typeof v === "number") return String(v);
  if (typeof v === "object") return `X'${v.blob}'`;
  return `'${v.replaceAll("'", "''")}'`;
}

// `text` in pieces of at most PIECE_BYTES bytes as UTF-8, never splitting a character.
function* pieces(text) {
  let piece = "";
  let bytes = 0;
  for (const ch of text) {
    const size = Buffer.byteLength(ch) * (ch === "'" ? 2 : 1);
    if (bytes + size > PIECE_BYTES) {
      yield piece;
      piece = "";
      bytes = 0;
    }
    piece += ch;
    bytes += size;
  }
  if (piece) yield piece;
}
