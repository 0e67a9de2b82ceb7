// A queue's metadata: the reserved settings as a form, other keys as JSON, saved as one JSON patch.

import {ApiError, queuePath} from "./api.js";
import {act, field, h, jsonField, notice, numberField, pretty} from "./dom.js";
import {listQueues, may, queueHeader} from "./queues.js";

/** The reserved keys the form edits: [key, label, kind, hint]. _flavor is shown, not edited (it cannot change). */
const RESERVED = [
  ["_default_message_ttl", "Default message TTL (s)", "int", "Of messages posted without a ttl."],
  ["_default_message_delay", "Default delay (s)", "int", "Of messages posted without a delay."],
  ["_max_messages_post_size", "Largest post (bytes)", "int", ""],
  ["_max_claim_count", "Claims before dead-lettering", "int", "Empty: messages are never dead-lettered."],
  ["_dead_letter_queue", "Dead-letter queue", "text", "Where a message claimed that many times goes."],
  ["_dead_letter_queue_messages_ttl", "Dead letters' TTL (s)", "int", "Empty: they keep their own."],
  ["_enable_encrypt_messages", "Encrypt messages", "bool", "Needs MESSAGE_ENCRYPTION_KEY on the service."],
  ["_retry_policy", "Retry policy (JSON)", "json", "For its subscriptions' failed deliveries, as Zaqar's _retry_policy."],
];
const KEYS = new Set([...RESERVED.map(([key]) => key), "_flavor"]);

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The JSON patch from the metadata as read to the metadata wanted (a reserved key emptied is removed). */
export function patchOf(before, after) {
  const ops = [];
  const pointer = (key) => `/metadata/${key.replace(/~/g, "~0").replace(/\//g, "~1")}`;
  for (const key of Object.keys(before)) {
    if (!(key in after) && key !== "_flavor" && !(key.startsWith("_") && before[key] === null)) ops.push({op: "remove", path: pointer(key)});
  }
  for (const [key, value] of Object.entries(after)) {
    if (!same(before[key], value)) ops.push({op: "add", path: pointer(key), value});
  }
  return ops;
}

export function metadataView(context, queue) {
  const {api} = context;
  const header = queueHeader(context, queue, "metadata");
  const controls = new Map();
  const names = h("datalist", {id: "queue-names"});
  for (const [key, , kind] of RESERVED) {
    let control;
    if (kind === "bool") control = h("input", {type: "checkbox", name: key});
    else if (kind === "json") control = h("textarea", {name: key, rows: 3, spellcheck: false});
    else control = h("input", {name: key, type: kind === "int" ? "number" : "text", inputMode: kind === "int" ? "numeric" : undefined,
      autocomplete: "off", spellcheck: false, list: key === "_dead_letter_queue" ? "queue-names" : undefined});
    controls.set(key, control);
  }
  const flavor = h("input", {name: "_flavor", readOnly: true});
  const others = h("textarea", {name: "other", rows: 5, spellcheck: false});
  const raw = h("pre", {class: "body"});
  const save = h("button", {type: "submit", class: "primary"}, "Save metadata");
  let current = null;

  function show(metadata) {
    current = metadata;
    for (const [key, , kind] of RESERVED) {
      const control = controls.get(key);
      const value = metadata[key];
      if (kind === "bool") control.checked = Boolean(value);
      else if (kind === "json") control.value = value === undefined || value === null ? "" : pretty(value);
      else control.value = value === undefined || value === null ? "" : String(value);
    }
    flavor.value = metadata._flavor || "";
    const rest = Object.fromEntries(Object.entries(metadata).filter(([key]) => !KEYS.has(key)));
    others.value = Object.keys(rest).length ? pretty(rest) : "";
    raw.textContent = pretty(metadata);
  }

  function wanted() {
    const result = {};
    for (const [key, label, kind] of RESERVED) {
      const control = controls.get(key);
      let value;
      if (kind === "bool") value = control.checked;
      else if (kind === "int") value = numberField(control.value, label);
      else if (kind === "json") value = jsonField(control.value, label, {object: true});
      else value = control.value.trim() || undefined;
      if (value !== undefined) result[key] = value;
    }
    if (current._flavor) result._flavor = current._flavor;
    Object.assign(result, jsonField(others.value, "Other metadata", {object: true}) || {});
    return result;
  }

  const form = h("form", {class: "card metadata", "aria-labelledby": "meta-title"},
    h("h2", {id: "meta-title"}, "Reserved settings"),
    h("div", {class: "grid"}, RESERVED.map(([key, label, , hint]) => field(label, controls.get(key), hint || undefined)),
      field("Flavor", flavor, "Set when the queue is created; it cannot change.")),
    h("h2", {}, "Other metadata"),
    field("Keys not starting with _ (JSON object)", others),
    h("div", {class: "actions"}, may(context, "PATCH", queuePath(queue)) ? save : null),
    h("details", {}, h("summary", {}, "All metadata as JSON"), raw), names);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(save, async () => {
      if (!current) throw new ApiError(0, "Not loaded", "The metadata has not been read yet.");
      const ops = patchOf(current, wanted());
      if (!ops.length) {
        notice("Nothing to save: the metadata is unchanged.");
        return;
      }
      const {data} = await api.patch(queuePath(queue), ops);
      show(data);
      notice(`Saved the metadata of ${queue} (${ops.length} change${ops.length === 1 ? "" : "s"}).`);
    });
  });

  act(null, async () => {
    const {data} = await api.get(queuePath(queue));
    show(data);
    if (context.credentials.mode !== "signed") {
      const {queues} = await listQueues(api, null);
      names.replaceChildren(...queues.filter((q) => q.name !== queue).map((q) => h("option", {value: q.name})));
    }
  });
  const node = h("section", {class: "view"}, header.node, form);
  return {node, title: `${queue} · metadata`, poll: header.poll};
}
