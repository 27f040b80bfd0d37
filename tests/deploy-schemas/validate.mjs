// Validates deploy/ documents against their published schemas, offline.
//
//   node validate.mjs kubernetes < objects.json
//   node validate.mjs compose < files.json
//
// Input on stdin is JSON: {"documents": [{"source": "...", "object": {...}}]}
// (tests/integration/test_deploy.py parses the YAML and sends it here, so no
// YAML parser is needed on this side). Output on stdout is JSON:
// {"checked": N, "errors": [{"source", "kind", "name", "errors": [...]}]}.
// Exit status: 0 when every document is valid, 1 when one is not, 2 on bad
// usage.
//
// kubernetes: each object goes through the model class of its apiVersion
// and kind from kubernetes-models (the Kubernetes OpenAPI schemas compiled
// to validators); an apiVersion/kind with no model is an error, as the API
// server would refuse it too.
// compose: each file goes through the Compose specification's JSON schema
// (compose-spec, draft-07) as shipped in the dclint package, with ajv.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import Ajv from "ajv";

const require = createRequire(import.meta.url);

function readInput() {
  const text = readFileSync(0, "utf8");
  const input = JSON.parse(text);
  if (!input || !Array.isArray(input.documents)) {
    throw new Error("stdin: expected {\"documents\": [...]}");
  }
  return input.documents;
}

// "apps/v1" -> "kubernetes-models/apps/v1/Deployment"; core "v1" has no group.
function modelPath(apiVersion, kind) {
  if (typeof apiVersion !== "string" || typeof kind !== "string" ||
      !/^[A-Za-z0-9.]+(\/[A-Za-z0-9]+)?$/.test(apiVersion) ||
      !/^[A-Za-z0-9]+$/.test(kind)) {
    return null;
  }
  return "kubernetes-models/" + apiVersion + "/" + kind;
}

function describe(errors) {
  return (errors || []).map((e) => {
    const where = e.instancePath || "/";
    const extra = e.params && Object.keys(e.params).length
      ? " " + JSON.stringify(e.params) : "";
    return where + " " + (e.message || e.keyword) + extra;
  });
}

async function checkKubernetes(documents) {
  const report = [];
  for (const doc of documents) {
    const obj = doc.object || {};
    const name = (obj.metadata && obj.metadata.name) || "?";
    const entry = { source: doc.source, kind: obj.kind, name, errors: [] };
    const path = modelPath(obj.apiVersion, obj.kind);
    let Model = null;
    if (path) {
      try {
        Model = (await import(path))[obj.kind];
      } catch (e) {
        Model = null;
      }
    }
    if (!Model) {
      entry.errors.push("no Kubernetes model for apiVersion " +
                        JSON.stringify(obj.apiVersion) + " kind " +
                        JSON.stringify(obj.kind));
    } else {
      try {
        new Model(obj).validate();
      } catch (e) {
        const listed = describe(e.errors);
        entry.errors.push(...(listed.length ? listed : [String(e.message)]));
      }
    }
    if (entry.errors.length) report.push(entry);
  }
  return report;
}

function checkCompose(documents) {
  // dclint does not export the file; it sits in its package directory.
  const schemaPath = join(dirname(require.resolve("dclint/package.json")),
                          "schemas", "compose.schema.json");
  const schema = JSON.parse(readFileSync(schemaPath, "utf8"));
  // It names draft-07 by an https URL that ajv does not know by that
  // spelling; ajv's default dialect is draft-07.
  if (!/draft-07/.test(schema.$schema || "")) {
    throw new Error(schemaPath + ": expected a draft-07 schema, got " + schema.$schema);
  }
  delete schema.$schema;
  // The schema names formats ("duration", ...) that it does not define;
  // Compose itself checks those strings, the schema checks the structure.
  const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
  const validate = ajv.compile(schema);
  const report = [];
  for (const doc of documents) {
    if (!validate(doc.object)) {
      report.push({ source: doc.source, kind: "compose", name: doc.source,
                    errors: describe(validate.errors) });
    }
  }
  return report;
}

async function main() {
  const mode = process.argv[2];
  if (mode !== "kubernetes" && mode !== "compose") {
    process.stderr.write("usage: node validate.mjs kubernetes|compose < documents.json\n");
    return 2;
  }
  const documents = readInput();
  const errors = mode === "kubernetes"
    ? await checkKubernetes(documents) : checkCompose(documents);
  process.stdout.write(JSON.stringify({ checked: documents.length, errors }) + "\n");
  return errors.length ? 1 : 0;
}

main().then((code) => { process.exitCode = code; }, (e) => {
  process.stderr.write(String(e && e.stack || e) + "\n");
  process.exitCode = 2;
});
