// The queues page (a live table with a depth sparkline per queue; create, purge, delete, redrive) and
// the header every page of one queue shares (its live counts and tabs).

import {ApiError, queuePath, signedAllows, signedQueues} from "./api.js";
import {act, clear, confirmDialog, duration, h, notice, numberField, sparkline} from "./dom.js";

export const FAILED_QUEUE = "failed-notifications";
const PAGE = 20;

/** One page of queues with their metadata; next is the marker of the following page, or null. */
export async function listQueues(api, marker) {
  const {data} = await api.get("v2/queues", {limit: PAGE, detailed: true, marker});
  const next = (data.links || []).find((link) => link.rel === "next");
  const queues = data.queues || [];
  const more = next && queues.length === PAGE; // Zaqar links a next page even after the last one
  return {queues, next: more ? new URL(next.href, window.location.origin).searchParams.get("marker") : null};
}

/** Dead-letter queue name -> the queues whose _dead_letter_queue names it. */
export function deadLetterTargets(queues) {
  const targets = new Map();
  for (const queue of queues) {
    const dlq = queue.metadata && queue.metadata._dead_letter_queue;
    if (typeof dlq === "string" && dlq) targets.set(dlq, [...(targets.get(dlq) || []), queue.name]);
  }
  return targets;
}

export async function stats(api, queue) {
  return (await api.get(queuePath(queue, "stats"))).data.messages;
}

/** Whether these credentials may do this (pre-signed grants cover only what they name). */
export function may(context, method, path) {
  return context.credentials.mode !== "signed" || signedAllows(context.credentials.signed, method, path);
}

export async function redrive(context, dlq, sources) {
  const answer = await confirmDialog({
    title: `Redrive ${dlq}?`,
    text: `Its dead letters go back to the queue each came from (${sources.join(", ") || "as recorded"}), or to the destination given, claimable again.`,
    confirm: "Redrive",
    fields: [
      {name: "destination", label: "Destination (optional)", placeholder: "the queue each came from"},
      {name: "limit", label: "At most (optional)", type: "number", min: 1, placeholder: "1000"},
    ],
  });
  if (!answer) return;
  const body = {};
  if (answer.destination.trim()) body.destination = answer.destination.trim();
  const limit = numberField(answer.limit, "At most");
  if (limit !== undefined) body.limit = limit;
  const {data} = await context.api.post(queuePath(dlq, "redrive"), body);
  notice(`Moved ${data.moved} message${data.moved === 1 ? "" : "s"} out of ${dlq}.`);
  context.refresh();
}

function badges(name, metadata, targets) {
  const found = [];
  if (name === FAILED_QUEUE) found.push(h("span", {class: "badge warn"}, "failed deliveries"));
  if (targets.has(name)) found.push(h("span", {class: "badge dlq", title: `dead letters of ${targets.get(name).join(", ")}`}, "dead-letter queue"));
  const dlq = metadata && metadata._dead_letter_queue;
  if (dlq) found.push(h("span", {class: "badge"}, `dead letters → ${dlq}`));
  if (metadata && metadata._enable_encrypt_messages) found.push(h("span", {class: "badge"}, "encrypted"));
  return found;
}

// -- the queues page --------------------------------------------------------------------------

