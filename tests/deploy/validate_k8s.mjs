// Validates deploy/k8s offline, as a cluster's API server would and then some:
//  1. kustomization.yaml: every resource and generator file exists, and every manifest in the
//     directory is listed (no forgotten file).
//  2. Schema: each object is checked against the Kubernetes 1.27 OpenAPI schemas (kubernetes-models)
//     or the Prometheus Operator CRD schemas (@kubernetes-models/prometheus-operator): required
//     fields, types, enums, formats.
//  3. Strict fields: a field the API does not define is an error (the schemas above allow unknown
//     fields, which the API server would drop silently, e.g. a misspelt "readinessProbe").
//     The known fields come from the type declarations those packages ship.
//  4. Wiring: Service, PDB, ServiceMonitor selectors match pod labels; named ports exist; volumes
//     and claims exist; the HPA targets a Deployment; grace period covers preStop + shutdown grace
//     + drain; the servers cap connection age; every LCIO_* variable is one the entrypoint reads;
//     probes hit the gRPC port; the PrometheusRule equals deploy/prometheus/lcio-rules.yml.
//
//   node validate_k8s.mjs --modules DIR --k8s deploy/k8s --rules deploy/prometheus/lcio-rules.yml
//        [--rendered FILE]   also validate a `kubectl kustomize` output (multi-document YAML)
//        [--write-prometheusrule]   regenerate monitoring/prometheusrule.yaml from the rules file
// DIR is the directory whose node_modules holds the pinned packages (npm_install.sh).
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const args = process.argv.slice(2);
const opt = (name) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const modulesDir = opt("--modules");
const k8sDir = opt("--k8s");
const rulesFile = opt("--rules");
const renderedFile = opt("--rendered");
if (!modulesDir || !k8sDir || !rulesFile) {
  console.error("usage: validate_k8s.mjs --modules DIR --k8s DIR --rules FILE [--rendered FILE]");
  process.exit(2);
}
const require = createRequire(path.resolve(modulesDir, "package.json"));
const YAML = require("yaml");

const errors = [];
const fail = (where, msg) => errors.push(`${where}: ${msg}`);

// ---- Models by apiVersion/kind --------------------------------------------------------------
const groups = {
  v1: "kubernetes-models/v1",
  "apps/v1": "kubernetes-models/apps/v1",
  "batch/v1": "kubernetes-models/batch/v1",
  "policy/v1": "kubernetes-models/policy/v1",
  "autoscaling/v2": "kubernetes-models/autoscaling/v2",
  "monitoring.coreos.com/v1": "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1",
};
function modelFor(apiVersion, kind) {
  const mod = groups[apiVersion];
  if (!mod) return null;
  const spec = `${mod}/${kind}`;
  let file;
  try {
    file = require.resolve(spec);
  } catch {
    return null;
  }
  return { Model: require(spec)[kind], dts: file.replace(/\.(c?js)$/, ".d.ts") };
}

