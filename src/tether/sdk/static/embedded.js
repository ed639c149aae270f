/*
 * Tether browser SDK. Load it with
 *   <script src="https://YOUR-TETHER/sdk/embedded.js"></script>
 * and call Tether.setToken(jwt), then Tether.install({integrationId, callback}).
 * window.Alloy is the same object, so Alloy's documented calls work unchanged.
 *
 * The hosted modal runs in an iframe served by Tether. Tokens reach it by postMessage to
 * Tether's exact origin, never in a URL; messages are accepted only from that origin and
 * that iframe. Every outcome, errors included, reaches the callback as
 *   {success: true, installationId} or {success: false, error: "code"}.
 */
(function () {
  "use strict";

  if (window.Tether && window.Tether.__tether) {
    window.Alloy = window.Alloy || window.Tether;
    return;
  }

  var VERSION = "1";
  var IFRAME_ID = "tether-modal";
  var LOAD_TIMEOUT_MS = 20000;
  var RESEND_MS = 200;
  var RESEND_FOR_MS = 10000;

  function findScript() {
    if (document.currentScript && document.currentScript.src) return document.currentScript;
    var scripts = document.getElementsByTagName("script");
    for (var i = scripts.length - 1; i >= 0; i--) {
      if (/\/sdk\/embedded\.js(?:[?#]|$)/.test(scripts[i].src)) return scripts[i];
    }
    return null;
  }

  var script = findScript();
  if (!script) {
    console.error("Tether: load embedded.js with a <script src> tag from your Tether server.");
    return;
  }
  var scriptUrl = new URL(script.src, window.location.href);
  // Everything the SDK talks to hangs off the script's own URL: its origin is the only one
  // whose messages are trusted, and the path prefix (a version, a proxy path) is kept.
  var TETHER_ORIGIN = scriptUrl.origin;
  var BASE = TETHER_ORIGIN + scriptUrl.pathname.replace(/\/sdk\/embedded\.js$/, "");

  var userToken = null;
  var publishableKey = script.getAttribute("data-publishable-key") || null;
  var active = null; // the open modal, if any

  function log(message) {
    if (window.console && console.warn) console.warn("Tether: " + message);
  }

  // Callbacks always run later, never inside the call that caused them, and a throwing
  // callback cannot break the SDK.
  function deliver(callback, result) {
    if (typeof callback !== "function") {
      if (!result.success) log("no callback to receive the error " + result.error + ".");
      return;
    }
    setTimeout(function () {
      try {
        callback(result);
      } catch (err) {
        setTimeout(function () { throw err; }, 0);
      }
    }, 0);
  }

  function fail(callback, error, extra) {
    var result = { success: false, error: error };
    if (extra) {
      for (var key in extra) if (Object.prototype.hasOwnProperty.call(extra, key)) result[key] = extra[key];
    }
    log(error + (extra && extra.detail ? ": " + extra.detail : ""));
    deliver(callback, result);
  }

  function isNonEmptyString(value) {
    return typeof value === "string" && value.length > 0;
  }

  // Is Tether reachable at all? A request with mode "no-cors" needs no CORS approval, so when
  // it succeeds and the real request failed, the page's origin was refused.
  function reachable() {
    return fetch(BASE + "/sdk/embedded.js", { mode: "no-cors", cache: "no-store", credentials: "omit" })
      .then(function () { return true; }, function () { return false; });
  }

  // Check the token and this page's origin before drawing anything: GET /sdk/me from this
  // page is refused by CORS unless the token's environment lists this origin.
  function verifyToken(token) {
    return fetch(BASE + "/sdk/me", {
      headers: { Authorization: "Bearer " + token, Accept: "application/json" },
      credentials: "omit",
      cache: "no-store"
    }).then(
      function (response) {
        if (response.ok) return null;
        return response.json().then(
          function (body) {
            var code = body && typeof body.code === "string" ? body.code : "http_" + response.status;
            if (code === "insufficient_scope" || code === "missing_credentials") code = "invalid_token";
            return { error: code, detail: body && body.detail };
          },
          function () { return { error: "http_" + response.status }; }
        );
      },
      function () {
        return reachable().then(function (ok) {
          return ok
            ? { error: "origin_not_allowed", detail: "add " + window.location.origin + " to the environment's allowedOrigins" }
            : { error: "network_error", detail: "Tether at " + TETHER_ORIGIN + " cannot be reached" };
        });
      }
    );
  }

  function lockScroll() {
    var root = document.documentElement;
    var saved = root.style.overflow;
    root.style.overflow = "hidden";
    return function () { root.style.overflow = saved; };
  }

  function openModal(init, callback) {
    var iframe = document.createElement("iframe");
    iframe.id = IFRAME_ID;
    iframe.title = "Connect an app";
    iframe.setAttribute("allowtransparency", "true");
    iframe.src = BASE + "/sdk/modal";
    var s = iframe.style;
    s.position = "fixed";
    s.top = "0";
    s.left = "0";
    s.width = "100%";
    s.height = "100%";
    s.border = "0";
    s.margin = "0";
    s.padding = "0";
    s.zIndex = "2147483647";
    s.background = "transparent";
    s.colorScheme = "light";

    var previousFocus = document.activeElement;
    var unlockScroll = lockScroll();
    var finished = false;
    var acknowledged = false;
    var loadTimer = null;
    var resendTimer = null;

    function close(result) {
      if (finished) return;
      finished = true;
      clearTimeout(loadTimer);
      clearInterval(resendTimer);
      window.removeEventListener("message", onMessage);
      document.removeEventListener("keydown", onKeydown, true);
      if (iframe.parentNode) iframe.parentNode.removeChild(iframe);
      unlockScroll();
      active = null;
      if (previousFocus && typeof previousFocus.focus === "function") {
        try { previousFocus.focus(); } catch (err) { /* gone from the page */ }
      }
      if (!result.success && result.error !== "cancelled") log(result.error);
      deliver(callback, result);
    }

    function onMessage(event) {
      if (event.origin !== TETHER_ORIGIN || event.source !== iframe.contentWindow) return;
      var data = event.data;
      if (data && data.type === "tether:started") {
        acknowledged = true;
        clearInterval(resendTimer);
        return;
      }
      if (!data || data.type !== "tether:result") return;
      var result = { success: data.success === true };
      if (result.success) {
        if (!isNonEmptyString(data.installationId)) return;
        result.installationId = data.installationId;
        if (Array.isArray(data.installationIds)) result.installationIds = data.installationIds.slice();
      } else {
        result.error = isNonEmptyString(data.error) ? data.error : "unknown_error";
        if (isNonEmptyString(data.installationId)) result.installationId = data.installationId;
      }
      close(result);
    }

    // Keys go to the iframe while it has focus; this catches Escape if focus is still here.
    function onKeydown(event) {
      if (event.key === "Escape") {
        event.preventDefault();
        close({ success: false, error: "cancelled" });
      }
    }

    // The init message is sent when the modal has loaded, and again until the modal answers:
    // a message that arrives before the modal listens is lost, and nothing else would notice.
    function sendInit() {
      if (finished || acknowledged || !iframe.contentWindow) return;
      // The browser delivers it only if the iframe's document is on Tether's origin.
      iframe.contentWindow.postMessage(init, TETHER_ORIGIN);
    }
    iframe.addEventListener("load", function () {
      clearTimeout(loadTimer);
      if (finished) return;
      sendInit();
      clearInterval(resendTimer);
      resendTimer = setInterval(sendInit, RESEND_MS);
      setTimeout(function () { clearInterval(resendTimer); }, RESEND_FOR_MS);
      iframe.focus();
    });
    loadTimer = setTimeout(function () {
      close({ success: false, error: "network_error" });
    }, LOAD_TIMEOUT_MS);

    window.addEventListener("message", onMessage);
    document.addEventListener("keydown", onKeydown, true);
    (document.body || document.documentElement).appendChild(iframe);
    active = { close: close };
  }

  function begin(mode, options, needsIntegration) {
    options = options || {};
    var callback = options.callback;
    if (typeof callback !== "function") {
      log(mode + "() needs a callback function to receive the result.");
    }
    if (active) return fail(callback, "modal_already_open");
    if (options.integrationId !== undefined && !isNonEmptyString(options.integrationId)) {
      return fail(callback, "invalid_argument", { detail: "integrationId must be a string" });
    }
    if (needsIntegration && !options.integrationId) {
      return fail(callback, "invalid_argument", { detail: "integrationId is required" });
    }
    if (!userToken) {
      return fail(callback, "token_missing", { detail: "call setToken(jwt) before " + mode + "()" });
    }
    var token = userToken;
    // Holds the place while the token is checked; close() now cancels before anything shows.
    var pending = { cancelled: false, close: function () { pending.cancelled = true; } };
    active = pending;
    verifyToken(token).then(function (problem) {
      if (active === pending) active = null;
      if (pending.cancelled) return deliver(callback, { success: false, error: "cancelled" });
      if (problem) return fail(callback, problem.error, problem.detail ? { detail: problem.detail } : null);
      openModal(
        { type: "tether:init", version: VERSION, mode: mode, token: token, integrationId: options.integrationId || null },
        callback
      );
    });
  }

  var Tether = {
    __tether: true,
    version: VERSION,

    /** The user token your backend got from GET /users/{userId}/token. */
    setToken: function (jwt) {
      if (!isNonEmptyString(jwt) || jwt.split(".").length !== 3) {
        log("setToken() needs the JWT string that GET /users/{userId}/token answered.");
        userToken = null;
        return;
      }
      userToken = jwt;
    },

    /** The publishable key that open() uses when its options name none. */
    setPublishableKey: function (key) {
      publishableKey = isNonEmptyString(key) ? key : null;
    },

    /** Connect an integration; without integrationId, the user picks one from a list. */
    install: function (options) {
      begin("install", options, false);
    },

    /** Re-enter the credentials of an installed integration (or connect it if it is not). */
    authenticate: function (options) {
      begin("authenticate", options, false);
    },

    /** hotglue's launch: the tenant's integrations, with a tenant token your backend signed. */
    open: function (tenantId, options) {
      options = options || {};
      var callback = options.callback;
      var key = options.publishableKey || publishableKey;
      if (active) return fail(callback, "modal_already_open");
      if (!isNonEmptyString(tenantId)) {
        return fail(callback, "invalid_argument", { detail: "open(tenantId, options) needs a tenant id" });
      }
      if (!isNonEmptyString(options.jwtToken)) {
        return fail(callback, "token_missing", { detail: "open() needs options.jwtToken, the tenant token" });
      }
      if (!isNonEmptyString(key)) {
        return fail(callback, "publishable_key_missing", {
          detail: "pass options.publishableKey, call setPublishableKey(), or set data-publishable-key on the script tag"
        });
      }
      openModal(
        {
          type: "tether:init",
          version: VERSION,
          mode: "open",
          tenantId: tenantId,
          tenantToken: options.jwtToken,
          publishableKey: key,
          integrationId: isNonEmptyString(options.integrationId) ? options.integrationId : null
        },
        callback
      );
    },

    /** Close the modal, if one is open; its callback gets {success: false, error: "cancelled"}. */
    close: function () {
      if (active) active.close({ success: false, error: "cancelled" });
    }
  };

  window.Tether = Tether;
  window.Alloy = Tether;
})();
