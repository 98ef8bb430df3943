// Lints deploy/docker/Dockerfile*: dockerfile-utils' validator (syntax and instruction
// arguments, every problem it knows at warning level or above is a failure), then lcio's own
// rules, the usual Dockerfile best practices:
//  - base images come from an ARG with a Debian 12 (bookworm) default, never "latest";
//  - apt-get install runs with -y and --no-install-recommends, after apt-get update in the same
//    RUN, which also removes /var/lib/apt/lists;
//  - the images one builds (server, trainer) end as a non-root numeric USER, with an exec-form
//    ENTRYPOINT naming a script that exists in deploy/docker;
//  - COPY sources from the build context exist in the repository and are not excluded by the
//    Dockerfile's .dockerignore.
// Prints, for check_dockerfiles.sh, one line per stage: "packages <file> <stage> <pkg>...".
//   node check_dockerfiles.mjs --modules DIR SOURCE_DIR
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const args = process.argv.slice(2);
const modulesDir = args[args.indexOf("--modules") + 1];
const src = args[args.length - 1];
if (!modulesDir || !src || args.indexOf("--modules") < 0) {
  console.error("usage: check_dockerfiles.mjs --modules DIR SOURCE_DIR");
  process.exit(2);
}
const require = createRequire(path.resolve(modulesDir, "package.json"));
const utils = require("dockerfile-utils");
const { DockerfileParser } = require("dockerfile-ast");

const errors = [];
const dockerDir = path.join(src, "deploy/docker");
const files = fs.readdirSync(dockerDir).filter((f) => /^Dockerfile(\.[a-z0-9]+)?$/.test(f) && !f.endsWith(".dockerignore"));
if (!files.includes("Dockerfile")) errors.push("deploy/docker/Dockerfile is missing");
const finalStages = { Dockerfile: ["server", "trainer"], "Dockerfile.cuda": ["server"] };