// ---- A reader for the subset of TypeScript the packages' declarations use ---------------------
// Shapes: {t:"obj", props:Map, index:shape|null} | {t:"arr", of} | {t:"union", of:[]} |
//         {t:"ref", file, name} (resolved lazily) | {t:"any"} | {t:"leaf"}
const fileCache = new Map();
function tokenize(src) {
  src = src.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
  // Strings, identifiers, numbers, then any other single character (only interfaces and type
  // aliases are parsed; class bodies and the rest are skipped token by token).
  const re = /\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[A-Za-z_$][\w$]*|-?\d+(?:\.\d+)?|=>|\S)/y;
  const out = [];
  let m;
  while ((m = re.exec(src)) !== null) out.push(m[1]);
  return out;
}
function loadDeclarations(file) {
  if (fileCache.has(file)) return fileCache.get(file);
  const src = fs.readFileSync(file, "utf8");
  const imports = new Map();
  for (const m of src.matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g)) {
    for (const part of m[1].split(",")) {
      const [orig, alias] = part.trim().split(/\s+as\s+/);
      if (orig) imports.set((alias || orig).trim(), m[2]);
    }
  }
  const decls = new Map();
  const entry = { file, imports, decls };
  fileCache.set(file, entry);
  const tokens = tokenize(src);
  let i = 0;
  const peek = () => tokens[i];
  const next = () => tokens[i++];
  const expect = (t) => {
    if (tokens[i] !== t) throw new Error(`${file}: expected ${t}, got ${tokens[i]}`);
    i++;
  };
  function parseType() {
    const members = [parsePrimary()];
    while (peek() === "|" || peek() === "&") {
      next();
      members.push(parsePrimary());
    }
    return members.length === 1 ? members[0] : { t: "union", of: members };
  }
  function parsePrimary() {
    const tok = next();
    if (tok === "{") return parseObjectBody();
    if (tok === "(") {
      const inner = parseType();
      expect(")");
      return inner;
    }
    if (tok.startsWith('"')) return { t: "leaf" };
    let shape;
    if (tok === "Array" && peek() === "<") {
      next();
      shape = { t: "arr", of: parseType() };
      expect(">");
    } else if (["string", "number", "boolean", "null", "undefined", "true", "false"].includes(tok)) {
      shape = { t: "leaf" };
    } else if (["any", "unknown", "object"].includes(tok)) {
      shape = { t: "any" };
    } else {
      shape = { t: "ref", file, name: tok };
      if (peek() === "<") throw new Error(`${file}: generic ${tok}<...> not understood`);
    }
    while (peek() === "[" && tokens[i + 1] === "]") {
      i += 2;
      shape = { t: "arr", of: shape };
    }
    return shape;
  }
  function parseObjectBody() {
    const props = new Map();
    let index = null;
    while (peek() !== "}") {
      if (peek() === "[") {
        next();
        next(); // key name
        expect(":");
        next(); // key type
        expect("]");
        expect(":");
        index = parseType();
      } else {
        const name = next().replace(/^"|"$/g, "");
        if (peek() === "?") next();
        expect(":");
        props.set(name, parseType());
      }
      if (peek() === ";" || peek() === ",") next();
    }
    expect("}");
    return { t: "obj", props, index };
  }
  while (i < tokens.length) {
    const tok = next();
    if (tok === "interface") {
      const name = next();
      let bases = [];
      if (peek() === "extends") {
        next();
        while (peek() !== "{") {
          const b = next();
          if (b !== ",") bases.push(b);
        }
      }
      expect("{");
      const body = parseObjectBody();
      body.bases = bases;
      decls.set(name, body);
    } else if (tok === "type" && tokens[i + 1] === "=") {
      const name = next();
      expect("=");
      decls.set(name, parseType());
    }
  }
  return entry;
}
function resolveRef(shape) {
  const entry = loadDeclarations(shape.file);
  if (entry.decls.has(shape.name)) return entry.decls.get(shape.name);
  const from = entry.imports.get(shape.name);
  if (!from) {
    if (shape.name === "TypeMeta") return { t: "obj", props: new Map([["apiVersion", { t: "leaf" }], ["kind", { t: "leaf" }]]), index: null };
    return { t: "any" }; // e.g. a type from a package outside the Kubernetes models
  }
  let target;
  if (from.startsWith(".")) target = path.resolve(path.dirname(shape.file), from + ".d.ts");
  else target = require.resolve(from).replace(/\.(c?js)$/, ".d.ts");
  const other = loadDeclarations(target);
  // Imports are exported under the name the file declares; look for the interface it exports.
  if (other.decls.has(shape.name)) return other.decls.get(shape.name);
  const exported = [...other.decls.entries()].find(([n]) => n.startsWith("I"));
  return exported ? exported[1] : { t: "any" };
}
function objectProps(shape, seen = new Set()) {
  // Merges an interface's own properties with those of the interfaces it extends.
  const props = new Map(shape.props);
  for (const b of shape.bases || []) {
    const base = resolveRef({ t: "ref", file: shape.__file, name: b });
    if (base && base.t === "obj" && !seen.has(base)) {
      seen.add(base);
      for (const [k, v] of objectProps(base, seen)) props.set(k, v);
    }
  }
  return props;
}
function concrete(shape) {
  let s = shape;
  for (let n = 0; s && s.t === "ref" && n < 20; n++) {
    const file = s.file;
    s = resolveRef(s);
    if (s && s.t === "obj" && !s.__file) s.__file = file;
  }
  return s;
}
// Returns the unknown-field paths of value under shape.
function unknownFields(value, shape, where) {
  shape = concrete(shape);
  if (!shape || shape.t === "any" || shape.t === "leaf" || value === null || typeof value !== "object") return [];
  if (shape.t === "union") {
    const objs = shape.of.map(concrete).filter((s) => s && (s.t === "obj" || s.t === "arr" || s.t === "any"));
    if (objs.length === 0) return [];
    let best = null;
    for (const s of objs) {
      const e = unknownFields(value, s, where);
      if (e.length === 0) return [];
      if (!best || e.length < best.length) best = e;
    }
    return best;
  }
  if (shape.t === "arr") {
    if (!Array.isArray(value)) return [];
    return value.flatMap((v, k) => unknownFields(v, shape.of, `${where}[${k}]`));
  }
  if (Array.isArray(value)) return [];
  const props = objectProps(shape);
  const out = [];
  for (const [k, v] of Object.entries(value)) {
    if (props.has(k)) out.push(...unknownFields(v, props.get(k), `${where}.${k}`));
    else if (shape.index) out.push(...unknownFields(v, shape.index, `${where}.${k}`));
    else out.push(`${where}.${k}`);
  }
  return out;
}

