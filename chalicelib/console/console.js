// The console's entry point: sign-in, the header, and the hash routes onto the views.
//
//   #/queues                          the queues of the project, live
//   #/queues/<q>/messages[/<id>]      a page of messages, one message
//   #/queues/<q>/subscriptions        subscriptions of a queue
//   #/queues/<q>/metadata             reserved settings and other metadata
//   #/failed                          failed deliveries and dead-letter queues

import {Api, ApiError, Poller, forgetCredentials, loadCredentials, parseSigned, saveCredentials} from "./api.js";
import {History, act, clear, field, h, hideError, showError} from "./dom.js";
import {failedView} from "./failed.js";
import {messageView, messagesView} from "./messages.js";
import {metadataView} from "./metadata.js";
import {queuesView} from "./queues.js";
import {subscriptionsView} from "./subscriptions.js";

const BASE = new URL("../", window.location.href); // the console is served at <api>/console/
const main = document.getElementById("main");
const live = document.getElementById("live");
const history = new History();
let current = {poller: null, api: null, credentials: null};

function credentialsFromUrl() {
  const params = new URLSearchParams(window.location.search);
  if (params.get("signature")) {
    return {mode: "signed", signed: parseSigned(Object.fromEntries(params.entries()))};
  }
  const project = params.get("project");
  return project ? {mode: "project", project} : null;
}

function describe(credentials) {
  if (credentials.mode === "project") return `Project ${credentials.project}`;
  if (credentials.mode === "token") return credentials.project ? `Keystone token, project ${credentials.project}` : "Keystone token";
  return `Pre-signed URL, project ${credentials.signed.project}, until ${credentials.signed.expires} UTC`;
}

function liveState(state) {
  if (state.paused) live.textContent = "Paused while the page is hidden";
  else if (state.ok) live.textContent = `Live · updated ${state.at.toLocaleTimeString()}`;
  else {
    live.textContent = `${state.error.title || "Error"} · retrying in ${Math.ceil(state.retryIn / 1000)} s`;
    if (state.error.status) showError(state.error); // the API refused: say why (a network error stays in the line)
  }
  live.classList.toggle("failing", !state.ok);
}

// -- sign-in ----------------------------------------------------------------------------------

function signInView(message) {
  document.getElementById("nav").hidden = true;
  document.getElementById("who").hidden = true;
  live.textContent = "";
  const mode = (value, label, checked) => h("label", {class: "choice"},
    h("input", {type: "radio", name: "mode", value, checked}), ` ${label}`);
  const project = h("input", {name: "project", autocomplete: "off", spellcheck: false, placeholder: "demo"});
  const token = h("input", {name: "token", type: "password", autocomplete: "off"});
  const tokenProject = h("input", {name: "token-project", autocomplete: "off", spellcheck: false});
  const signed = h("textarea", {name: "signed", rows: 5, spellcheck: false,
    placeholder: '{"project": "...", "paths": [...], "methods": [...], "expires": "...", "signature": "..."}'});
  const sections = {
    project: h("div", {class: "mode-fields", "data-mode": "project"},
      field("Project", project, "With AUTH_STRATEGY=noauth: the X-Project-ID to work in. ?project= in the URL does the same.")),
    token: h("div", {class: "mode-fields", "data-mode": "token"},
      field("Keystone token", token, "An X-Auth-Token, e.g. from `openstack token issue -f value -c id`."),
      field("Project (optional)", tokenProject, "Checked against the token's project.")),
    signed: h("div", {class: "mode-fields", "data-mode": "signed"},
      field("Pre-signed URL (JSON)", signed, "The JSON that POST /v2/queues/{queue}/share answered: the console then works on the queues it covers.")),
  };
  const submit = h("button", {type: "submit", class: "primary"}, "Sign in");
  const form = h("form", {class: "card signin", "aria-labelledby": "signin-title"},
    h("h1", {id: "signin-title", tabIndex: -1}, "Sign in"),
    message ? h("p", {class: "hint"}, message) : null,
    h("fieldset", {}, h("legend", {}, "How"),
      mode("project", "No auth", true), mode("token", "Keystone"), mode("signed", "Pre-signed")),
    Object.values(sections), h("div", {class: "actions"}, submit));
  const chosen = () => form.querySelector("input[name=mode]:checked").value;
  const show = () => {
    for (const [name, section] of Object.entries(sections)) section.hidden = name !== chosen();
  };
  form.addEventListener("change", (event) => { if (event.target.name === "mode") show(); });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    act(submit, async () => {
      const how = chosen();
      let credentials;
      if (how === "project") {
        if (!project.value.trim()) throw new ApiError(0, "Invalid input", "Give the project to work in.");
        credentials = {mode: "project", project: project.value.trim()};
      } else if (how === "token") {
        if (!token.value.trim()) throw new ApiError(0, "Invalid input", "Give a Keystone token.");
        credentials = {mode: "token", token: token.value.trim(), project: tokenProject.value.trim() || undefined};
      } else {
        credentials = {mode: "signed", signed: parseSigned(signed.value)};
      }
      try {
        await check(credentials);
      } catch (error) {
        if (error.status === 401 && how === "project") {
          form.querySelector("input[value=token]").checked = true;
          show();
        }
        throw error;
      }
      enter(credentials);
    });
  });
  show();
  stopPolling();
  clear(main).append(form);
  project.focus();
}

