// Parses an AsyncAPI document with the official parser and prints its
// diagnostics as JSON lines (severity 0 error, 1 warning, 2 information,
// 3 hint); exits 1 when the document does not parse or has an error or a
// warning. Usage: NODE_PATH=<node_modules> node validate.cjs FILE
const fs = require('fs');
const { Parser } = require('@asyncapi/parser');

async function main() {
  const text = fs.readFileSync(process.argv[2], 'utf8');
  const { document, diagnostics } = await new Parser().parse(text);
  for (const d of diagnostics) {
    console.log(JSON.stringify({ severity: d.severity, code: d.code, message: d.message, path: d.path }));
  }
  const bad = diagnostics.filter((d) => d.severity <= 1);
  if (!document || bad.length > 0) {
    process.exit(1);
  }
  console.log(`parsed: ${document.channels().length} channels, ${document.messages().length} messages, ${document.operations().length} operations`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