// ---- Loading -------------------------------------------------------------------------------
function readYamlDocs(file) {
  const text = fs.readFileSync(file, "utf8");
  const docs = YAML.parseAllDocuments(text, { uniqueKeys: true });
  const out = [];
  for (const d of docs) {
    if (d.errors.length) fail(file, d.errors.map((e) => e.message).join("; "));
    const js = d.toJS();
    if (js !== null && js !== undefined) out.push(js);
  }
  return out;
}
const kustomizationFile = path.join(k8sDir, "kustomization.yaml");
const [kustomization] = readYamlDocs(kustomizationFile);
const knownKustomizeKeys = new Set(["apiVersion", "kind", "namespace", "resources", "configMapGenerator", "images", "labels", "commonLabels", "commonAnnotations", "patches", "generatorOptions"]);
for (const k of Object.keys(kustomization || {})) {
  if (!knownKustomizeKeys.has(k)) fail(kustomizationFile, `unexpected key ${k}`);
}
const objects = []; // {file, obj}
for (const r of kustomization.resources || []) {
  const f = path.join(k8sDir, r);
  if (!fs.existsSync(f)) {
    fail(kustomizationFile, `resource ${r} does not exist`);
    continue;
  }
  for (const obj of readYamlDocs(f)) objects.push({ file: r, obj });
}
for (const g of kustomization.configMapGenerator || []) {
  const data = {};
  for (const f of g.files || []) {
    const full = path.join(k8sDir, f);
    if (!fs.existsSync(full)) {
      fail(kustomizationFile, `configMapGenerator file ${f} does not exist`);
      continue;
    }
    const text = fs.readFileSync(full, "utf8");
    if (f.endsWith(".json")) {
      try {
        JSON.parse(text);
      } catch (e) {
        fail(f, `invalid JSON: ${e.message}`);
      }
    }
    data[path.basename(f)] = text;
  }
  objects.push({
    file: "kustomization.yaml configMapGenerator",
    obj: { apiVersion: "v1", kind: "ConfigMap", metadata: { name: g.name, labels: g.options?.labels || {} }, data },
  });
}
// Every manifest in the tree must be part of the kustomization.
const listed = new Set((kustomization.resources || []).map((r) => path.normalize(r)));
(function walk(dir) {
  for (const e of fs.readdirSync(path.join(k8sDir, dir), { withFileTypes: true })) {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) walk(rel);
    else if (/\.ya?ml$/.test(e.name) && rel !== "kustomization.yaml" && !listed.has(path.normalize(rel))) {
      fail(rel, "not listed in kustomization.yaml resources");
    }
  }
})("");
if (renderedFile) {
  for (const obj of readYamlDocs(renderedFile)) objects.push({ file: `rendered:${path.basename(renderedFile)}`, obj });
}