for (const f of files) {
  const rel = `deploy/docker/${f}`;
  const content = fs.readFileSync(path.join(dockerDir, f), "utf8");
  const W = utils.ValidationSeverity.WARNING;
  const settings = {
    deprecatedMaintainer: W, directiveCasing: W, emptyContinuationLine: W, instructionCasing: W,
    instructionCmdMultiple: W, instructionEntrypointMultiple: W, instructionHealthcheckMultiple: W,
    instructionJSONInSingleQuotes: W, instructionWorkdirRelative: W,
  };
  for (const d of utils.validate(content, settings)) {
    errors.push(`${rel}:${d.range.start.line + 1}: dockerfile-utils: ${d.message}`);
  }

  const ignoreFile = path.join(dockerDir, `${f}.dockerignore`);
  const ignores = fs.existsSync(ignoreFile)
    ? fs.readFileSync(ignoreFile, "utf8").split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))
    : [];
  if (!ignores.length) errors.push(`${rel}: no ${f}.dockerignore beside it (the whole tree, builds included, would be sent)`);
  const ignored = (p) =>
    ignores.some((pat) => {
      const re = new RegExp(
        "^" + pat.replace(/\/$/, "").replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*\*\//g, "(.*/)?").replace(/\*/g, "[^/]*") + "(/.*)?$",
      );
      return re.test(p);
    });

  const df = DockerfileParser.parse(content);
  const argDefaults = {};
  let stage = null;
  const stages = new Map(); // name -> {user, entrypoint, packages}
  for (const ins of df.getInstructions()) {
    const kw = ins.getKeyword();
    const line = ins.getRange().start.line + 1;
    const text = (ins.getArgumentsContent() || "").replace(/\\\r?\n/g, " ").replace(/\s+/g, " ").trim();
    if (kw === "ARG" && stage === null) {
      const m = text.match(/^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/);
      if (m) argDefaults[m[1]] = m[2];
    } else if (kw === "FROM") {
      const m = text.match(/^(\S+)(?:\s+AS\s+(\S+))?$/i);
      let image = m[1];
      const name = m[2] || `#${stages.size}`;
      const inherited = stages.get(image);
      image = image.replace(/\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?/g, (_, v) => argDefaults[v] ?? "");
      if (!inherited) {
        if (!/^debian:(12|bookworm)([.-][\w.-]*)?(@sha256:[0-9a-f]{64})?$/.test(image)) {
          errors.push(`${rel}:${line}: base image ${image} is not a Debian 12 (bookworm) tag`);
        }
        if (m[1] === image) errors.push(`${rel}:${line}: base image ${image} is hard-coded; take it from an ARG so that it can be pinned to a digest`);
      }
      stage = name;
      stages.set(name, { user: inherited ? inherited.user : null, entrypoint: inherited ? inherited.entrypoint : null, packages: [] });
    } else if (kw === "USER") {
      stages.get(stage).user = text;
    } else if (kw === "ENTRYPOINT") {
      let ep;
      try {
        ep = JSON.parse(text);
      } catch {
        errors.push(`${rel}:${line}: ENTRYPOINT must be exec form (a JSON array) so that signals reach the server`);
        continue;
      }
      stages.get(stage).entrypoint = ep;
    } else if (kw === "RUN") {
      if (/apt-get install/.test(text)) {
        if (!/apt-get update/.test(text.split("apt-get install")[0])) errors.push(`${rel}:${line}: apt-get install without apt-get update earlier in the same RUN`);
        if (!/\s-y\b/.test(text)) errors.push(`${rel}:${line}: apt-get install without -y`);
        if (!/--no-install-recommends/.test(text)) errors.push(`${rel}:${line}: apt-get install without --no-install-recommends`);
        if (!/rm -rf \/var\/lib\/apt\/lists\/\*/.test(text)) errors.push(`${rel}:${line}: apt lists not removed in the same RUN`);
        const after = text.split(/apt-get install/)[1].split(/&&|;/)[0];
        const pkgs = after.split(/\s+/).filter((w) => w && !w.startsWith("-"));
        stages.get(stage).packages.push(...pkgs);
      }
      if (/\bcurl\b|\bwget\b/.test(text)) errors.push(`${rel}:${line}: downloads during the build; use Debian packages or a build context`);
    } else if (kw === "ADD") {
      errors.push(`${rel}:${line}: ADD; use COPY`);
    } else if (kw === "COPY") {
      // Flags (--from, --chown...) are not part of the arguments.
      if ((ins.getFlags?.() || []).some((fl) => fl.getName() === "from")) continue;
      const sources = text.split(" ").filter((w) => !w.startsWith("--")).slice(0, -1);
      for (const s of sources) {
        if (s === ".") continue;
        if (!fs.existsSync(path.join(src, s))) errors.push(`${rel}:${line}: COPY source ${s} does not exist in the repository`);
        else if (ignored(s)) errors.push(`${rel}:${line}: COPY source ${s} is excluded by ${f}.dockerignore`);
      }
    }
  }
  for (const name of finalStages[f] || []) {
    const s = stages.get(name);
    if (!s) {
      errors.push(`${rel}: no stage ${name}`);
      continue;
    }
    if (!s.user || !/^[1-9][0-9]*(:[1-9][0-9]*)?$/.test(s.user)) errors.push(`${rel}: stage ${name} must end as a numeric non-root USER (got ${s.user})`);
    if (!s.entrypoint) errors.push(`${rel}: stage ${name} has no ENTRYPOINT`);
    else {
      const script = s.entrypoint.find((a) => /entrypoint-.*\.sh$/.test(a));
      if (!script || !fs.existsSync(path.join(dockerDir, path.basename(script)))) errors.push(`${rel}: stage ${name} ENTRYPOINT ${JSON.stringify(s.entrypoint)} names no script of deploy/docker`);
    }
  }
  for (const [name, s] of stages) {
    if (s.packages.length) console.log(`packages ${f} ${name} ${s.packages.join(" ")}`);
  }
}
if (errors.length) {
  for (const e of errors) console.error(`ERROR ${e}`);
  process.exit(1);
}
console.error(`check_dockerfiles: ${files.join(", ")}: dockerfile-utils and lcio's rules pass`);
