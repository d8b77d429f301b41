// Validates Grafana dashboard JSON files against a JSON Schema generated, here and now, from the
// `Dashboard` type of the npm package @grafana/schema (the dashboard model Grafana's own code is
// typed with), using ts-json-schema-generator, then Ajv.
//
// usage: node validate.mjs DASHBOARD.json...   exit 0: all valid; 1: findings (printed); 2: error
import { createRequire } from "node:module";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { createGenerator } from "ts-json-schema-generator";
import Ajv from "ajv";

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
// The classic (file-provisioned, `schemaVersion`) dashboard model.
const types = path.join(
  path.dirname(require.resolve("@grafana/schema/package.json")),
  "dist/types/raw/dashboard/x/types.gen.d.ts",
);

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node validate.mjs DASHBOARD.json...");
  process.exit(2);
}

const schema = createGenerator({
  path: types,
  type: "Dashboard",
  tsconfig: path.join(here, "tsconfig.json"),
  skipTypeCheck: true,
  additionalProperties: false,
}).createSchema("Dashboard");
// Unknown keys are findings everywhere but in an annotation query: the typed model only knows
// Grafana's built-in annotations, and a Prometheus annotation keeps its query (`expr`, `step`,
// `titleFormat`, ...) beside those fields, as Grafana itself saves it.
schema.definitions.AnnotationQuery.additionalProperties = true;
writeFileSync(path.join(here, "dashboard.schema.json"), JSON.stringify(schema, null, 1));

const ajv = new Ajv({ allErrors: true, strict: false });
const validate = ajv.compile(schema);
let findings = 0;
for (const file of files) {
  const doc = JSON.parse(readFileSync(file, "utf8"));
  if (validate(doc)) {
    console.log(`${file}: valid`);
  } else {
    for (const e of validate.errors) {
      findings++;
      console.log(`${file}: ${e.instancePath || "/"} ${e.message} ${JSON.stringify(e.params)}`);
    }
  }
}
process.exit(findings === 0 ? 0 : 1);
