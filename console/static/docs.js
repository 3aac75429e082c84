// teleicu API page: the hub's OpenAPI document as a readable list of routes (no third-party viewer, nothing fetched
// from elsewhere). For each route: method, path, summary and description, parameters and the request body's fields.

const root = document.getElementById("routes");

function h(tag, cls, text) {
  const n = document.createElement(tag);
  if (cls) n.className = cls;
  if (text !== undefined) n.textContent = text;
  return n;
}

function schemaOf(doc, schema) {
  const ref = schema && schema.$ref;
  return ref ? doc.components.schemas[ref.split("/").pop()] : schema;
}

function typeText(doc, schema) {
  const s = schemaOf(doc, schema) || {};
  if (s.anyOf) return s.anyOf.map((x) => typeText(doc, x)).join(" | ");
  if (s.enum) return s.enum.map((x) => JSON.stringify(x)).join(" | ");
  if (s.type === "array") return `array of ${typeText(doc, s.items)}`;
  return s.type || s.title || "object";
}

function render(doc) {
  root.textContent = "";
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) ops.push({ path, method: method.toUpperCase(), op });
  }
  ops.sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method));
  for (const { path, method, op } of ops) {
    const section = h("section", "route");
    const title = h("h2", "route-title");
    title.append(h("span", "route-method", method), " ", h("code", "route-path", path));
    section.append(title);
    if (op.summary) section.append(h("p", "route-summary", op.summary));
    if (op.description) section.append(h("p", "route-description", op.description));
    const params = op.parameters || [];
    const body = op.requestBody && schemaOf(doc, op.requestBody.content["application/json"]?.schema);
    if (params.length || (body && body.properties)) {
      const table = h("table", "route-params");
      const head = h("tr");
      for (const c of ["name", "in", "type", "required", "meaning"]) head.append(h("th", "", c));
      table.append(head);
      for (const p of params) {
        const tr = h("tr");
        for (const c of [p.name, p.in, typeText(doc, p.schema), p.required ? "yes" : "no", p.description || p.schema?.description || ""]) tr.append(h("td", "", c));
        table.append(tr);
      }
      for (const [name, s] of Object.entries((body && body.properties) || {})) {
        const tr = h("tr");
        for (const c of [name, "body", typeText(doc, s), (body.required || []).includes(name) ? "yes" : "no", s.description || ""]) tr.append(h("td", "", c));
        table.append(tr);
      }
      section.append(table);
    }
    root.append(section);
  }
}

try {
  const res = await fetch("/openapi.json");
  render(await res.json());
} catch {
  root.textContent = "The OpenAPI document could not be loaded.";
}
