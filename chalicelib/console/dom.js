// Building the page: elements from data (never HTML from data), formats, the error and notice banners,
// confirmation dialogs and sparklines.

import {ApiError} from "./api.js";

const SVG = "http://www.w3.org/2000/svg";
const PROPERTIES = new Set(["value", "checked", "disabled", "hidden", "href", "type", "name", "id", "htmlFor",
  "placeholder", "required", "min", "max", "step", "rows", "title", "tabIndex", "autocomplete", "spellcheck",
  "colSpan", "selected", "readOnly", "inputMode"]);

/** h("button", {class: "danger", onclick: f, "aria-label": "..."}, "Delete") */
export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (PROPERTIES.has(key)) node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

// -- formats ----------------------------------------------------------------------------------

/** Seconds as a short duration: "42 s", "5 min", "3 h", "2 d". */
export function duration(seconds) {
  if (seconds === undefined || seconds === null || Number.isNaN(Number(seconds))) return "—";
  const s = Math.max(0, Math.round(Number(seconds)));
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86400)} d`;
}

export function shortId(id) {
  const text = String(id || "");
  return text.length > 12 ? `${text.slice(0, 8)}…` : text;
}

export function compact(value, max = 80) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text === undefined ? "" : text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function pretty(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

/** A form field: label, control and an optional hint, the hint tied to the control for screen readers. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 10)}`;
  control.id = id;
  const parts = [h("label", {htmlFor: id}, label), control];
  if (hint) {
    const hintId = `${id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("small", {id: hintId, class: "hint"}, hint));
  }
  return h("div", {class: control.type === "checkbox" ? "field check" : "field"}, ...parts);
}

/** Parses a JSON text field: undefined when empty, an ApiError (shown like the API's) when it is not JSON. */
export function jsonField(text, what, {object = false} = {}) {
  if (!text.trim()) return undefined;
  let value;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ApiError(0, "Invalid input", `${what} is not JSON (${error.message}).`);
  }
  if (object && (value === null || typeof value !== "object" || Array.isArray(value))) {
    throw new ApiError(0, "Invalid input", `${what} must be a JSON object.`);
  }
  return value;
}

export function numberField(text, what) {
  if (String(text).trim() === "") return undefined;
  const value = Number(text);
  if (!Number.isInteger(value)) throw new ApiError(0, "Invalid input", `${what} must be a whole number.`);
  return value;
}

// -- banners ----------------------------------------------------------------------------------

/** Shows an error as its title and description (the API's, or the console's own in the same shape). */
export function showError(error) {
  const box = document.getElementById("alert");
  const title = error instanceof ApiError ? error.title : "Error";
  const description = error instanceof ApiError ? error.description : String(error && error.message || error);
  document.getElementById("alert-title").textContent = title;
  document.getElementById("alert-description").textContent = description;
  box.hidden = false;
}

export function hideError() {
  document.getElementById("alert").hidden = true;
}

let noticeTimer = null;

export function notice(text) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.hidden = true; }, 8000);
}

/** Runs an action of a button: errors shown, the button disabled meanwhile (no double submits). */
export async function act(button, action) {
  const focused = Boolean(button) && document.activeElement === button;
  if (button) button.disabled = true;
  try {
    hideError();
    return await action();
  } catch (error) {
    showError(error);
    return undefined;
  } finally {
    if (button) button.disabled = false;
    // a disabled button loses the focus (and a dialog cannot give it back): return it, or to the page's heading
    // when the button went with what it acted on, so keyboard users keep their place
    const lost = !document.activeElement || document.activeElement === document.body;
    if (focused && lost) (button.isConnected ? button : document.querySelector("main h1"))?.focus();
  }
}

// -- dialogs ----------------------------------------------------------------------------------

/**
 * A modal confirmation: resolves the values of its fields ({} when it has none) on confirm, null on cancel.
 * fields: [{name, label, type, value, placeholder, hint}] (type "checkbox" gives a boolean).
 */
export function confirmDialog({title, text, confirm = "Confirm", danger = false, fields = []}) {
  return new Promise((resolve) => {
    const inputs = fields.map((spec) => h("input", {name: spec.name, type: spec.type || "text", value: spec.value ?? "",
      checked: spec.type === "checkbox" && Boolean(spec.value), placeholder: spec.placeholder, min: spec.min,
      inputMode: spec.type === "number" ? "numeric" : undefined}));
    const ok = h("button", {type: "submit", class: danger ? "danger" : "primary"}, confirm);
    const cancel = h("button", {type: "button"}, "Cancel");
    const form = h("form", {class: "dialog-form"},
      h("h2", {id: "dialog-title"}, title),
      text ? h("p", {}, text) : null,
      fields.map((spec, i) => field(spec.label, inputs[i], spec.hint)),
      h("div", {class: "actions"}, ok, cancel));
    const dialog = h("dialog", {"aria-labelledby": "dialog-title"}, form);
    let answer = null;
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      answer = Object.fromEntries(fields.map((spec, i) => [spec.name,
        spec.type === "checkbox" ? inputs[i].checked : inputs[i].value]));
      dialog.close();
    });
    cancel.addEventListener("click", () => dialog.close());
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(answer);
    });
    document.body.append(dialog);
    dialog.showModal();
    (inputs[0] || (danger ? cancel : ok)).focus();
  });
}

// -- sparklines -------------------------------------------------------------------------------

/** A small line of values over time (oldest first), labelled for screen readers. */
export function sparkline(values, label) {
  const width = 96;
  const height = 24;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("width", String(width));
  svg.setAttribute("height", String(height));
  svg.setAttribute("class", "spark");
  svg.setAttribute("role", "img");
  const low = values.length ? Math.min(...values) : 0;
  const high = values.length ? Math.max(...values) : 0;
  svg.setAttribute("aria-label", values.length
    ? `${label}: ${values.length} samples, from ${low} to ${high}, now ${values[values.length - 1]}` : `${label}: no samples yet`);
  if (values.length) {
    const span = Math.max(1, high - low);
    const step = values.length > 1 ? width / (values.length - 1) : 0;
    const y = (v) => (high === low ? height / 2 : height - 2 - ((v - low) / span) * (height - 4)); // flat: mid-height
    const points = values.map((v, i) => `${(i * step).toFixed(1)},${y(v).toFixed(1)}`);
    if (values.length === 1) points.push(`${width},${points[0].split(",")[1]}`);
    const line = document.createElementNS(SVG, "polyline");
    line.setAttribute("points", points.join(" "));
    svg.append(line);
  }
  return svg;
}

/** Depth samples of this browser session, per queue (kept in sessionStorage, so a reload keeps them). */
export class History {
  constructor(key = "zaqar-console-depths", size = 60) {
    this.key = key;
    this.size = size;
    try {
      this.data = JSON.parse(sessionStorage.getItem(key) || "{}") || {};
    } catch {
      this.data = {};
    }
  }

  record(queue, total) {
    const list = this.data[queue] || (this.data[queue] = []);
    list.push(total);
    if (list.length > this.size) list.splice(0, list.length - this.size);
    sessionStorage.setItem(this.key, JSON.stringify(this.data));
  }

  of(queue) {
    return this.data[queue] || [];
  }
}

/** A table whose cells carry their column's name (the narrow layout shows it beside each value). */
export function dataTable(caption, columns) {
  const body = h("tbody");
  const table = h("table", {class: "data"},
    h("caption", {class: "visually-hidden"}, caption),
    h("thead", {}, h("tr", {}, columns.map((name) => h("th", {scope: "col"}, name)))),
    body);
  const row = (cells, props = {}) => h("tr", props, cells.map((cell, i) => h("td", {"data-label": columns[i]}, cell)));
  return {table, body, row};
}