export function queuesView(context) {
  const {api, history} = context;
  const signed = context.credentials.mode === "signed";
  const pages = [null];
  const rows = new Map();
  let targets = new Map();
  const columns = ["Queue", "Free", "Claimed", "Total", "Oldest", "Flavor", "Depth", "Actions"];
  const body = h("tbody");
  const table = h("table", {class: "data queues"},
    h("caption", {class: "visually-hidden"}, "Queues of the project, with their message counts"),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", {scope: "col"}, c)))), body);
  const empty = h("p", {class: "empty", hidden: true}, "No queues yet. Create one, or post a message to any queue name.");
  const previous = h("button", {type: "button", hidden: true, onclick: () => { pages.pop(); rows.clear(); clear(body); context.refresh(); }}, "Previous page");
  const next = h("button", {type: "button", hidden: true, onclick: () => { pages.push(next.marker); rows.clear(); clear(body); context.refresh(); }}, "Next page");

  const name = h("input", {name: "queue", required: true, autocomplete: "off", spellcheck: false, placeholder: "queue name"});
  const create = h("button", {type: "submit", class: "primary"}, "Create queue");
  const form = h("form", {class: "inline", "aria-label": "Create a queue"},
    h("label", {htmlFor: "new-queue"}, "New queue"), name, create);
  name.id = "new-queue";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(create, async () => {
      const queue = name.value.trim();
      const {status} = await api.put(queuePath(queue));
      notice(status === 201 ? `Created queue ${queue}.` : `Queue ${queue} already exists.`);
      name.value = "";
      await context.refresh();
    });
  });

  function makeRow(queue) {
    const cell = (label, cls, ...children) => h("td", {"data-label": label, class: cls}, ...children);
    const link = h("a", {href: `#/queues/${encodeURIComponent(queue)}/messages`}, queue);
    const tags = h("span", {class: "badges"});
    const purge = h("button", {type: "button", class: "small"}, "Purge");
    const remove = h("button", {type: "button", class: "small danger"}, "Delete");
    const again = h("button", {type: "button", class: "small", hidden: true}, "Redrive");
    purge.addEventListener("click", () => act(purge, () => purgeQueue(queue)));
    remove.addEventListener("click", () => act(remove, () => deleteQueue(queue)));
    again.addEventListener("click", () => act(again, () => redrive(context, queue, targets.get(queue) || [])));
    const row = {
      tr: h("tr", {"data-queue": queue}),
      free: cell("Free", "num free"), claimed: cell("Claimed", "num claimed"), total: cell("Total", "num total"),
      oldest: cell("Oldest", "num oldest"), flavor: cell("Flavor", "flavor"), depth: cell("Depth", "depth"),
      tags, again,
    };
    const actions = cell("Actions", "actions", signed ? null : [purge, remove], again);
    row.tr.append(cell("Queue", "name", link, tags), row.free, row.claimed, row.total, row.oldest, row.flavor, row.depth, actions);
    return row;
  }

  function fill(row, entry) {
    const counts = entry.stats;
    row.free.textContent = counts ? String(counts.free) : "—";
    row.claimed.textContent = counts ? String(counts.claimed) : "—";
    row.total.textContent = counts ? String(counts.total) : "—";
    row.oldest.textContent = counts && counts.oldest ? duration(counts.oldest.age) : "—";
    row.oldest.title = counts && counts.oldest ? `created ${counts.oldest.created}` : "";
    row.flavor.textContent = (entry.metadata && entry.metadata._flavor) || "—";
    if (counts) history.record(entry.name, counts.total);
    row.depth.replaceChildren(sparkline(history.of(entry.name), `Total messages of ${entry.name} this session`));
    row.tags.replaceChildren(...badges(entry.name, entry.metadata, targets));
    row.again.hidden = signed || !targets.has(entry.name);
    if (entry.error) row.total.title = `${entry.error.title}: ${entry.error.description}`;
  }

  async function purgeQueue(queue) {
    const answer = await confirmDialog({
      title: `Purge ${queue}?`, danger: true, confirm: "Purge",
      text: `Every message of ${queue} is deleted, claimed ones too. Its metadata is kept.`,
      fields: [{name: "subscriptions", label: "Also delete its subscriptions", type: "checkbox"}],
    });
    if (!answer) return;
    await api.post(queuePath(queue, "purge"), {resource_types: answer.subscriptions ? ["messages", "subscriptions"] : ["messages"]});
    notice(`Purged ${queue}.`);
    await context.refresh();
  }

  async function deleteQueue(queue) {
    const answer = await confirmDialog({
      title: `Delete ${queue}?`, danger: true, confirm: "Delete queue",
      text: `The queue ${queue}, its metadata and its messages are deleted. This cannot be undone.`,
    });
    if (!answer) return;
    await api.delete(queuePath(queue));
    notice(`Deleted queue ${queue}.`);
    await context.refresh();
  }

  async function poll() {
    let listed;
    if (signed) {
      listed = {queues: signedQueues(context.credentials.signed).map((queue) => ({name: queue, metadata: {}})), next: null};
    } else {
      listed = await listQueues(api, pages[pages.length - 1]);
    }
    targets = deadLetterTargets(listed.queues);
    const entries = await Promise.all(listed.queues.map(async (queue) => {
      if (!may(context, "GET", queuePath(queue.name, "stats"))) return {...queue, stats: null};
      try {
        return {...queue, stats: await stats(api, queue.name)};
      } catch (error) {
        if (!(error instanceof ApiError) || error.status === 0) throw error;
        return {...queue, stats: null, error}; // gone meanwhile, or not covered: the others still show
      }
    }));
    const seen = new Set();
    entries.forEach((entry, index) => {
      let row = rows.get(entry.name);
      if (!row) rows.set(entry.name, row = makeRow(entry.name));
      fill(row, entry);
      if (body.children[index] !== row.tr) body.insertBefore(row.tr, body.children[index] || null);
      seen.add(entry.name);
    });
    for (const [queue, row] of rows) {
      if (!seen.has(queue)) {
        row.tr.remove();
        rows.delete(queue);
      }
    }
    empty.hidden = entries.length > 0;
    next.marker = listed.next;
    next.hidden = !listed.next;
    previous.hidden = pages.length < 2;
  }

  const node = h("section", {class: "view"},
    h("div", {class: "view-head"}, h("h1", {tabIndex: -1}, "Queues"), signed ? null : form),
    signed ? h("p", {class: "hint"}, "Signed in with a pre-signed URL: the queues it covers.") : null,
    h("div", {class: "table-wrap"}, table), empty, h("div", {class: "pager"}, previous, next));
  return {node, title: "Queues", poll};
}

// -- the header of one queue's pages ----------------------------------------------------------

export function queueHeader(context, queue, tab) {
  const counts = {free: h("span", {class: "free"}, "…"), claimed: h("span", {class: "claimed"}, "…"),
    total: h("span", {class: "total"}, "…"), oldest: h("span", {class: "oldest"}, "—")};
  const tabs = [["messages", "Messages"], ["subscriptions", "Subscriptions"], ["metadata", "Metadata"]];
  const node = h("div", {class: "queue-head"},
    h("p", {class: "crumbs"}, h("a", {href: "#/queues"}, "Queues"), " / "),
    h("h1", {tabIndex: -1}, queue),
    h("p", {class: "counts", "aria-label": `Message counts of ${queue}`},
      "Free ", counts.free, " · Claimed ", counts.claimed, " · Total ", counts.total, " · Oldest ", counts.oldest),
    h("nav", {class: "tabs", "aria-label": `Pages of ${queue}`}, tabs.map(([name, label]) => h("a", {
      href: `#/queues/${encodeURIComponent(queue)}/${name}`, "aria-current": name === tab ? "page" : undefined}, label))));
  async function poll() {
    if (!may(context, "GET", queuePath(queue, "stats"))) {
      for (const span of Object.values(counts)) span.textContent = "—";
      return;
    }
    const found = await stats(context.api, queue);
    counts.free.textContent = String(found.free);
    counts.claimed.textContent = String(found.claimed);
    counts.total.textContent = String(found.total);
    counts.oldest.textContent = found.oldest ? duration(found.oldest.age) : "—";
    context.history.record(queue, found.total);
  }
  return {node, poll};
}
