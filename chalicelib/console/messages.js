// A queue's messages: peek a page (claimed and delayed ones on request), each body pretty-printed on
// demand, claims with their expiry; post a message (body, ttl, delay, attributes); delete one.

import {ApiError, queuePath} from "./api.js";
import {act, clear, compact, confirmDialog, dataTable, duration, field, h, jsonField, notice, numberField, pretty,
  shortId} from "./dom.js";
import {may, queueHeader} from "./queues.js";

const PAGE = 20;

function claimOf(href) {
  const found = /[?&]claim_id=([^&]+)/.exec(href || "");
  return found ? decodeURIComponent(found[1]) : null;
}

/** Claim id -> seconds until it expires (null when it could not be read: expired meanwhile, or not covered). */
async function claimExpiries(api, queue, messages) {
  const ids = [...new Set(messages.map((m) => claimOf(m.href)).filter(Boolean))];
  const found = new Map();
  await Promise.all(ids.map(async (id) => {
    try {
      const {data} = await api.get(queuePath(queue, "claims", id));
      found.set(id, data.ttl - data.age);
    } catch {
      found.set(id, null);
    }
  }));
  return found;
}

function attributesList(attributes) {
  if (!attributes || !Object.keys(attributes).length) return "—";
  return h("ul", {class: "attributes"}, Object.entries(attributes).map(([name, value]) =>
    h("li", {}, h("code", {}, name), " = ", compact(value, 60))));
}

function claimText(claim, expiries) {
  if (!claim) return "—";
  const left = expiries.get(claim);
  return h("span", {class: "claim", title: `claim ${claim}`},
    `${shortId(claim)} · ${left === null || left === undefined ? "expiry unknown" : `expires in ${duration(left)}`}`);
}

function postForm(context, queue, onPosted) {
  const body = h("textarea", {name: "body", rows: 4, spellcheck: false, required: true, placeholder: '{"order": 1}'});
  const ttl = h("input", {name: "ttl", type: "number", min: 60, inputMode: "numeric", placeholder: "queue default"});
  const delay = h("input", {name: "delay", type: "number", min: 0, inputMode: "numeric", placeholder: "0"});
  const attributes = h("textarea", {name: "attributes", rows: 2, spellcheck: false, placeholder: '{"color": "red", "size": 3}'});
  const submit = h("button", {type: "submit", class: "primary"}, "Post message");
  const form = h("form", {class: "card post", "aria-labelledby": "post-title"},
    h("h2", {id: "post-title"}, "Post a message"),
    field("Body (JSON)", body, 'Any JSON value: an object, an array, a number, or a "quoted string".'),
    h("div", {class: "row"}, field("TTL (s)", ttl), field("Delay (s)", delay)),
    field("Attributes (JSON object, optional)", attributes, "At most 10 names, each a string, number, boolean or array of strings."),
    h("div", {class: "actions"}, submit));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(submit, async () => {
      const typed = body.value;
      const message = {body: jsonField(typed, "The body")};
      if (message.body === undefined) throw new ApiError(0, "Invalid input", "The body is empty; give a JSON value.");
      const seconds = numberField(ttl.value, "TTL");
      if (seconds !== undefined) message.ttl = seconds;
      const wait = numberField(delay.value, "Delay");
      if (wait !== undefined) message.delay = wait;
      const named = jsonField(attributes.value, "The attributes", {object: true});
      if (named !== undefined) message.attributes = named;
      const {data} = await context.api.post(queuePath(queue, "messages"), {messages: [message]});
      const id = data.resources[0].split("/").pop();
      notice(`Posted message ${id} to ${queue}.`);
      if (body.value === typed) body.value = ""; // unless the next one is being typed already
      await onPosted();
    });
  });
  return form;
}

