// Validates AsyncAPI documents with the AsyncAPI project's own parser, as the ecosystem's tools
// read them: the Avro schema parser registered, every Error diagnostic a failure. In AsyncAPI 3.0
// the parser checks only the JSON shape of an Avro payload, so each message's Avro schema is
// also parsed with avsc (the library the Avro schema parser is built on).
//
// Usage: node validate.js <document>...   Exit status 0 when every document is valid.
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const { Parser, DiagnosticSeverity } = require('@asyncapi/parser');
const { AvroSchemaParser } = require('@asyncapi/avro-schema-parser');
const avro = require('avsc');
const yaml = require('js-yaml');

async function validate(parser, file) {
  const problems = [];
  const text = fs.readFileSync(file, 'utf8');
  const { document, diagnostics } = await parser.parse(text, {
    source: path.resolve(file),
  });
  for (const d of diagnostics) {
    if (d.severity === DiagnosticSeverity.Error) {
      problems.push(`${d.code}: ${d.message} (at ${d.path.join('.') || 'the document'})`);
    }
  }
  if (document === undefined) {
    if (problems.length === 0) problems.push('the parser returned no document');
    return problems;
  }
  // The parser replaces each Avro schema with its JSON Schema conversion, so read the original
  // schemas from the file itself: every Multi Format Schema object in Avro format.
  const avroSchemas = [];
  (function walk(node, at) {
    if (node === null || typeof node !== 'object') return;
    if (typeof node.schemaFormat === 'string' && node.schemaFormat.startsWith('application/vnd.apache.avro')) {
      avroSchemas.push({ at, schema: node.schema });
    }
    for (const [k, v] of Object.entries(node)) walk(v, at ? `${at}.${k}` : k);
  })(yaml.load(text), '');
  for (const { at, schema } of avroSchemas) {
    try {
      avro.Type.forSchema(schema);
    } catch (err) {
      problems.push(`${at}: the Avro schema does not parse: ${err.message}`);
    }
  }
  for (const message of document.allMessages()) {
    const payload = message.payload();
    const format = payload === undefined ? '' : payload.schemaFormat();
    if (!format.startsWith('application/vnd.apache.avro')) {
      problems.push(`message ${message.id()}: payload schema format is ${format || 'missing'}, want Avro`);
    }
  }
  return problems;
}

async function main(files) {
  if (files.length === 0) {
    console.error('usage: node validate.js <asyncapi document>...');
    return 2;
  }
  const parser = new Parser();
  parser.registerSchemaParser(AvroSchemaParser());
  let failed = false;
  for (const file of files) {
    let problems;
    try {
      problems = await validate(parser, file);
    } catch (err) {
      problems = [`cannot validate: ${err.stack || err}`];
    }
    if (problems.length > 0) {
      failed = true;
      console.error(`${file}: INVALID`);
      for (const p of problems) console.error(`  ${p}`);
    } else {
      console.log(`${file}: valid`);
    }
  }
  return failed ? 1 : 0;
}

main(process.argv.slice(2)).then((code) => { process.exitCode = code; });