/** Whether the service accepts these credentials (pre-signed grants are checked when used). */
async function check(credentials) {
  if (credentials.mode !== "signed") await new Api(BASE, credentials).get("v2/queues", {limit: 1});
}

function enter(credentials) {
  saveCredentials(credentials);
  current.credentials = credentials;
  current.api = new Api(BASE, credentials);
  document.getElementById("identity").textContent = describe(credentials);
  document.getElementById("nav").hidden = false;
  document.getElementById("who").hidden = false;
  hideError();
  route({focus: true});
}

function signOut() {
  forgetCredentials();
  current = {poller: null, api: null, credentials: null};
  const url = new URL(window.location.href);
  url.search = "";
  url.hash = "";
  window.history.replaceState(null, "", url);
  signInView();
}

// -- routing ----------------------------------------------------------------------------------

function stopPolling() {
  if (current.poller) current.poller.stop();
  current.poller = null;
}

function parseHash() {
  const parts = window.location.hash.replace(/^#\/?/, "").split("/").filter(Boolean).map(decodeURIComponent);
  return parts.length ? parts : ["queues"];
}

function route({focus = true} = {}) {
  if (!current.api) return;
  stopPolling();
  const parts = parseHash();
  const context = {api: current.api, credentials: current.credentials, history, refresh: () => current.poller?.now()};
  let view;
  if (parts[0] === "failed") view = failedView(context);
  else if (parts[0] === "queues" && parts[1]) {
    const [, queue, tab = "messages", id] = parts;
    if (tab === "subscriptions") view = subscriptionsView(context, queue);
    else if (tab === "metadata") view = metadataView(context, queue);
    else if (id) view = messageView(context, queue, id);
    else view = messagesView(context, queue);
  } else view = queuesView(context);
  for (const link of document.querySelectorAll("#nav a")) {
    const on = link.dataset.section === (parts[0] === "failed" ? "failed" : "queues");
    if (on) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  clear(main).append(view.node);
  document.title = `${view.title} · Zaqar console`;
  if (focus) (main.querySelector("h1") || main).focus();
  if (view.poll) {
    current.poller = new Poller(view.poll, {every: view.every || 3000, onState: liveState});
    current.poller.start();
  } else live.textContent = "";
}

function start() {
  document.getElementById("alert-close").addEventListener("click", hideError);
  document.getElementById("sign-out").addEventListener("click", signOut);
  window.addEventListener("hashchange", () => route({focus: true}));
  let credentials = null;
  try {
    credentials = credentialsFromUrl() || loadCredentials();
  } catch (error) {
    signInView();
    showError(error);
    return;
  }
  if (!credentials) {
    signInView();
    return;
  }
  enter(credentials);
}

start();
