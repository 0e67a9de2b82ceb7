// A queue's subscriptions: list (with confirmation state), create a webhook or mailto subscriber,
// show a subscription's signing secret on demand, delete.

import {ApiError, queuePath} from "./api.js";
import {act, clear, compact, confirmDialog, dataTable, duration, field, h, jsonField, notice, numberField,
  shortId} from "./dom.js";
import {may, queueHeader} from "./queues.js";

function createForm(context, queue, onCreated) {
  const kind = h("select", {name: "kind"}, h("option", {value: "webhook"}, "Webhook (http, https)"),
    h("option", {value: "mailto"}, "Email (mailto)"));
  const address = h("input", {name: "subscriber", required: true, autocomplete: "off", spellcheck: false,
    placeholder: "https://example.com/hook"});
  const ttl = h("input", {name: "ttl", type: "number", min: 60, inputMode: "numeric", placeholder: "3600"});
  const options = h("textarea", {name: "options", rows: 2, spellcheck: false, placeholder: '{"include_message_id": true}'});
  kind.addEventListener("change", () => {
    address.placeholder = kind.value === "mailto" ? "ops@example.com" : "https://example.com/hook";
  });
  const submit = h("button", {type: "submit", class: "primary"}, "Subscribe");
  const form = h("form", {class: "card", "aria-labelledby": "subscribe-title"},
    h("h2", {id: "subscribe-title"}, "New subscription"),
    h("div", {class: "row"}, field("Kind", kind), field("Subscriber", address)),
    h("div", {class: "row"}, field("TTL (s)", ttl),
      field("Options (JSON object, optional)", options, "post_headers, post_data, filter_policy, _retry_policy, include_message_id…")),
    h("p", {class: "hint"}, "Websocket subscriptions belong to a websocket connection: make them over the websocket API."),
    h("div", {class: "actions"}, submit));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(submit, async () => {
      const typed = address.value.trim();
      let subscriber = typed;
      if (!subscriber) throw new ApiError(0, "Invalid input", "Give the subscriber's address.");
      if (kind.value === "mailto" && !subscriber.startsWith("mailto:")) subscriber = `mailto:${subscriber}`;
      const body = {subscriber};
      const seconds = numberField(ttl.value, "TTL");
      if (seconds !== undefined) body.ttl = seconds;
      const chosen = jsonField(options.value, "The options", {object: true});
      if (chosen !== undefined) body.options = chosen;
      const {data} = await context.api.post(queuePath(queue, "subscriptions"), body);
      notice(`Subscribed ${subscriber} to ${queue} (subscription ${data.subscription_id}).`);
      if (address.value.trim() === typed) address.value = ""; // unless the next one is being typed already
      await onCreated();
    });
  });
  return form;
}

export function subscriptionsView(context, queue) {
  const {api} = context;
  const header = queueHeader(context, queue, "subscriptions");
  const {table, body, row} = dataTable(`Subscriptions of ${queue}`, ["Subscriber", "Expires in", "Confirmed", "Options", "Signing secret", "Actions"]);
  const empty = h("p", {class: "empty", hidden: true}, "No subscriptions.");
  const reload = h("button", {type: "button"}, "Refresh");
  const more = h("button", {type: "button", hidden: true}, "More");
  let marker = null;

  function secretCell(subscription) {
    const reveal = h("button", {type: "button", class: "small"}, "Show secret");
    const cell = h("span", {class: "secret"}, reveal);
    reveal.addEventListener("click", () => act(reveal, async () => {
      const {data} = await api.get(queuePath(queue, "subscriptions", subscription.id));
      cell.replaceChildren(data.signing_secret ? h("code", {}, data.signing_secret)
        : h("span", {class: "hint"}, "none (the service has no SIGNING_KEY)"));
    }));
    return cell;
  }

  function confirmation(subscription) {
    if (subscription.confirmed) return h("span", {class: "badge ok"}, "confirmed");
    const scheme = String(subscription.subscriber).split(":")[0];
    return h("span", {class: "badge warn", title: "Deliveries wait for confirmation where the service requires it"},
      scheme === "http" || scheme === "https" || scheme === "mailto" ? "not confirmed" : "n/a");
  }

  async function load(append = false) {
    const {data} = await api.get(queuePath(queue, "subscriptions"), {limit: 20, marker: append ? marker : undefined});
    if (!append) clear(body);
    for (const subscription of data.subscriptions || []) {
      const remove = h("button", {type: "button", class: "small danger"}, "Delete");
      remove.addEventListener("click", () => act(remove, async () => {
        const ok = await confirmDialog({title: `Delete subscription ${shortId(subscription.id)}?`, danger: true,
          confirm: "Delete subscription", text: `${subscription.subscriber} stops receiving the messages of ${queue}.`});
        if (!ok) return;
        await api.delete(queuePath(queue, "subscriptions", subscription.id));
        notice(`Deleted subscription ${subscription.id}.`);
        await load();
      }));
      body.append(row([
        h("span", {class: "subscriber", title: `subscription ${subscription.id}`}, subscription.subscriber),
        duration(subscription.ttl - subscription.age), confirmation(subscription),
        h("code", {class: "preview"}, compact(subscription.options || {}, 120)),
        may(context, "GET", queuePath(queue, "subscriptions", subscription.id)) ? secretCell(subscription) : "—",
        may(context, "DELETE", queuePath(queue, "subscriptions", subscription.id)) ? remove : "—",
      ], {"data-subscription": subscription.id}));
    }
    empty.hidden = body.children.length > 0;
    const link = (data.links || []).find((l) => l.rel === "next");
    marker = link && (data.subscriptions || []).length === 20 ? new URL(link.href, window.location.origin).searchParams.get("marker") : null;
    more.hidden = !marker;
  }

  reload.addEventListener("click", () => act(reload, () => load()));
  more.addEventListener("click", () => act(more, () => load(true)));
  act(null, () => load());
  const node = h("section", {class: "view"}, header.node,
    may(context, "POST", queuePath(queue, "subscriptions")) ? createForm(context, queue, () => load()) : null,
    h("section", {class: "card", "aria-labelledby": "subs-title"},
      h("h2", {id: "subs-title"}, "Subscriptions"), h("div", {class: "toolbar"}, reload),
      h("div", {class: "table-wrap"}, table), empty, h("div", {class: "pager"}, more)));
  return {node, title: `${queue} · subscriptions`, poll: header.poll};
}