// ---- PrometheusRule == rules file ------------------------------------------------------------
const [rules] = readYamlDocs(rulesFile);
if (args.includes("--write-prometheusrule")) {
  const pr = {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "PrometheusRule",
    metadata: { name: "lcio-server", labels: { "app.kubernetes.io/name": "lcio-server", "app.kubernetes.io/part-of": "lcio" } },
    spec: rules,
  };
  const header =
    "# GENERATED from deploy/prometheus/lcio-rules.yml (the one source of lcio's alerts) by\n" +
    "#   node tests/deploy/validate_k8s.mjs ... --write-prometheusrule\n" +
    "# CI fails when the two differ. Your Prometheus resource's ruleSelector must match these labels.\n";
  fs.writeFileSync(path.join(k8sDir, "monitoring/prometheusrule.yaml"), header + YAML.stringify(pr, { lineWidth: 100, minContentWidth: 40, blockQuote: "literal" }));
  console.log("wrote monitoring/prometheusrule.yaml");
  process.exit(0);
}
// Key order is not meaning (kustomize sorts keys).
const canon = (v) =>
  JSON.stringify(v, (_, x) => (x && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : x));
for (const { file, obj } of objects) {
  if (obj.kind === "PrometheusRule" && canon(obj.spec) !== canon(rules)) {
    fail(file, `PrometheusRule ${obj.metadata?.name} differs from ${rulesFile}; regenerate it with --write-prometheusrule`);
  }
}

// ---- Schema and strict-field validation ------------------------------------------------------
for (const { file, obj } of objects) {
  const where = `${file} ${obj.kind}/${obj.metadata?.name}`;
  const m = modelFor(obj.apiVersion, obj.kind);
  if (!m) {
    fail(where, `no schema for apiVersion ${obj.apiVersion} kind ${obj.kind}`);
    continue;
  }
  try {
    new m.Model(obj).validate();
  } catch (e) {
    const details = (e.errors || []).map((x) => `${x.instancePath || "/"} ${x.message}`).join("; ");
    fail(where, `schema: ${details || e.message}`);
  }
  const decl = loadDeclarations(m.dts);
  const iface = decl.decls.get(`I${obj.kind}`);
  if (!iface) {
    fail(where, `no declaration I${obj.kind} in ${m.dts}`);
    continue;
  }
  iface.__file = m.dts;
  for (const u of unknownFields(obj, iface, obj.kind)) fail(where, `unknown field ${u}`);
}

