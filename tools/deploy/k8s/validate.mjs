// Validates Kubernetes objects against the OpenAPI schemas shipped by npm's kubernetes-models (and
// @kubernetes-models/prometheus-operator for PodMonitor/ServiceMonitor). Input: a JSON array of objects
// on stdin. Output: one line per object, "ok <kind>/<name>" or "invalid <kind>/<name>: <why>", and
// "unknown <kind>/<name>" when no model exists for its apiVersion/kind. Exit 1 if any is not ok.
import { readFileSync } from "node:fs";

const objects = JSON.parse(readFileSync(0, "utf8"));
let bad = 0;
for (const o of objects) {
  const id = `${o.kind}/${o.metadata?.name}`;
  const [group, version] = o.apiVersion.includes("/") ? o.apiVersion.split("/") : ["", o.apiVersion];
  const candidates = group === "monitoring.coreos.com"
    ? [`@kubernetes-models/prometheus-operator/${group}/${version}/${o.kind}`]
    : [group ? `kubernetes-models/${group}/${version}/${o.kind}` : `kubernetes-models/${version}/${o.kind}`];
  let Model = null;
  for (const c of candidates) {
    try {
      const mod = await import(c);
      Model = mod[o.kind] ?? mod.default;
      if (Model) break;
    } catch {
      /* next */
    }
  }
  if (!Model) {
    console.log(`unknown ${id} (${o.apiVersion})`);
    bad++;
    continue;
  }
  try {
    new Model(o).validate();
    console.log(`ok ${id}`);
  } catch (e) {
    console.log(`invalid ${id}: ${String(e.message).replace(/\s+/g, " ").slice(0, 500)}`);
    bad++;
  }
}
process.exit(bad ? 1 : 0);
