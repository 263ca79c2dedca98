/*
 * PsicoIA chat page. Speaks the psicoia.v1 JSON subprotocol on /ws of its own origin
 * (docs/protocol.md). Everything the server sends is rendered with textContent, never as HTML.
 */
(function () {
  "use strict";

  var PROTOCOL = "psicoia.v1";
  var BACKOFF_FIRST_MS = 1000;
  var BACKOFF_MAX_MS = 30000;
  var THEME_KEY = "psicoia-theme";
  // Close codes after which we do not reconnect by ourselves: the conversation ended.
  var ENDED = { 1000: true };
  // Notice kinds that are part of the conversation (shown as PsicoIA's replies).
  var CONVERSATIONAL = { offline: true, fallback: true, command: true };

  // The server marks replies that carry the crisis resources (docs/protocol.md, "crisis").
  function isCrisis(event) { return event.crisis === true; }

  var $ = function (id) { return document.getElementById(id); };
  var root = document.documentElement;
  var list = $("messages");
  var chat = $("chat");
  var typing = $("typing");
  var typingText = $("typing-text");
  var statusBox = $("status");
  var statusText = $("status-text");
  var note = $("connection-note");
  var noteText = $("connection-note-text");
  var reconnectButton = $("reconnect");
  var form = $("composer");
  var input = $("input");
  var sendButton = $("send");
  var counter = $("counter");
  var tooLong = $("too-long");
  var themeButton = $("theme");

  var socket = null;
  var connected = false;
  var greeted = false;
  var everGreeted = false;
  var maxBytes = 4096;
  var nextRef = 1;
  var pending = {};        // ref -> {queued: position or null, waiting: bool}
  var attempt = 0;
  var retryTimer = null;
  var countdownTimer = null;
  var encoder = new TextEncoder();

  // --- theme ----------------------------------------------------------------------------------

  var darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function storedTheme() {
    try { return localStorage.getItem(THEME_KEY); } catch (e) { return null; }
  }

  function applyTheme(theme) {
    root.setAttribute("data-theme", theme);
    var dark = theme === "dark";
    themeButton.setAttribute("aria-pressed", dark ? "true" : "false");
    themeButton.setAttribute("aria-label", dark ? "Tema oscuro activado" : "Tema oscuro");
  }

  applyTheme(storedTheme() || (darkQuery && darkQuery.matches ? "dark" : "light"));
  if (darkQuery && darkQuery.addEventListener) {
    darkQuery.addEventListener("change", function (event) {
      if (!storedTheme()) { applyTheme(event.matches ? "dark" : "light"); }
    });
  }
  themeButton.addEventListener("click", function () {
    var next = root.getAttribute("data-theme") === "dark" ? "light" : "dark";
    try { localStorage.setItem(THEME_KEY, next); } catch (e) { /* private mode: not remembered */ }
    applyTheme(next);
  });

  // --- rendering (textContent only) -----------------------------------------------------------

  function nearBottom() {
    return chat.scrollHeight - chat.scrollTop - chat.clientHeight < 80;
  }

  function follow(wasNearBottom) {
    if (wasNearBottom) { chat.scrollTop = chat.scrollHeight; }
  }

  function addMessage(kind, text, who, extraClass) {
    var stick = nearBottom();
    var item = document.createElement("li");
    item.className = "msg " + kind + (extraClass ? " " + extraClass : "");
    if (who) {
      var label = document.createElement("span");
      label.className = "who";
      label.textContent = who;
      item.appendChild(label);
    }
    var body = document.createElement("span");
    body.className = "text";
    body.textContent = text;
    item.appendChild(body);
    if (extraClass && /(^| )crisis( |$)/.test(extraClass)) {
      // Announced at once by screen readers, not after whatever else is being read.
      item.setAttribute("role", "alert");
    }
    list.appendChild(item);
    follow(stick);
    return item;
  }

  function setStatus(state, text) {
    statusBox.setAttribute("data-state", state);
    statusText.textContent = text;
  }

  function showNote(text, buttonText) {
    noteText.textContent = text;
    reconnectButton.textContent = buttonText || "Conectar ahora";
    note.hidden = false;
  }

  function hideNote() { note.hidden = true; }

  function updateTyping() {
    var stick = nearBottom();
    var refs = Object.keys(pending);
    if (!refs.length) {
      typing.hidden = true;
      return;
    }
    var first = pending[refs[0]];
    if (first.queued && !first.waiting) {
      typingText.textContent = "Hay mucha gente charlando ahora: estás en el lugar " +
        first.queued + " de la fila. Ya te respondo.";
    } else {
      typingText.textContent = "PsicoIA está escribiendo…";
    }
    typing.hidden = false;
    follow(stick);
  }

  // --- composer -------------------------------------------------------------------------------

  function byteLength(text) { return encoder.encode(text).length; }

  function updateComposer() {
    var bytes = byteLength(input.value);
    counter.textContent = bytes + " / " + maxBytes;
    var over = bytes > maxBytes;
    counter.setAttribute("data-level", over ? "over" : (bytes > maxBytes * 0.9 ? "near" : "ok"));
    input.setAttribute("aria-invalid", over ? "true" : "false");
    if (over) {
      tooLong.textContent = "Tu mensaje es muy largo: el máximo es " + maxBytes +
        " bytes. Probá contarlo en partes.";
      tooLong.hidden = false;
    } else {
      tooLong.hidden = true;
    }
    sendButton.disabled = !(connected && greeted) || over || !input.value.trim();
    autoGrow();
  }

  function autoGrow() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 160) + "px";
  }

  function send() {
    var text = input.value;
    if (sendButton.disabled || !text.trim()) { return; }
    var ref = "m" + nextRef++;
    socket.send(JSON.stringify({ type: "message", text: text, ref: ref }));
    addMessage("user", text, "Vos");
    if (text.trim().toLowerCase() !== "salir") {
      pending[ref] = { queued: null, waiting: false };
    }
    input.value = "";
    updateComposer();
    updateTyping();
    input.focus();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    send();
  });
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      send();
    }
  });
  input.addEventListener("input", updateComposer);

  // --- server events --------------------------------------------------------------------------

  function settle(ref) {
    if (ref !== null && ref !== undefined && pending[ref]) { delete pending[ref]; }
    updateTyping();
  }

  var handlers = {
    greeting: function (event) {
      greeted = true;
      if (typeof event.max_message_bytes === "number") { maxBytes = event.max_message_bytes; }
      var lines = (event.lines || []).slice();
      if (everGreeted) {
        addMessage("divider", "Volvimos a conectarnos. Es una charla nueva: no recuerdo lo anterior.");
      } else {
        // "Usuario-N conectado." as a quiet divider, the rest as one greeting bubble.
        addMessage("divider", lines.shift() || "");
        if (lines.length) { addMessage("greeting", lines.join("\n"), "PsicoIA"); }
      }
      everGreeted = true;
      updateComposer();
    },
    accepted: function () { /* the ref is already pending */ },
    queued: function (event) {
      var entry = pending[event.ref];
      if (entry) { entry.queued = event.position; }
      updateTyping();
    },
    waiting: function (event) {
      var entry = pending[event.ref];
      if (entry) { entry.waiting = true; }
      updateTyping();
    },
    reply: function (event) {
      addMessage("bot", event.text, "PsicoIA", isCrisis(event) ? "crisis" : "");
      settle(event.ref);
    },
    notice: function (event) {
      var crisis = isCrisis(event);
      if (CONVERSATIONAL[event.kind] || crisis) {
        // Still PsicoIA talking, only without the model: a reply bubble, marked as such.
        var limited = event.kind !== "command";
        var classes = (limited ? "limited" : "") + (crisis ? " crisis" : "");
        addMessage("bot", event.text, limited ? "PsicoIA · modo limitado" : "PsicoIA", classes);
      } else {
        addMessage("notice", event.text);
      }
      settle(event.ref);
    },
    error: function (event) {
      if (isCrisis(event)) {
        // Something failed, but the text is the support line and the resources: show them.
        addMessage("bot", event.text, "PsicoIA · modo limitado", "limited crisis");
      } else {
        addMessage("error", event.text);
      }
      settle(event.ref);
    }
    // reply_delta (streamed partial replies) is reserved; unknown events are ignored.
  };

  function onMessage(message) {
    var event;
    try { event = JSON.parse(message.data); } catch (e) { return; }
    if (!event || typeof event.type !== "string") { return; }
    var handler = Object.prototype.hasOwnProperty.call(handlers, event.type) && handlers[event.type];
    if (handler) { handler(event); }
  }

  // --- connection -----------------------------------------------------------------------------

  function socketUrl() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
  }

  function connect() {
    clearTimeout(retryTimer);
    clearInterval(countdownTimer);
    hideNote();
    setStatus("connecting", attempt ? "Reconectando…" : "Conectando…");
    try {
      socket = new WebSocket(socketUrl(), PROTOCOL);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    socket.addEventListener("open", function () {
      connected = true;
      attempt = 0;
      setStatus("open", "Conectado");
      updateComposer();
    });
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", function (event) {
      var wasGreeted = greeted;
      connected = false;
      greeted = false;
      socket = null;
      pending = {};
      updateTyping();
      updateComposer();
      if (ENDED[event.code] && wasGreeted) {
        setStatus("closed", "Desconectado");
        showNote("La charla terminó.", "Empezar otra charla");
        return;
      }
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    attempt += 1;
    var delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * Math.pow(2, attempt - 1));
    delay = Math.round(delay * (0.8 + Math.random() * 0.4));
    var until = Date.now() + delay;
    setStatus("closed", "Sin conexión");
    var tick = function () {
      var seconds = Math.max(1, Math.ceil((until - Date.now()) / 1000));
      showNote("Se perdió la conexión. Vuelvo a intentar en " + seconds + " s…", "Reintentar ahora");
    };
    tick();
    countdownTimer = setInterval(tick, 1000);
    retryTimer = setTimeout(connect, delay);
  }

  reconnectButton.addEventListener("click", function () {
    attempt = 0;
    connect();
  });

  // Reconnect at once when the device comes back online.
  window.addEventListener("online", function () { if (!socket) { connect(); } });

  updateComposer();
  connect();
  input.focus();
}());