// ---- Wiring ------------------------------------------------------------------------------------
const byKind = (k) => objects.filter((o) => o.obj.kind === k && !o.file.startsWith("rendered:")).map((o) => o.obj);
const matches = (selector, labels) => Object.entries(selector || {}).every(([k, v]) => (labels || {})[k] === v);
const workloads = byKind("Deployment");
const podSpecs = [
  ...workloads.map((d) => ({ name: `Deployment/${d.metadata.name}`, spec: d.spec.template.spec, labels: d.spec.template.metadata.labels })),
  ...byKind("Job").map((j) => ({ name: `Job/${j.metadata.name}`, spec: j.spec.template.spec, labels: j.spec.template.metadata?.labels })),
  ...byKind("CronJob").map((c) => ({ name: `CronJob/${c.metadata.name}`, spec: c.spec.jobTemplate.spec.template.spec, labels: c.spec.jobTemplate.spec.template.metadata?.labels })),
];
const claims = new Set(byKind("PersistentVolumeClaim").map((p) => p.metadata.name));
const configMaps = new Set(byKind("ConfigMap").map((c) => c.metadata.name));
for (const d of workloads) {
  if (!matches(d.spec.selector.matchLabels, d.spec.template.metadata.labels)) fail(`Deployment/${d.metadata.name}`, "selector does not match its pod template labels");
}
for (const { name, spec } of podSpecs) {
  const volumes = new Map((spec.volumes || []).map((v) => [v.name, v]));
  for (const v of volumes.values()) {
    if (v.persistentVolumeClaim && !claims.has(v.persistentVolumeClaim.claimName)) fail(name, `volume ${v.name}: no PersistentVolumeClaim ${v.persistentVolumeClaim.claimName}`);
    if (v.configMap && !configMaps.has(v.configMap.name)) fail(name, `volume ${v.name}: no ConfigMap ${v.configMap.name}`);
  }
  for (const c of [...(spec.initContainers || []), ...spec.containers]) {
    for (const vm of c.volumeMounts || []) if (!volumes.has(vm.name)) fail(name, `container ${c.name} mounts undefined volume ${vm.name}`);
    if (spec.securityContext?.runAsNonRoot !== true && c.securityContext?.runAsNonRoot !== true) fail(name, `container ${c.name} may run as root`);
    if (c.securityContext?.readOnlyRootFilesystem && !(c.volumeMounts || []).some((vm) => vm.mountPath === "/tmp")) fail(name, `container ${c.name}: read-only root file system without a /tmp volume`);
  }
}
const entrypointFile = path.join(k8sDir, "..", "docker", "entrypoint-server.sh");
if (!fs.existsSync(entrypointFile)) fail(entrypointFile, "does not exist");
// Variables it expands ($X, ${X...}) or passes with add_flag; the header's list does not count.
const entrypointVars = new Set(
  fs.existsSync(entrypointFile)
    ? [...fs.readFileSync(entrypointFile, "utf8").matchAll(/(?:\$\{?|\badd_flag\s+)(LCIO_[A-Z0-9_]+)/g)].map((m) => m[1])
    : [],
);
for (const d of workloads) {
  const spec = d.spec.template.spec;
  const server = spec.containers.find((c) => c.name === "lcio-server");
  if (!server) continue;
  const where = `Deployment/${d.metadata.name}`;
  const env = Object.fromEntries((server.env || []).map((e) => [e.name, e.value]));
  const drain = Number(env.LCIO_DRAIN_TIMEOUT_S ?? 20);
  const shutdownGrace = Number(env.LCIO_SHUTDOWN_GRACE_MS ?? 0) / 1000;
  const preStop = server.lifecycle?.preStop?.exec?.command;
  const preStopSleep = preStop && preStop[0] === "sleep" ? Number(preStop[1]) : 0;
  const grace = spec.terminationGracePeriodSeconds ?? 30;
  // The server may take shutdown grace + drain + about 2 s (listener close, exit) after SIGTERM.
  if (!(grace > preStopSleep + shutdownGrace + drain + 2)) {
    fail(where, `terminationGracePeriodSeconds ${grace} must exceed preStop sleep ${preStopSleep} s + shutdown grace ${shutdownGrace} s + drain ${drain} s + 2 s`);
  }
  // The gRPC Service is headless and clients balance with round_robin: they re-resolve DNS only
  // when a connection closes, so without a connection age pods the HPA adds get no calls.
  if (!(Number(env.LCIO_MAX_CONNECTION_AGE_S ?? 0) > 0)) fail(where, "LCIO_MAX_CONNECTION_AGE_S is not set: clients would never reach pods added by a scale-out");
  // A variable the entrypoint does not read would be ignored without a word.
  for (const name of Object.keys(env).filter((n) => n.startsWith("LCIO_"))) {
    if (!entrypointVars.has(name)) fail(where, `env ${name} is not read by deploy/docker/entrypoint-server.sh`);
  }
  const grpcPort = (server.ports || []).find((p) => p.name === "grpc")?.containerPort;
  const listenPort = Number(String(env.LCIO_LISTEN || "0.0.0.0:50051").split(":").pop());
  if (grpcPort !== listenPort) fail(where, `grpc containerPort ${grpcPort} differs from LCIO_LISTEN port ${listenPort}`);
  const metricsPort = (server.ports || []).find((p) => p.name === "metrics")?.containerPort;
  const metricsListen = Number(String(env.LCIO_METRICS_LISTEN || "0.0.0.0:9464").split(":").pop());
  if (metricsPort !== metricsListen) fail(where, `metrics containerPort ${metricsPort} differs from LCIO_METRICS_LISTEN port ${metricsListen}`);
  for (const p of ["startupProbe", "readinessProbe", "livenessProbe"]) {
    const probe = server[p];
    if (!probe?.grpc) fail(where, `${p} must be a native gRPC probe`);
    else if (probe.grpc.port !== grpcPort) fail(where, `${p} checks port ${probe.grpc.port}, the server listens on ${grpcPort}`);
  }
  if (!spec.affinity?.podAntiAffinity) fail(where, "no podAntiAffinity");
  const policy = env.LCIO_POLICY || "";
  const mount = (server.volumeMounts || []).find((vm) => policy.startsWith(vm.mountPath + "/"));
  if (!mount) fail(where, `LCIO_POLICY ${policy} is not on a mounted volume`);
}
for (const s of byKind("Service")) {
  const where = `Service/${s.metadata.name}`;
  const pods = podSpecs.filter((p) => p.name.startsWith("Deployment/") && matches(s.spec.selector, p.labels));
  if (pods.length === 0) fail(where, "selector matches no Deployment's pods");
  for (const port of s.spec.ports || []) {
    for (const p of pods) {
      const names = p.spec.containers.flatMap((c) => c.ports || []).map((cp) => cp.name);
      if (typeof port.targetPort === "string" && !names.includes(port.targetPort)) fail(where, `targetPort ${port.targetPort} is not a container port of ${p.name}`);
    }
  }
}
for (const pdb of byKind("PodDisruptionBudget")) {
  if (!workloads.some((d) => matches(pdb.spec.selector.matchLabels, d.spec.template.metadata.labels))) fail(`PodDisruptionBudget/${pdb.metadata.name}`, "selects no Deployment's pods");
}
for (const hpa of byKind("HorizontalPodAutoscaler")) {
  const ref = hpa.spec.scaleTargetRef;
  const target = workloads.find((d) => ref.kind === "Deployment" && d.metadata.name === ref.name);
  if (!target) fail(`HorizontalPodAutoscaler/${hpa.metadata.name}`, `scaleTargetRef ${ref.kind}/${ref.name} does not exist`);
  else if (hpa.spec.metrics?.some((m) => m.type === "Resource") && !target.spec.template.spec.containers.every((c) => c.resources?.requests?.[hpa.spec.metrics[0].resource.name])) {
    fail(`HorizontalPodAutoscaler/${hpa.metadata.name}`, "utilization targets need resource requests on every container");
  }
}
for (const sm of byKind("ServiceMonitor")) {
  const where = `ServiceMonitor/${sm.metadata.name}`;
  const services = byKind("Service").filter((s) => matches(sm.spec.selector.matchLabels, s.metadata.labels));
  if (services.length === 0) fail(where, "selects no Service");
  for (const ep of sm.spec.endpoints) {
    for (const s of services) if (!(s.spec.ports || []).some((p) => p.name === ep.port)) fail(where, `Service/${s.metadata.name} has no port ${ep.port}`);
  }
  for (const s of services) {
    if (sm.spec.jobLabel && s.metadata.labels?.[sm.spec.jobLabel] !== "lcio-server") fail(where, `job label from ${sm.spec.jobLabel} of Service/${s.metadata.name} is not "lcio-server", which the alerts expect`);
  }
  for (const l of sm.spec.podTargetLabels || []) {
    for (const p of podSpecs.filter((p) => services.some((s) => matches(s.spec.selector, p.labels)))) {
      if (!(l in (p.labels || {}))) fail(where, `pods of ${p.name} have no label ${l}`);
    }
  }
}

const count = objects.length;
if (errors.length) {
  for (const e of errors) console.error(`ERROR ${e}`);
  console.error(`${errors.length} problems in ${count} objects`);
  process.exit(1);
}
console.log(`validated ${count} objects: schemas (Kubernetes 1.27, Prometheus Operator), strict fields, wiring`);