export function messagesView(context, queue) {
  const {api} = context;
  const header = queueHeader(context, queue, "messages");
  const markers = [null];
  const claimed = h("input", {type: "checkbox", name: "include_claimed"});
  const delayed = h("input", {type: "checkbox", name: "include_delayed"});
  const reload = h("button", {type: "button"}, "Refresh");
  const previous = h("button", {type: "button", hidden: true}, "Previous page");
  const next = h("button", {type: "button", hidden: true}, "Next page");
  const {table, body, row} = dataTable(`Messages of ${queue}`, ["Message", "Age", "Expires in", "Claim", "Attributes", "Body", "Actions"]);
  const empty = h("p", {class: "empty", hidden: true}, "No messages to show.");
  const status = h("p", {class: "hint"});

  async function load() {
    const {data} = await api.get(queuePath(queue, "messages"), {limit: PAGE, echo: true, marker: markers[markers.length - 1],
      include_claimed: claimed.checked || undefined, include_delayed: delayed.checked || undefined});
    const messages = data.messages || [];
    const expiries = await claimExpiries(api, queue, messages);
    clear(body);
    for (const message of messages) {
      const claim = claimOf(message.href);
      const pre = h("pre", {class: "body", hidden: true}, pretty(message.body));
      const toggle = h("button", {type: "button", class: "small", "aria-expanded": "false"}, "Show body");
      toggle.addEventListener("click", () => {
        pre.hidden = !pre.hidden;
        toggle.textContent = pre.hidden ? "Show body" : "Hide body";
        toggle.setAttribute("aria-expanded", String(!pre.hidden));
      });
      const remove = h("button", {type: "button", class: "small danger"}, "Delete");
      remove.addEventListener("click", () => act(remove, async () => {
        const ok = await confirmDialog({title: `Delete message ${shortId(message.id)}?`, danger: true, confirm: "Delete message",
          text: claim ? `It is claimed (${claim}); deleting it under that claim.` : `Message ${message.id} of ${queue} is deleted.`});
        if (!ok) return;
        await api.delete(message.href);
        notice(`Deleted message ${message.id}.`);
        await refresh();
      }));
      body.append(row([
        h("a", {href: `#/queues/${encodeURIComponent(queue)}/messages/${encodeURIComponent(message.id)}`, title: message.id}, shortId(message.id)),
        duration(message.age), duration(message.ttl - message.age), claimText(claim, expiries),
        attributesList(message.attributes),
        h("div", {}, h("code", {class: "preview"}, compact(message.body)), " ", toggle, pre),
        may(context, "DELETE", message.href) ? remove : "—",
      ], {"data-message": message.id}));
    }
    empty.hidden = messages.length > 0;
    const link = (data.links || []).find((l) => l.rel === "next");
    next.marker = link ? new URL(link.href, window.location.origin).searchParams.get("marker") : null;
    next.hidden = !next.marker || messages.length < PAGE;
    previous.hidden = markers.length < 2;
    status.textContent = `Showing ${messages.length} message${messages.length === 1 ? "" : "s"}, oldest first, as of ${new Date().toLocaleTimeString()}.`;
  }

  async function refresh() {
    await Promise.all([load(), context.refresh()]);
  }

  const guarded = () => act(reload, load);
  reload.addEventListener("click", guarded);
  claimed.addEventListener("change", () => { markers.splice(1); guarded(); });
  delayed.addEventListener("change", () => { markers.splice(1); guarded(); });
  next.addEventListener("click", () => { markers.push(next.marker); guarded(); });
  previous.addEventListener("click", () => { markers.pop(); guarded(); });
  guarded();

  const node = h("section", {class: "view"}, header.node,
    may(context, "POST", queuePath(queue, "messages")) ? postForm(context, queue, refresh) : null,
    h("section", {class: "card", "aria-labelledby": "peek-title"},
      h("h2", {id: "peek-title"}, "Messages"),
      h("div", {class: "toolbar"}, field("Include claimed", claimed), field("Include delayed", delayed), reload),
      status, h("div", {class: "table-wrap"}, table), empty, h("div", {class: "pager"}, previous, next)));
  return {node, title: `${queue} · messages`, poll: header.poll};
}

export function messageView(context, queue, id) {
  const {api} = context;
  const header = queueHeader(context, queue, "messages");
  const content = h("div", {class: "card"}, h("p", {}, "Loading…"));
  act(null, async () => {
    let data;
    try {
      ({data} = await api.get(queuePath(queue, "messages", id)));
    } catch (error) {
      content.replaceChildren(h("h2", {}, `Message ${id}`), h("p", {class: "error"}, h("strong", {}, error.title), " ", error.description));
      throw error;
    }
    const claim = claimOf(data.href);
    const expiries = await claimExpiries(api, queue, [data]);
    const remove = h("button", {type: "button", class: "danger"}, "Delete message");
    remove.addEventListener("click", () => act(remove, async () => {
      const ok = await confirmDialog({title: `Delete message ${shortId(id)}?`, danger: true, confirm: "Delete message",
        text: `Message ${id} of ${queue} is deleted.`});
      if (!ok) return;
      await api.delete(data.href);
      notice(`Deleted message ${id}.`);
      window.location.hash = `#/queues/${encodeURIComponent(queue)}/messages`;
    }));
    const facts = [["Id", data.id], ["Age", duration(data.age)], ["TTL", `${data.ttl} s`],
      ["Expires in", duration(data.ttl - data.age)], ["Claim", claimText(claim, expiries)]];
    content.replaceChildren(
      h("h2", {}, `Message ${data.id}`),
      h("dl", {class: "facts"}, facts.map(([term, value]) => [h("dt", {}, term), h("dd", {}, value)])),
      h("h3", {}, "Attributes"), attributesList(data.attributes),
      h("h3", {}, "Body"), h("pre", {class: "body"}, pretty(data.body)),
      may(context, "DELETE", data.href) ? h("div", {class: "actions"}, remove) : null);
  });
  const node = h("section", {class: "view"}, header.node,
    h("p", {}, h("a", {href: `#/queues/${encodeURIComponent(queue)}/messages`}, "← All messages")), content);
  return {node, title: `${queue} · message ${shortId(id)}`, poll: header.poll};
}
