// Failed deliveries: the project's failed-notifications queue as a table (one message per delivery that
// failed for good), and the dead-letter queues with their redrive action.

import {ApiError, queuePath} from "./api.js";
import {act, confirmDialog, dataTable, duration, h, notice, shortId} from "./dom.js";
import {FAILED_QUEUE, deadLetterTargets, listQueues, redrive, stats} from "./queues.js";

const PAGE = 20;
const MAX_QUEUE_PAGES = 5;

function messageLink(record) {
  if (!record.message_id) return "—";
  if (!record.queue) return h("code", {title: record.message_id}, shortId(record.message_id)); // a topic's: no page here
  return h("a", {href: `#/queues/${encodeURIComponent(record.queue)}/messages/${encodeURIComponent(record.message_id)}`,
    title: record.message_id}, shortId(record.message_id));
}

function source(record) {
  if (record.queue) return h("a", {href: `#/queues/${encodeURIComponent(record.queue)}/subscriptions`}, record.queue);
  return record.topic ? `topic ${record.topic}` : "—";
}

export function failedView(context) {
  const {api} = context;
  const signed = context.credentials.mode === "signed";
  const failures = dataTable("Deliveries that failed for good, newest last",
    ["When", "Subscriber", "Queue", "Message", "Kind", "Attempts", "Last error", "Actions"]);
  const letters = dataTable("Dead-letter queues", ["Dead-letter queue", "Dead letters of", "Messages", "Actions"]);
  const noFailures = h("p", {class: "empty", hidden: true}, "No failed deliveries. Deliveries that fail for good, after their retries, show here.");
  const noLetters = h("p", {class: "empty", hidden: true}, "No queue has a _dead_letter_queue (set one in a queue's metadata).");
  const more = h("button", {type: "button", hidden: true}, "Next page");
  const first = h("button", {type: "button", hidden: true}, "First page");
  let marker = null;
  let shown = "";
  const ages = new Map();
  const letterRows = new Map();

  async function loadFailures() {
    let data;
    try {
      ({data} = await api.get(queuePath(FAILED_QUEUE, "messages"), {limit: PAGE, echo: true, include_claimed: true, marker}));
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) data = {messages: [], links: []}; // not covered by a grant
      else throw error;
    }
    const records = data.messages || [];
    const key = records.map((m) => m.id).join(",");
    if (key !== shown) { // rebuilt only when the records change, so focus and reading position stay
      shown = key;
      ages.clear();
      failures.body.replaceChildren(...records.map((message) => {
        const record = message.body && typeof message.body === "object" ? message.body : {error: String(message.body)};
        const dismiss = h("button", {type: "button", class: "small"}, "Dismiss");
        dismiss.addEventListener("click", () => act(dismiss, async () => {
          const ok = await confirmDialog({title: "Dismiss this failed delivery?", confirm: "Dismiss", danger: true,
            text: `The record of the delivery to ${record.subscriber || "?"} is deleted from ${FAILED_QUEUE}.`});
          if (!ok) return;
          await api.delete(message.href);
          notice("Dismissed the failed delivery.");
          await context.refresh();
        }));
        const when = h("span");
        ages.set(message.id, when);
        return failures.row([
          when,
          h("span", {class: "subscriber"}, record.subscriber || "—"),
          source(record), messageLink(record), record.kind || "—",
          String(record.attempts ?? "—"),
          h("span", {class: "error-text"}, record.error || "—"),
          dismiss,
        ], {"data-failure": message.id, "data-message-id": record.message_id || ""});
      }));
    }
    for (const message of records) {
      const when = ages.get(message.id);
      when.textContent = `${duration(message.age)} ago`;
      when.title = `${message.age} s ago`;
    }
    noFailures.hidden = records.length > 0;
    const link = (data.links || []).find((l) => l.rel === "next");
    more.marker = link && records.length === PAGE ? new URL(link.href, window.location.origin).searchParams.get("marker") : null;
    more.hidden = !more.marker;
    first.hidden = !marker;
  }

  async function loadLetters() {
    if (signed) return;
    const queues = [];
    let page = null;
    for (let i = 0; i < MAX_QUEUE_PAGES; i += 1) {
      const found = await listQueues(api, page);
      queues.push(...found.queues);
      if (!found.next) break;
      page = found.next;
    }
    const targets = deadLetterTargets(queues);
    const entries = await Promise.all([...targets.keys()].sort().map(async (dlq) => [dlq, await stats(api, dlq)]));
    entries.forEach(([dlq, counts], index) => {
      let row = letterRows.get(dlq);
      if (!row) {
        const button = h("button", {type: "button", class: "small"}, "Redrive");
        button.addEventListener("click", () => act(button, () => redrive(context, dlq, row.sources)));
        row = {sources: [], from: h("span"), total: h("span")};
        row.tr = letters.row([h("a", {href: `#/queues/${encodeURIComponent(dlq)}/messages`}, dlq), row.from, row.total, button],
          {"data-dlq": dlq});
        letterRows.set(dlq, row);
      }
      row.sources = targets.get(dlq);
      row.from.textContent = row.sources.join(", ");
      row.total.textContent = String(counts.total);
      if (letters.body.children[index] !== row.tr) letters.body.insertBefore(row.tr, letters.body.children[index] || null);
    });
    for (const [dlq, row] of letterRows) {
      if (!targets.has(dlq)) {
        row.tr.remove();
        letterRows.delete(dlq);
      }
    }
    noLetters.hidden = entries.length > 0;
  }

  async function poll() {
    await Promise.all([loadFailures(), loadLetters()]);
  }

  more.addEventListener("click", () => { marker = more.marker; context.refresh(); });
  first.addEventListener("click", () => { marker = null; context.refresh(); });
  const node = h("section", {class: "view"},
    h("h1", {tabIndex: -1}, "Failed deliveries"),
    h("p", {class: "hint"}, `Each delivery that failed for good, after its retries, is a message of the ${FAILED_QUEUE} queue, kept for its ttl.`),
    h("section", {class: "card", "aria-labelledby": "failures-title"}, h("h2", {id: "failures-title"}, "Failed notifications"),
      h("div", {class: "table-wrap"}, failures.table), noFailures, h("div", {class: "pager"}, first, more)),
    signed ? null : h("section", {class: "card", "aria-labelledby": "dlq-title"}, h("h2", {id: "dlq-title"}, "Dead-letter queues"),
      h("p", {class: "hint"}, "Messages claimed more than a queue's _max_claim_count times move to its _dead_letter_queue; redrive moves them back."),
      h("div", {class: "table-wrap"}, letters.table), noLetters));
  return {node, title: "Failed deliveries", poll, every: 5000};
}
