/*
 * Tether's hosted modal, framed by embedded.js on a customer's page.
 *
 * Origins: the first message must come from the framing page (window.parent) and carries the
 * token. The modal then reads the token environment's allowedOrigins (GET /sdk/config) and
 * from then on accepts messages only from, and posts only to, that page's origin when the
 * list holds it. Before that check nothing but a bare error code is ever posted, and only to
 * the origin that asked. Messages of the OAuth popup are accepted from Tether's own origin and
 * from that popup only.
 *
 * Everything is built with DOM calls and textContent: no HTML is parsed from data.
 */
(function () {
  "use strict";

  const API = window.location.pathname.replace(/\/sdk\/modal\/?$/, "");
  const OWN_ORIGIN = window.location.origin;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const AUTO_CLOSE_MS = 1200;
  const POPUP_GRACE_MS = 800;

  const el = {
    dialog: document.getElementById("dialog"),
    title: document.getElementById("title"),
    subtitle: document.getElementById("subtitle"),
    content: document.getElementById("content"),
    back: document.getElementById("back"),
    close: document.getElementById("close"),
    mark: document.getElementById("mark"),
  };

  const state = {
    initOrigin: null, // who sent the init message; not trusted until checked
    hostOrigin: null, // the same origin, once allowedOrigins holds it
    token: null,
    mode: "install",
    targetId: null, // the integration install() or authenticate() named, if any
    integrations: [],
    account: "",
    outcome: null, // what closing reports; "cancelled" when nothing happened
    connected: [], // installations made or updated in this session
    closeRequested: false,
    closed: false,
    oauth: null, // {popup, integration, timer, replacing}
    autoClose: null,
    view: "loading",
  };

  class ApiError extends Error {
    constructor(code, status, detail, body) {
      super(detail || code);
      this.code = code;
      this.status = status || 0;
      this.detail = detail || "";
      this.body = body || null;
    }
  }

  // --- DOM helpers -------------------------------------------------------------------------

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function icon(paths, cls) {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    if (cls) svg.setAttribute("class", cls);
    for (const d of paths) {
      const path = document.createElementNS(SVG_NS, "path");
      path.setAttribute("d", d);
      svg.append(path);
    }
    return svg;
  }

  const ICONS = {
    check: ["M5 12.5 10 17.5 19 7"],
    alert: ["M12 8v5", "M12 16.5v.01", "M10.3 3.9 2.5 17.5A2 2 0 0 0 4.2 20.5h15.6a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z"],
    cross: ["M12 8v5", "M12 16.5v.01", "M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18z"],
    chevron: ["M9 6l6 6-6 6"],
    external: ["M14 4h6v6", "M20 4l-9 9", "M18 14v5a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1h5"],
    grid: ["M4 4h7v7H4z", "M13 4h7v7h-7z", "M4 13h7v7H4z", "M13 13h7v7h-7z"],
    link: ["M10 14a4 4 0 0 0 5.7 0l3-3a4 4 0 0 0-5.7-5.7l-1 1", "M14 10a4 4 0 0 0-5.7 0l-3 3a4 4 0 0 0 5.7 5.7l1-1"],
  };

  function hue(text) {
    let sum = 0;
    for (const ch of text) sum = (sum * 31 + ch.codePointAt(0)) >>> 0;
    return "hue-" + (sum % 8);
  }

  function initials(name) {
    const words = name.split(/[\s_-]+/).filter(Boolean);
    const letters = words.length > 1 ? words[0][0] + words[1][0] : (words[0] || "?")[0];
    return letters.toUpperCase();
  }

  // The catalogue's apps in their brand colour (modal.css); anything else gets a stable hue.
  const BRANDS = new Set([
    "slack", "hubspot", "salesforce", "google_sheets", "github", "notion", "zoom", "asana",
    "xero", "stripe", "airtable", "zendesk", "mailchimp", "sendgrid",
  ]);

  function avatar(integration, large) {
    const colour = BRANDS.has(integration.app) ? "brand-" + integration.app : hue(integration.app + integration.name);
    return h("span", {
      class: "avatar " + colour + (large ? " large" : ""),
      "aria-hidden": "true",
      text: initials(integration.name),
    });
  }

  function kindOf(integration) {
    if (integration.authType === "oauth2") return "Sign in to connect";
    if (integration.authType === "basic") return "Account credentials";
    return "API key";
  }

  // The header names the view; for a view about one app it shows that app's mark too.
  function setHeader(title, subtitle, integration) {
    el.title.textContent = title;
    el.subtitle.textContent = subtitle || "";
    el.mark.replaceChildren(...(integration ? [avatar(integration)] : []));
    el.mark.hidden = !integration;
    document.title = title;
  }

  function render(view, nodes, focusTarget) {
    state.view = view;
    el.back.hidden = Boolean(state.targetId) || ["list", "loading", "fatal"].includes(view);
    el.content.replaceChildren(...nodes);
    el.content.scrollTop = 0;
    el.dialog.dataset.view = view;
    // At once, in the same task: a key pressed right after a view appears acts on that view.
    (focusTarget || el.title).focus();
  }

  function alertBox(kind, title, text) {
    const role = kind === "error" ? "alert" : "status";
    return h(
      "div",
      { class: "alert " + kind, role },
      icon(kind === "success" ? ICONS.check : ICONS.cross),
      h("p", {}, title ? h("strong", { text: title }) : null, text || null)
    );
  }

  function button(kind, label, onclick, extra) {
    return h("button", Object.assign({ type: "button", class: "button " + kind, onclick }, extra || {}), label);
  }

  function setBusy(btn, busy, label) {
    btn.disabled = busy;
    if (busy) {
      btn.dataset.label = btn.textContent;
      btn.replaceChildren(h("span", { class: "spinner", "aria-hidden": "true" }), label);
    } else if (btn.dataset.label) {
      btn.replaceChildren(btn.dataset.label);
    }
  }

  // --- talking to Tether ---------------------------------------------------------------------

  async function request(method, path, body, headers) {
    const options = {
      method,
      headers: Object.assign({ Accept: "application/json" }, headers || {}),
      credentials: "omit",
      cache: "no-store",
    };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(API + path, options);
    } catch (err) {
      throw new ApiError("network_error", 0, "We couldn't reach the server. Check your connection and try again.");
    }
    let data = null;
    try {
      data = await response.json();
    } catch (err) {
      data = null;
    }
    if (!response.ok) {
      const code = data && typeof data.code === "string" ? data.code : "http_" + response.status;
      throw new ApiError(code, response.status, data && data.detail, data);
    }
    return data;
  }

  function api(method, path, body) {
    return request(method, path, body, { Authorization: "Bearer " + state.token });
  }

  // --- messages ------------------------------------------------------------------------------

  function postToHost(message) {
    if (state.hostOrigin) window.parent.postMessage(message, state.hostOrigin);
  }

  // The one message that may go to an origin not (yet) known to be allowed: a bare error code,
  // to the origin that sent the init message, so its callback is not left waiting.
  function postEarlyError(code) {
    if (state.initOrigin && !state.closed) {
      state.closed = true;
      window.parent.postMessage({ type: "tether:result", success: false, error: code }, state.initOrigin);
    }
  }

  window.addEventListener("message", (event) => {
    if (state.oauth && event.source === state.oauth.popup) {
      if (event.origin !== OWN_ORIGIN) return;
      const data = event.data;
      if (data && data.type === "tether:oauth") oauthFinished(data);
      return;
    }
    if (window.parent === window || event.source !== window.parent) return;
    if (state.initOrigin !== null) return; // one init per modal; nothing else is listened to
    const data = event.data;
    if (!data || data.type !== "tether:init" || typeof event.origin !== "string" || event.origin === "null") return;
    state.initOrigin = event.origin;
    start(data);
  });

  // --- start ---------------------------------------------------------------------------------

  async function start(init) {
    state.mode = ["install", "authenticate", "open"].includes(init.mode) ? init.mode : "install";
    state.targetId = typeof init.integrationId === "string" && init.integrationId ? init.integrationId : null;
    let config;
    try {
      state.token = state.mode === "open" ? await tenantUserToken(init) : init.token;
      if (typeof state.token !== "string" || !state.token) throw new ApiError("token_missing");
      config = await api("GET", "/sdk/config");
    } catch (err) {
      return earlyFailure(err.code || "unknown_error");
    }
    const allowed = Array.isArray(config.allowedOrigins) ? config.allowedOrigins : [];
    if (!allowed.includes(state.initOrigin)) return earlyFailure("origin_not_allowed");
    state.hostOrigin = state.initOrigin;
    postToHost({ type: "tether:started" }); // the SDK stops repeating its init message
    state.account = typeof config.accountName === "string" ? config.accountName : "";
    if (state.closeRequested) return finish();
    await loadAndShow(null);
  }

  async function tenantUserToken(init) {
    if (typeof init.tenantId !== "string" || !init.tenantId) throw new ApiError("invalid_argument");
    if (typeof init.tenantToken !== "string" || !init.tenantToken) throw new ApiError("token_missing");
    if (typeof init.publishableKey !== "string" || !init.publishableKey) throw new ApiError("publishable_key_missing");
    const answer = await request("GET", "/tenants/" + encodeURIComponent(init.tenantId) + "/token", undefined, {
      "x-api-key": init.publishableKey,
      "x-tenant-token": init.tenantToken,
    });
    return answer && answer.token;
  }

  function earlyFailure(code) {
    showFatal(code);
    postEarlyError(code);
  }

  async function loadAndShow(flash) {
    if (state.view !== "list") showLoading();
    try {
      const answer = await api("GET", "/sdk/integrations");
      state.integrations = Array.isArray(answer.data) ? answer.data : [];
    } catch (err) {
      return failed(err);
    }
    if (!state.targetId) return showList(flash);
    const integration = state.integrations.find((i) => i.integrationId === state.targetId);
    if (!integration) return fatal("integration_not_found");
    if (integration.installed && state.mode === "install") return showInstalled(integration);
    return connect(integration, integration.installed);
  }

  // --- views ---------------------------------------------------------------------------------

  function showLoading() {
    setHeader("Connect an app", "");
    render("loading", [
      h("div", { class: "loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), "Loading…"),
    ]);
  }

  function badge(integration) {
    if (integration.installed && integration.status === "error") {
      return h("span", { class: "badge attention", text: "Needs attention" });
    }
    if (integration.installed) return h("span", { class: "badge connected", text: "Connected" });
    return h("span", { class: "badge connect" }, "Connect", icon(ICONS.chevron, "chevron"));
  }

  function stateLabel(integration) {
    if (integration.installed && integration.status === "error") return "needs attention";
    return integration.installed ? "connected" : "not connected";
  }

  function showList(flash) {
    setHeader("Connect your apps", state.account ? "Choose an app to connect to " + state.account + "." : "Choose an app to connect.");
    const nodes = [];
    if (flash) nodes.push(alertBox(flash.kind, null, flash.text));
    if (!state.integrations.length) {
      el.subtitle.textContent = "";
      nodes.push(
        h(
          "div",
          { class: "empty" },
          h("div", { class: "mark neutral" }, icon(ICONS.grid)),
          h("h2", { text: "No apps to connect yet" }),
          h("p", { text: "When apps are made available for your account, they'll appear here." })
        )
      );
      return render("list", nodes);
    }
    const list = h("ul", { class: "apps", "aria-label": "Apps" });
    for (const integration of state.integrations) {
      list.append(
        h(
          "li",
          {},
          h(
            "button",
            {
              type: "button",
              class: "app",
              "data-integration-id": integration.integrationId,
              "data-state": integration.installed ? (integration.status === "error" ? "error" : "installed") : "not_installed",
              "aria-label": integration.name + ", " + stateLabel(integration),
              onclick: () => (integration.installed ? showManage(integration) : connect(integration, false)),
            },
            avatar(integration),
            h("span", { class: "app-text" }, h("span", { class: "app-name", text: integration.name }), h("span", { class: "app-kind", text: kindOf(integration) })),
            badge(integration)
          )
        )
      );
    }
    nodes.push(list);
    render("list", nodes);
  }

  function connect(integration, replacing) {
    if (integration.authType === "oauth2") return showOAuth(integration, replacing, null);
    return showForm(integration, replacing);
  }

  function fieldId(field) {
    return "field-" + field.name;
  }

  // The browser applies `pattern` with the "v" flag; a pattern that does not compile that way
  // is left to the check below and to the server.
  function htmlPattern(pattern) {
    if (!pattern) return null;
    const inner = pattern.replace(/^\^/, "").replace(/\$$/, "");
    try {
      new RegExp("^(?:" + inner + ")$", "v");
      return inner;
    } catch (err) {
      return null;
    }
  }

  function matches(pattern, value) {
    if (!pattern) return true;
    try {
      return new RegExp("^(?:" + pattern + ")$", "u").test(value);
    } catch (err) {
      return true; // the server checks it with the catalogue's own regex
    }
  }

  function showForm(integration, replacing, problem) {
    setHeader((replacing ? "Update " : "Connect ") + integration.name, kindOf(integration), integration);
    const fields = Array.isArray(integration.fields) ? integration.fields : [];
    const inputs = [];
    const rows = fields.map((field) => {
      const id = fieldId(field);
      const input = h("input", {
        id,
        name: field.name,
        type: field.secret ? "password" : field.name === "email" ? "email" : "text",
        placeholder: field.placeholder || null,
        required: field.required,
        pattern: htmlPattern(field.pattern),
        autocomplete: "off",
        autocapitalize: "off",
        spellcheck: "false",
        "aria-describedby": id + "-error",
        class: field.secret ? "has-toggle" : null,
        "data-1p-ignore": true,
      });
      inputs.push({ field, input });
      const wrap = h("div", { class: "input-wrap" }, input);
      if (field.secret) {
        const toggle = h("button", {
          type: "button",
          class: "toggle",
          "aria-controls": id,
          "aria-pressed": "false",
          "aria-label": "Show " + field.label,
          text: "Show",
        });
        toggle.addEventListener("click", () => {
          const show = input.type === "password";
          input.type = show ? "text" : "password";
          toggle.textContent = show ? "Hide" : "Show";
          toggle.setAttribute("aria-pressed", String(show));
          toggle.setAttribute("aria-label", (show ? "Hide " : "Show ") + field.label);
        });
        wrap.append(toggle);
      }
      return h(
        "div",
        { class: "field" },
        h("label", { for: id }, field.label, field.required ? null : h("span", { class: "optional", text: " (optional)" })),
        wrap,
        h("p", { class: "field-error", id: id + "-error", hidden: true })
      );
    });
    const submit = h("button", { type: "submit", class: "button primary" }, replacing ? "Save credentials" : "Connect " + integration.name);
    const banner = h("div", {});
    if (problem) banner.append(alertBox("error", problem.title, problem.text));
    const form = h(
      "form",
      { novalidate: true, "aria-label": (replacing ? "Update " : "Connect ") + integration.name },
      banner,
      rows,
      h("div", { class: "actions" }, submit)
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submitForm(integration, replacing, inputs, submit, banner);
    });
    const lead = replacing
      ? "Enter new credentials for " + integration.name + ". They replace the ones saved now."
      : "Enter your " + integration.name + " credentials. They're encrypted and used only for this connection.";
    render("form", [h("p", { class: "lead", text: lead }), form], inputs.length ? inputs[0].input : submit);
  }

  function setFieldError(input, message) {
    const error = document.getElementById(input.id + "-error");
    if (message) {
      input.setAttribute("aria-invalid", "true");
      error.replaceChildren(message);
      error.hidden = false;
    } else {
      input.removeAttribute("aria-invalid");
      error.hidden = true;
      error.replaceChildren();
    }
  }

  function checkInputs(inputs) {
    let first = null;
    for (const { field, input } of inputs) {
      const value = input.value.trim();
      let message = null;
      // Labels are used as written: they hold product names and acronyms ("API token").
      if (!value && field.required) message = field.label + " is required.";
      else if (value && !matches(field.pattern, value)) {
        message = field.label + " doesn't look right." + (field.placeholder ? " It should look like " + field.placeholder : "");
      }
      setFieldError(input, message);
      if (message && !first) first = input;
    }
    return first;
  }

  async function submitForm(integration, replacing, inputs, submit, banner) {
    if (submit.disabled) return;
    banner.replaceChildren();
    const invalid = checkInputs(inputs);
    if (invalid) {
      invalid.focus();
      return;
    }
    const data = {};
    for (const { field, input } of inputs) {
      const value = input.value.trim();
      if (value) data[field.name] = value;
    }
    setBusy(submit, true, replacing ? "Saving…" : "Connecting…");
    let answer;
    try {
      answer = replacing
        ? await api("PUT", "/sdk/installations/" + encodeURIComponent(integration.installationId) + "/credential", { data })
        : await api("POST", "/sdk/installations", { integrationId: integration.integrationId, data });
    } catch (err) {
      setBusy(submit, false);
      return formFailed(err, integration, inputs, submit, banner);
    }
    connected(integration, answer.installationId);
  }

  function formFailed(err, integration, inputs, submit, banner) {
    if (err.code === "validation_error") {
      const errors = err.body && Array.isArray(err.body.errors) ? err.body.errors : [];
      let first = null;
      for (const item of errors) {
        const name = Array.isArray(item.loc) ? item.loc[item.loc.length - 1] : null;
        const match = inputs.find(({ field }) => field.name === name);
        if (match) {
          setFieldError(match.input, item.msg || "Check this value.");
          first = first || match.input;
        }
      }
      if (first) return first.focus();
      banner.replaceChildren(alertBox("error", "Check the details", err.detail || "Some values were not accepted."));
      return submit.focus();
    }
    if (err.code === "already_installed") {
      integration.installed = true;
      integration.installationId = err.body && err.body.installationId;
      return state.targetId ? showInstalled(integration) : showManage(integration);
    }
    if (err.code === "not_found") return fatal("integration_not_found");
    if (isSessionError(err.code)) return fatal(err.code);
    const text = err.code === "network_error" ? err.detail : err.detail || "Something went wrong. Try again.";
    banner.replaceChildren(alertBox("error", err.code === "network_error" ? "You're offline" : "Couldn't connect", text));
    submit.focus();
  }

  function isSessionError(code) {
    return ["token_expired", "invalid_token", "missing_credentials", "origin_not_allowed"].includes(code);
  }

  function showOAuth(integration, replacing, problem) {
    setHeader((replacing ? "Reconnect " : "Connect ") + integration.name, kindOf(integration), integration);
    const go = button(
      "primary",
      ["Continue to " + integration.name, icon(ICONS.external, "chevron")],
      () => startOAuth(integration, replacing)
    );
    const nodes = [];
    if (problem) nodes.push(alertBox("error", problem.title, problem.text));
    nodes.push(
      h("p", {
        class: "lead",
        text: "You'll sign in to " + integration.name + " in a new window and allow access. This window updates when you're done.",
      }),
      h("div", { class: "actions" }, go)
    );
    render("oauth", nodes, go);
  }

  function popupFeatures() {
    const width = 520;
    const height = 680;
    const left = Math.max(0, Math.round((window.screenX || 0) + ((window.outerWidth || width) - width) / 2));
    const top = Math.max(0, Math.round((window.screenY || 0) + ((window.outerHeight || height) - height) / 2));
    return "popup=yes,width=" + width + ",height=" + height + ",left=" + left + ",top=" + top;
  }

  async function startOAuth(integration, replacing) {
    // Opened at once, inside the click, or popup blockers refuse it; its address is set once
    // Tether answers.
    const popup = window.open("", "tether-oauth-" + integration.integrationId, popupFeatures());
    if (!popup) {
      return showOAuth(integration, replacing, {
        title: "The sign-in window was blocked",
        text: "Your browser blocked the window. Allow pop-ups for this page, then try again.",
      });
    }
    showWaiting(integration, replacing, popup);
    let answer;
    try {
      answer = await api("POST", "/sdk/oauth/" + encodeURIComponent(integration.integrationId) + "/start");
    } catch (err) {
      popup.close();
      stopOAuth();
      if (isSessionError(err.code)) return fatal(err.code);
      if (err.code === "not_found") return fatal("integration_not_found");
      return showOAuth(integration, replacing, { title: "Couldn't start the sign-in", text: err.detail || "Try again." });
    }
    if (!state.oauth || state.oauth.popup !== popup) return; // cancelled meanwhile
    try {
      popup.location.href = answer.authorizeUrl;
    } catch (err) {
      stopOAuth();
      return showOAuth(integration, replacing, { title: "Couldn't open the sign-in", text: "Try again." });
    }
  }

  function showWaiting(integration, replacing, popup) {
    stopOAuth();
    state.oauth = { popup, integration, replacing, timer: null, closedAt: null };
    state.oauth.timer = window.setInterval(() => {
      const pending = state.oauth;
      if (!pending || !pending.popup.closed) return;
      // The result may still be in flight from a window that just closed itself.
      pending.closedAt = pending.closedAt || Date.now();
      if (Date.now() - pending.closedAt < POPUP_GRACE_MS) return;
      stopOAuth();
      showOAuth(integration, replacing, {
        title: "The sign-in window was closed",
        text: integration.name + " wasn't connected. Try again when you're ready.",
      });
    }, 250);
    setHeader((replacing ? "Reconnect " : "Connect ") + integration.name, kindOf(integration), integration);
    const cancel = button("link", "Cancel", () => {
      popup.close();
      stopOAuth();
      showOAuth(integration, replacing, null);
    });
    render("waiting", [
      h(
        "div",
        { class: "center", role: "status" },
        h("div", { class: "mark neutral" }, h("span", { class: "spinner", "aria-hidden": "true" })),
        h("h2", { text: "Waiting for " + integration.name + "…" }),
        h("p", { text: "Continue in the window that opened to finish signing in." }),
        h("div", { class: "actions" }, cancel)
      ),
    ], cancel);
  }

  function stopOAuth() {
    if (state.oauth) window.clearInterval(state.oauth.timer);
    state.oauth = null;
  }

  const OAUTH_ERRORS = {
    access_denied: (name) => ["Access wasn't allowed", "You didn't allow access to " + name + ". Try again if that was a mistake."],
    invalid_state: () => ["The sign-in expired", "It took too long or was already used. Try again."],
    oauth_provider_timeout: (name) => [name + " didn't answer", name + " took too long to answer. Try again."],
  };

  function oauthFinished(result) {
    const pending = state.oauth;
    stopOAuth();
    if (!pending) return;
    const integration = pending.integration;
    if (result.success === true && typeof result.installationId === "string") {
      return connected(integration, result.installationId);
    }
    const code = typeof result.error === "string" ? result.error : "unknown_error";
    const describe = OAUTH_ERRORS[code];
    const [title, text] = describe
      ? describe(integration.name)
      : ["Couldn't connect " + integration.name, integration.name + " returned an error (" + code + "). Try again."];
    showOAuth(integration, pending.replacing, { title, text });
  }

  function connected(integration, installationId) {
    integration.installed = true;
    integration.installationId = installationId;
    integration.status = "active";
    state.connected = state.connected.filter((id) => id !== installationId).concat([installationId]);
    if (!state.targetId) {
      // From the list the user may connect several: the result names them all.
      state.outcome = { success: true, installationId, installationIds: state.connected.slice() };
      return loadAndShow({ kind: "success", text: integration.name + " is connected." });
    }
    state.outcome = { success: true, installationId };
    showSuccess(integration);
    state.autoClose = window.setTimeout(finish, AUTO_CLOSE_MS);
  }

  function showSuccess(integration) {
    setHeader(integration.name, "Connected", integration);
    const done = button("primary", "Done", finish);
    render("success", [
      h(
        "div",
        { class: "center", role: "status" },
        h("div", { class: "mark ok" }, icon(ICONS.check)),
        h("h2", { text: "You're all set" }),
        h("p", { text: integration.name + " is connected to your account." }),
        h("div", { class: "actions" }, done)
      ),
    ], done);
  }

  function showInstalled(integration) {
    const broken = integration.status === "error";
    state.outcome = { success: false, error: "already_installed", installationId: integration.installationId };
    setHeader(integration.name, kindOf(integration), integration);
    const again = button("primary", broken ? "Reconnect" : integration.authType === "oauth2" ? "Reconnect" : "Update credentials", () => connect(integration, true));
    render("installed", [
      h(
        "div",
        { class: "center" },
        h("div", { class: "mark " + (broken ? "warn" : "ok") }, icon(broken ? ICONS.alert : ICONS.check)),
        h("h2", { text: broken ? integration.name + " needs to be reconnected" : integration.name + " is already connected" }),
        h("p", {
          text: broken
            ? "The connection stopped working. Reconnect it to continue."
            : "Your account already has a working connection to " + integration.name + ".",
        }),
        h("div", { class: "actions" }, again, button("secondary", "Close", finish))
      ),
    ], again);
  }

  function showManage(integration, confirming) {
    const broken = integration.status === "error";
    setHeader(integration.name, broken ? "Needs attention" : "Connected", integration);
    const again = button("primary", integration.authType === "oauth2" || broken ? "Reconnect" : "Update credentials", () => connect(integration, true));
    let actions;
    let focus = again;
    if (confirming) {
      const yes = button("danger", "Yes, disconnect", (event) => disconnect(integration, event.currentTarget));
      actions = [
        alertBox("error", "Disconnect " + integration.name + "?", "Your account stops using " + integration.name + " until you connect it again."),
        yes,
        button("secondary", "Keep it connected", () => showManage(integration, false)),
      ];
      focus = yes;
    } else {
      actions = [again, button("danger", "Disconnect", () => showManage(integration, true))];
    }
    const lead = broken
      ? "The connection to " + integration.name + " stopped working. Reconnect it to continue."
      : "Your account is connected to " + integration.name + ".";
    render("manage", [h("p", { class: "lead", text: lead }), h("div", { class: "actions" }, actions)], focus);
  }

  async function disconnect(integration, btn) {
    setBusy(btn, true, "Disconnecting…");
    try {
      await api("DELETE", "/sdk/installations/" + encodeURIComponent(integration.installationId));
    } catch (err) {
      setBusy(btn, false);
      if (isSessionError(err.code)) return fatal(err.code);
      if (err.code !== "not_found") {
        return showManage(integration, false);
      }
    }
    state.connected = state.connected.filter((id) => id !== integration.installationId);
    const last = state.connected[state.connected.length - 1];
    state.outcome = last ? { success: true, installationId: last, installationIds: state.connected.slice() } : null;
    loadAndShow({ kind: "success", text: integration.name + " was disconnected." });
  }

  const FATAL = {
    token_expired: ["Your session has expired", "Close this window and try again."],
    invalid_token: ["We couldn't verify your session", "Close this window and try again."],
    token_missing: ["We couldn't verify your session", "Close this window and try again."],
    missing_credentials: ["We couldn't verify your session", "Close this window and try again."],
    invalid_api_key: ["This app isn't set up correctly", "The publishable key was not accepted."],
    tenant_token_required: ["We couldn't verify your session", "A signed tenant token is required."],
    publishable_key_missing: ["This app isn't set up correctly", "A publishable key is required."],
    integration_not_found: ["This app isn't available", "It may have been turned off. Close this window and try again later."],
    origin_not_allowed: ["This website can't connect apps", "Its address isn't on the list of allowed origins for this account."],
    network_error: ["We couldn't reach the server", "Check your connection and try again."],
  };

  function showFatal(code) {
    const [title, text] = FATAL[code] || ["Something went wrong", "Close this window and try again. (" + code + ")"];
    setHeader("Connect an app", "");
    const close = button("secondary", "Close", finish);
    render("fatal", [
      h(
        "div",
        { class: "center", role: "alert" },
        h("div", { class: "mark bad" }, icon(ICONS.cross)),
        h("h2", { text: title }),
        h("p", { text }),
        h("div", { class: "actions" }, close)
      ),
    ], close);
  }

  // A failure after the origin check: shown, and reported when the user closes the modal.
  function fatal(code) {
    stopOAuth();
    state.outcome = { success: false, error: code };
    showFatal(code);
  }

  function failed(err) {
    if (err.code === "not_found") return fatal("integration_not_found");
    return fatal(err.code || "unknown_error");
  }

  // --- closing -------------------------------------------------------------------------------

  function finish() {
    if (state.closed) return;
    window.clearTimeout(state.autoClose);
    if (state.oauth) {
      try {
        state.oauth.popup.close();
      } catch (err) {
        /* already gone */
      }
      stopOAuth();
    }
    if (!state.hostOrigin) {
      // Whom to tell is not known yet: report once the origin is checked.
      state.closeRequested = true;
      el.dialog.classList.add("closing");
      return;
    }
    state.closed = true;
    el.dialog.classList.add("closing");
    const outcome = state.outcome || { success: false, error: "cancelled" };
    postToHost(Object.assign({ type: "tether:result" }, outcome));
  }

  el.close.addEventListener("click", finish);
  el.back.addEventListener("click", () => {
    if (state.oauth) state.oauth.popup.close(); // leaving the app abandons its sign-in
    stopOAuth();
    showList(null);
  });

  // --- keyboard ------------------------------------------------------------------------------

  function focusables() {
    return Array.from(
      el.dialog.querySelectorAll("button, input, select, textarea, a[href], [tabindex]:not([tabindex='-1'])")
    ).filter((node) => !node.disabled && !node.hidden && node.getClientRects().length > 0);
  }

  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      finish();
      return;
    }
    if (event.key !== "Tab") return;
    const items = focusables();
    if (!items.length) return;
    const first = items[0];
    const last = items[items.length - 1];
    const inside = el.dialog.contains(document.activeElement);
    if (event.shiftKey && (document.activeElement === first || !inside || document.activeElement === el.title)) {
      event.preventDefault();
      last.focus();
    } else if (!event.shiftKey && (document.activeElement === last || !inside)) {
      event.preventDefault();
      first.focus();
    }
  });

  if (window.parent === window) {
    setHeader("Connect an app", "");
    render("fatal", [
      h("div", { class: "center" }, h("div", { class: "mark neutral" }, icon(ICONS.link)), h("h2", { text: "Open this from your app" }), h("p", { text: "This window is opened by the website you're connecting apps to." })),
    ]);
  }
})();
