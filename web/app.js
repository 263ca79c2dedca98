/*
 * PsicoIA chat page. Speaks the psicoia.v1 JSON subprotocol on /ws of its own origin
 * (docs/protocol.md). Everything the server sends is rendered with textContent, never as HTML.
 *
 * What the page keeps (docs/protocol.md, "The chat page"):
 *   localStorage   psicoia-token      the resume token of the conversation (greeting/conversation)
 *                  psicoia-helplines  the greeting's helplines, shown also while disconnected
 *                  psicoia-theme      light or dark, when chosen by hand
 *   sessionStorage psicoia-transcript the page's own copy of the bubbles, so a reload shows them
 *                                     at once; the server's transcript (conversation event) wins
 * "Olvidar esta charla" clears the token and the transcript.
 */
(function () {
  "use strict";

  var PROTOCOL = "psicoia.v1";
  var BACKOFF_FIRST_MS = 1000;
  var BACKOFF_MAX_MS = 30000;
  var KEYS = {
    theme: "psicoia-theme",
    token: "psicoia-token",
    helplines: "psicoia-helplines",
    transcript: "psicoia-transcript"
  };
  // Kept so the page still works with a server whose greeting has no `conversational` list.
  var DEFAULT_CONVERSATIONAL = ["answered", "command", "fallback", "goodbye", "offline"];
  // Kinds that mean PsicoIA answers without its language model.
  var LIMITED = { offline: true, fallback: true };

  // Every string the page itself shows (the server's texts come in its events).
  var T = {
    you: "Vos",
    bot: "PsicoIA",
    linesBelow: "los números de acá abajo",
    connecting: "Conectando…",
    reconnecting: "Reconectando…",
    connected: "Conectado",
    offline: "Sin conexión",
    disconnected: "Desconectado",
    limited: "Modo limitado: respondo sin mi modelo de lenguaje, pero sigo acá.",
    typing: "PsicoIA está escribiendo…",
    queued: function (n) {
      return "Hay mucha gente charlando ahora: estás en el lugar " + n + " de la fila. Ya te respondo.";
    },
    lost: function (s) { return "Se perdió la conexión. Vuelvo a intentar en " + s + " s…"; },
    retryNow: "Reintentar ahora",
    connectNow: "Conectar ahora",
    ended: "La charla terminó.",
    startAgain: "Empezar otra charla",
    idleEnded: "La charla se cerró porque pasó un rato sin mensajes.",
    keepTalking: "Seguir charlando",
    takenOver: "Esta charla siguió en otra ventana o dispositivo.",
    continueHere: "Seguir acá",
    backAgain: "Volvimos a conectarnos.",
    newChat: "Empezamos una charla nueva.",
    unanswered: "Esta respuesta no llegó.",
    resend: "Enviar de nuevo",
    inReplyTo: "En respuesta a: ",
    tooLong: "Tu mensaje es muy largo para mí. ¿Me lo contás en partes más cortas?",
    tooLongWide: "Tu mensaje es muy largo para mí: los emojis y algunas letras ocupan más " +
      "lugar. ¿Me lo contás en partes más cortas?",
    counterLabel: function (n, max) { return n + " de " + max + " caracteres"; },
    helplinesTitle: "Líneas de ayuda"
  };

  var $ = function (id) { return document.getElementById(id); };
  var root = document.documentElement;
  var list = $("messages");
  var chat = $("chat");
  var typing = $("typing");
  var typingText = $("typing-text");
  var statusBox = $("status");
  var statusText = $("status-text");
  var modeNote = $("mode");
  var announcer = $("announcer");
  var note = $("connection-note");
  var noteText = $("connection-note-text");
  var reconnectButton = $("reconnect");
  var form = $("composer");
  var input = $("input");
  var sendButton = $("send");
  var counter = $("counter");
  var tooLong = $("too-long");
  var themeButton = $("theme");
  var helplineList = $("helplines");
  var forgetButton = $("forget");
  var forgetConfirm = $("forget-confirm");
  var forgetYes = $("forget-yes");
  var forgetNo = $("forget-no");

  var socket = null;
  var connected = false;
  var ready = false;             // greeted, and any resume answered: the person may write
  var greeting = null;           // the greeting event of this connection
  var resumeRef = null;          // ref of the resume event in flight
  var resumed = false;           // a conversation event answered it
  var forgetRef = null;          // ref of the forget event in flight
  var endedBy = null;            // kind of the notice that ended the conversation
  var maxBytes = 4096;
  var conversational = setOf(DEFAULT_CONVERSATIONAL);
  var pending = {};              // ref -> {item, text, queued, waiting, stream, last}
  var attempt = 0;
  var retryTimer = null;
  var countdownTimer = null;
  var autoScrollTop = -1;        // where the page itself last scrolled the log to
  var encoder = new TextEncoder();
  var segmenter = (window.Intl && Intl.Segmenter) ? new Intl.Segmenter(undefined, { granularity: "grapheme" }) : null;

  function setOf(names) {
    var set = {};
    for (var i = 0; i < names.length; i++) { set[names[i]] = true; }
    return set;
  }

  // --- storage (private mode or full storage: the page works, only forgets) --------------------

  function load(store, key) {
    try { return JSON.parse(store.getItem(key)); } catch (e) { return null; }
  }

  function save(store, key, value) {
    try {
      if (value === null) { store.removeItem(key); } else { store.setItem(key, JSON.stringify(value)); }
    } catch (e) { /* not remembered */ }
  }

  var local = null;
  var session = null;
  try { local = window.localStorage; session = window.sessionStorage; } catch (e) { /* none */ }
  function storedToken() { return local ? load(local, KEYS.token) : null; }
  function storeToken(token) { if (local) { save(local, KEYS.token, token || null); } }

  // The page's own transcript copy: [{role: "user"|"assistant", text, ref, state, crisis}].
  var transcript = (session && load(session, KEYS.transcript)) || { next: 1, turns: [] };
  if (!transcript.turns) { transcript = { next: 1, turns: [] }; }
  function keepTranscript() { if (session) { save(session, KEYS.transcript, transcript); } }

  // --- theme ----------------------------------------------------------------------------------

  var darkQuery = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;

  function storedTheme() {
    try { return localStorage.getItem(KEYS.theme); } catch (e) { return null; }
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
    try { localStorage.setItem(KEYS.theme, next); } catch (e) { /* private mode: not remembered */ }
    applyTheme(next);
  });

  // --- helplines (header panel, crisis replies) -----------------------------------------------

  // One entry as text with its phone numbers as tel: links:
  // {"text": "España: 024", "phones": [{"shown": "024", "tel": "024"}]}.
  function helplineNode(entry, tag) {
    var node = document.createElement(tag);
    var text = String(entry.text || "");
    var at = 0;
    var phones = entry.phones || [];
    for (var i = 0; i < phones.length; i++) {
      var shown = String(phones[i].shown || "");
      var tel = String(phones[i].tel || "").replace(/[^\d+]/g, "");
      var found = shown ? text.indexOf(shown, at) : -1;
      if (found < 0 || !tel) { continue; }
      node.appendChild(document.createTextNode(text.slice(at, found)));
      var link = document.createElement("a");
      link.href = "tel:" + tel;
      link.textContent = shown;
      node.appendChild(link);
      at = found + shown.length;
    }
    node.appendChild(document.createTextNode(text.slice(at)));
    return node;
  }

  function validHelplines(entries) {
    if (!Array.isArray(entries)) { return null; }
    var good = entries.filter(function (entry) { return entry && typeof entry.text === "string"; });
    return good.length ? good : null;
  }

  // The header panel: the greeting's helplines, else the stored copy, else index.html's list.
  function showHelplines(entries) {
    entries = validHelplines(entries);
    if (!entries) { return; }
    helplineList.textContent = "";
    entries.forEach(function (entry) { helplineList.appendChild(helplineNode(entry, "li")); });
  }

  showHelplines(local && load(local, KEYS.helplines));

  // --- rendering (textContent only) -----------------------------------------------------------

  function nearBottom() {
    return chat.scrollHeight - chat.scrollTop - chat.clientHeight < 80;
  }

  // Is the reader where the page left them (following the conversation)?
  function following() {
    return nearBottom() || Math.abs(chat.scrollTop - autoScrollTop) < 2;
  }

  function scrollTo(top) {
    chat.scrollTop = top;
    autoScrollTop = chat.scrollTop;
  }

  // Follow the conversation, but never scroll past the first line of `item` (a long greeting or
  // reply on a small screen is read from its start).
  function follow(stick, item) {
    if (!stick) { return; }
    var target = chat.scrollHeight - chat.clientHeight;
    if (item) {
      var top = item.getBoundingClientRect().top - chat.getBoundingClientRect().top +
        chat.scrollTop - 16;  // 16 px: the log's fade at its top edge
      target = Math.min(target, Math.max(0, top));
    }
    scrollTo(target);
  }

  // The log changed size (a bar appeared, the keyboard opened): keep the last message in view.
  var lastHeight = chat.clientHeight;
  var wasFollowing = true;
  chat.addEventListener("scroll", function () { wasFollowing = following(); }, { passive: true });
  if (window.ResizeObserver) {
    new ResizeObserver(function () {
      if (chat.clientHeight !== lastHeight) {
        lastHeight = chat.clientHeight;
        if (wasFollowing) { scrollTo(chat.scrollHeight); }
      }
    }).observe(chat);
  }

  function bubble(kind, text, who, extraClass) {
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
    return item;
  }

  // Insert `item` after `after` (the message it answers), else at the end; follow the log.
  function place(item, after) {
    var stick = following();
    if (after && after.parentNode === list) {
      list.insertBefore(item, after.nextSibling);
    } else {
      list.appendChild(item);
    }
    follow(stick, item.classList.contains("user") ? null : item);
    wasFollowing = following();
    return item;
  }

  function addMessage(kind, text, who, extraClass) {
    return place(bubble(kind, text, who, extraClass));
  }

  // Said once to screen readers (the log itself is not a live region: the person's own
  // messages are not read back, and a streamed reply is read once, when it is complete).
  function announce(text) {
    var line = document.createElement("p");
    line.textContent = text;
    announcer.appendChild(line);
    while (announcer.childNodes.length > 3) { announcer.removeChild(announcer.firstChild); }
  }

  function setStatus(state, text) {
    statusBox.setAttribute("data-state", state);
    statusText.textContent = text;
  }

  function setLimited(on) {
    if (modeNote.hidden === !on) { return; }
    modeNote.hidden = !on;
  }

  function showNote(text, buttonText) {
    var stick = following();
    noteText.textContent = text;
    reconnectButton.textContent = buttonText || T.connectNow;
    note.hidden = false;
    if (stick) { scrollTo(chat.scrollHeight); }
  }

  function hideNote() { note.hidden = true; }

  function updateTyping() {
    var stick = following();
    var first = null;
    for (var ref in pending) {
      if (Object.prototype.hasOwnProperty.call(pending, ref) && !pending[ref].stream) {
        first = pending[ref];
        break;
      }
    }
    if (!first) {
      typing.hidden = true;
      return;
    }
    typingText.textContent = first.queued && !first.waiting ? T.queued(first.queued) : T.typing;
    typing.hidden = false;
    if (stick) { scrollTo(chat.scrollHeight); }
  }

  // --- transcript ------------------------------------------------------------------------------

  function remember(turn) {
    transcript.turns.push(turn);
    if (transcript.turns.length > 200) { transcript.turns.splice(0, transcript.turns.length - 200); }
    keepTranscript();
    return turn;
  }

  function turnOf(ref) {
    for (var i = transcript.turns.length - 1; i >= 0; i--) {
      if (transcript.turns[i].ref === ref && transcript.turns[i].role === "user") { return transcript.turns[i]; }
    }
    return null;
  }

  function userBubble(text, ref) {
    var item = bubble("user", text, T.you);
    if (ref) { item.setAttribute("data-ref", ref); }
    return item;
  }

  function replyBubble(text, ref, crisis, limited) {
    var item = bubble("bot", text, T.bot, (limited ? "limited" : "") + (crisis ? " crisis" : ""));
    if (ref) { item.setAttribute("data-ref", ref); }
    return item;
  }

  // A message whose final event never came: marked, with one tap to send it again.
  function markUnanswered(item, text) {
    if (!item || item.querySelector(".unanswered-note")) { return; }
    item.classList.add("unanswered");
    var box = document.createElement("span");
    box.className = "unanswered-note";
    var label = document.createElement("span");
    label.textContent = T.unanswered + " ";
    var again = document.createElement("button");
    again.type = "button";
    again.className = "link-button resend";
    again.textContent = T.resend;
    again.disabled = !ready;
    again.addEventListener("click", function () {
      if (!ready) { return; }
      var ref = item.getAttribute("data-ref");
      transcript.turns = transcript.turns.filter(function (turn) { return turn.ref !== ref || turn.role !== "user"; });
      keepTranscript();
      if (item.parentNode) { item.parentNode.removeChild(item); }
      sendText(text);
    });
    box.appendChild(label);
    box.appendChild(again);
    item.appendChild(box);
  }

  function refreshResendButtons() {
    var buttons = list.querySelectorAll("button.resend");
    for (var i = 0; i < buttons.length; i++) { buttons[i].disabled = !ready; }
  }

  // Redraw the log from turns (the stored copy, or the server's transcript).
  function drawTurns(turns) {
    list.textContent = "";
    var lastUser = null;
    turns.forEach(function (turn) {
      if (turn.role === "user") {
        lastUser = list.appendChild(userBubble(turn.text, turn.ref));
        if (turn.state === "pending" || turn.state === "unanswered") {
          turn.state = "unanswered";
          markUnanswered(lastUser, turn.text);
        }
      } else if (turn.role === "assistant") {
        var lines = validHelplines(turn.helplines);
        var item = replyBubble(lines ? beforeLines(turn.text, lines) : turn.text, turn.ref,
                               turn.crisis, false);
        if (lines) { item.appendChild(helplineBox(lines, turn.tier)); }
        list.appendChild(item);
      }
    });
    keepTranscript();
    scrollTo(chat.scrollHeight);
    wasFollowing = true;
  }

  function fold(text) {
    return String(text).split(/\r\n|\r|\n/).map(function (line) { return line.trim(); })
      .filter(function (line) { return line; }).join(" ");
  }

  // The conversation event: the server's transcript wins; messages of ours that it never
  // answered come after it, marked.
  function redraw(turns) {
    var lost = transcript.turns.filter(function (turn) {
      return turn.role === "user" && (turn.state === "pending" || turn.state === "unanswered");
    });
    // Crisis replies we showed keep their look and their helplines (the server's turn is the
    // model's words, without the resources line).
    var crises = transcript.turns.filter(function (turn) { return turn.role === "assistant" && turn.crisis; });
    var fresh = [];
    (turns || []).forEach(function (turn) {
      if ((turn.role === "user" || turn.role === "assistant") && typeof turn.text === "string") {
        var shown = { role: turn.role, text: turn.text };
        for (var i = 0; turn.role === "assistant" && turn.text && i < crises.length; i++) {
          if (crises[i].text.indexOf(turn.text) === 0) { shown = crises[i]; break; }
        }
        fresh.push(shown);
      }
    });
    lost = lost.filter(function (turn) {
      for (var i = 0; i < fresh.length - 1; i++) {
        if (fresh[i].role === "user" && fresh[i].text === fold(turn.text) &&
            fresh[i + 1].role === "assistant") { return false; }
      }
      return true;
    });
    transcript.turns = fresh.concat(lost.map(function (turn) {
      return { role: "user", text: turn.text, ref: turn.ref, state: "unanswered" };
    }));
    drawTurns(transcript.turns);
  }

  // --- composer -------------------------------------------------------------------------------

  // Characters as a person counts them: grapheme clusters ("ñandú 😀" is 7), else code points.
  function characters(text) {
    if (segmenter) {
      var count = 0;
      var it = segmenter.segment(text)[Symbol.iterator]();
      while (!it.next().done) { count += 1; }
      return count;
    }
    return Array.from(text).length;
  }

  function byteLength(text) { return encoder.encode(text).length; }

  function updateComposer() {
    var chars = characters(input.value);
    var bytes = byteLength(input.value);
    counter.textContent = chars + " / " + maxBytes;
    counter.setAttribute("aria-label", T.counterLabel(chars, maxBytes));
    // The server's limit is in UTF-8 bytes: a text of few characters may still be over it.
    var over = bytes > maxBytes;
    counter.setAttribute("data-level", over ? "over" : (bytes > maxBytes * 0.9 ? "near" : "ok"));
    input.setAttribute("aria-invalid", over ? "true" : "false");
    if (over) {
      tooLong.textContent = chars > maxBytes ? T.tooLong : T.tooLongWide;
      tooLong.hidden = false;
    } else {
      tooLong.hidden = true;
    }
    sendButton.disabled = !(connected && ready) || over || !input.value.trim();
    forgetButton.disabled = !(connected && ready);
    autoGrow();
  }

  function autoGrow() {
    input.style.height = "auto";
    input.style.height = Math.min(input.scrollHeight + 2, 160) + "px";
  }

  function newRef(prefix) {
    var ref = prefix + transcript.next++;
    keepTranscript();
    return ref;
  }

  function sendText(text) {
    var ref = newRef("m");
    socket.send(JSON.stringify({ type: "message", text: text, ref: ref }));
    var item = place(userBubble(text, ref));
    var ending = text.trim().toLowerCase() === "salir";
    remember({ role: "user", text: text, ref: ref, state: ending ? "done" : "pending" });
    pending[ref] = { item: item, text: text, queued: null, waiting: false, stream: null, last: item };
    updateTyping();
  }

  function send() {
    var text = input.value;
    if (sendButton.disabled || !text.trim()) { return; }
    sendText(text);
    input.value = "";
    updateComposer();
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

  // --- forget ---------------------------------------------------------------------------------

  function closeForget() {
    forgetConfirm.hidden = true;
    forgetButton.setAttribute("aria-expanded", "false");
  }

  forgetButton.addEventListener("click", function () {
    forgetConfirm.hidden = false;
    forgetButton.setAttribute("aria-expanded", "true");
    forgetNo.focus();
  });
  forgetNo.addEventListener("click", function () { closeForget(); forgetButton.focus(); });
  forgetConfirm.addEventListener("keydown", function (event) {
    if (event.key === "Escape") { closeForget(); forgetButton.focus(); }
  });
  forgetYes.addEventListener("click", function () {
    closeForget();
    if (!(connected && ready)) { return; }
    forgetRef = newRef("f");
    ready = false;
    // What the page stored goes when the server confirms with the new conversation (its
    // conversation event); if the server refuses (its notice says why), nothing changes.
    socket.send(JSON.stringify({ type: "forget", ref: forgetRef }));
    updateComposer();
    input.focus();
  });

  // --- server events --------------------------------------------------------------------------

  function pendingOf(event) {
    var ref = event.ref;
    return (ref !== null && ref !== undefined && Object.prototype.hasOwnProperty.call(pending, ref)) ? pending[ref] : null;
  }

  // The reply to message `ref` takes the place of its streamed bubble, or comes right after the
  // message (and its earlier replies), so each reply stays next to what it answers.
  function placeReply(event, item) {
    var entry = pendingOf(event);
    if (entry && entry.stream && entry.stream.parentNode === list) {
      list.replaceChild(item, entry.stream);
      follow(following(), item);
    } else {
      place(item, entry ? entry.last : null);
    }
    if (entry) { entry.last = item; entry.stream = null; }
    return item;
  }

  function settle(event, answer) {
    var entry = pendingOf(event);
    if (entry) {
      var turn = turnOf(event.ref);
      if (turn) { turn.state = "done"; }
      if (answer) { remember(answer); } else { keepTranscript(); }
      delete pending[event.ref];
    }
    updateTyping();
  }

  function helplineBox(entries, tier) {
    var box = document.createElement("ul");
    box.className = "helplines" + (tier === "acute" ? " acute" : "");
    box.setAttribute("aria-label", T.helplinesTitle);
    entries.forEach(function (entry) { box.appendChild(helplineNode(entry, "li")); });
    return box;
  }

  // A crisis text (or /recursos) carries its helplines, which the list below it shows as
  // links. When they end the text, the text is shown up to them; when more follows (the emergency reply names
  // them mid-sentence), they are replaced by a pointer to the list, so no number shows twice.
  // When they are not all there, one after the other, the whole text is shown: nothing the
  // server said is ever dropped.
  function beforeLines(text, lines) {
    var at = text.indexOf(lines[0].text);
    if (at < 0) { return text; }
    var end = at;
    for (var i = 0; i < lines.length; i++) {
      var found = text.indexOf(lines[i].text, end);
      if (found < 0 || (i > 0 && !/^[\s.;,]*$/.test(text.slice(end, found)))) { return text; }
      end = found + lines[i].text.length;
    }
    var rest = text.slice(end);
    if (/^[\s.;,]*$/.test(rest)) {
      return at > 0 ? text.slice(0, at).replace(/\s+$/, "") : text;
    }
    return text.slice(0, at) + T.linesBelow + rest;
  }

  // A reply or conversational notice: PsicoIA talking.
  function showReply(event, limited) {
    var crisis = event.crisis === true;
    var lines = validHelplines(event.helplines);  // a crisis reply's, or /recursos
    var item = replyBubble(lines ? beforeLines(event.text, lines) : event.text, event.ref, crisis, limited);
    if (lines) { item.appendChild(helplineBox(lines, event.tier)); }
    if (crisis) {
      // Announced at once by screen readers, not after whatever else is being read (inside
      // the list item, which keeps its list semantics).
      var alert = document.createElement("div");
      alert.className = "alert";
      alert.setAttribute("role", "alert");
      while (item.childNodes.length > 1) { alert.appendChild(item.childNodes[1]); }
      item.appendChild(alert);
    } else {
      announce(event.text);
    }
    placeReply(event, item);
    var answer = { role: "assistant", text: event.text, ref: event.ref, crisis: crisis };
    if (lines) { answer.helplines = lines; answer.tier = event.tier; }
    settle(event, pendingOf(event) ? answer : null);
  }

  function showNotice(event, kind) {
    var item = bubble(kind, event.text);
    if (event.ref !== null && event.ref !== undefined) { item.setAttribute("data-ref", event.ref); }
    announce(event.text);
    placeReply(event, item);
    settle(event, null);
  }

  function showGreeting(lines) {
    lines = lines.slice();
    // "Usuario-N conectado." as a quiet divider, the rest as one greeting bubble.
    addMessage("divider", lines.shift() || "");
    if (lines.length) { addMessage("greeting", lines.join("\n"), T.bot); }
  }

  function becomeReady() {
    ready = true;
    refreshResendButtons();
    updateComposer();
  }

  // The final event of a resume or forget we sent.
  function commandAnswered(event) {
    if (event.ref === resumeRef) {
      resumeRef = null;
      if (!resumed) {
        // Unknown, expired or refused: this connection's new conversation goes on.
        storeToken(greeting.resume_token);
        transcript.turns = [];
        keepTranscript();
        addMessage("divider", T.newChat);
        addMessage("notice", event.text);
        showGreeting(greeting.lines || []);
      } else {
        addMessage("divider", event.text);
      }
      announce(event.text);
    } else {
      forgetRef = null;
      addMessage("notice", event.text);
      announce(event.text);
    }
    becomeReady();
  }

  function isCommandRef(ref) {
    return ref !== null && ref !== undefined && (ref === resumeRef || ref === forgetRef);
  }

  var handlers = {
    greeting: function (event) {
      greeting = event;
      if (typeof event.max_message_bytes === "number") { maxBytes = event.max_message_bytes; }
      if (Array.isArray(event.conversational)) { conversational = setOf(event.conversational); }
      var lines = validHelplines(event.helplines);
      if (lines) {
        if (local) { save(local, KEYS.helplines, lines); }
        showHelplines(lines);
      }
      var token = storedToken();
      if (token && event.resume_token && token !== event.resume_token) {
        // Continue the stored conversation; the conversation event redraws it.
        resumeRef = newRef("r");
        resumed = false;
        socket.send(JSON.stringify({ type: "resume", token: token, ref: resumeRef }));
        if (list.childNodes.length) { addMessage("divider", T.backAgain); }
        updateComposer();
        return;
      }
      storeToken(event.resume_token);
      if (!token || !list.childNodes.length) {
        transcript.turns = [];
        keepTranscript();
        list.textContent = "";
        showGreeting(event.lines || []);
      }
      becomeReady();
    },
    conversation: function (event) {
      // It answers the resume or forget in flight (its ref may be null: a stored conversation
      // is read asynchronously, after the event that asked for it).
      storeToken(event.resume_token);
      if (resumeRef !== null) { resumed = true; }
      if (forgetRef !== null) {
        transcript = { next: transcript.next, turns: [] };
        pending = {};
        updateTyping();
      }
      redraw(event.transcript);
    },
    queued: function (event) {
      var entry = pendingOf(event);
      if (entry) { entry.queued = event.position; }
      updateTyping();
    },
    waiting: function (event) {
      var entry = pendingOf(event);
      if (entry) { entry.waiting = true; }
      updateTyping();
    },
    reply_delta: function (event) {
      var entry = pendingOf(event);
      if (!entry || typeof event.text !== "string") { return; }
      if (!entry.stream) {
        // The growing reply: busy (not read out) until the final reply replaces it.
        entry.stream = replyBubble("", event.ref, false, false);
        entry.stream.classList.add("streaming");
        entry.stream.setAttribute("aria-busy", "true");
        place(entry.stream, entry.last);
        entry.last = entry.stream;
        updateTyping();
      }
      var stick = following();
      entry.stream.querySelector(".text").textContent += event.text;
      if (stick) { follow(true, entry.stream); }
    },
    reply: function (event) {
      setLimited(false);
      showReply(event, false);
    },
    notice: function (event) {
      if (isCommandRef(event.ref)) {
        settle(event, null);
        commandAnswered(event);
        return;
      }
      if (event.kind === "taken_over" || event.kind === "goodbye" || event.kind === "idle_timeout") {
        endedBy = event.kind;
      }
      if (conversational[event.kind] || event.crisis === true) {
        // Still PsicoIA talking, perhaps without the model (said once, in the status line).
        var limited = !!LIMITED[event.kind];
        if (limited) { setLimited(true); }
        showReply(event, limited);
      } else {
        showNotice(event, "notice");
      }
    },
    error: function (event) {
      if (isCommandRef(event.ref)) {
        settle(event, null);
        commandAnswered(event);
      } else if (event.crisis === true) {
        // Something failed, but the text is the support line and the resources: show them.
        showReply(event, true);
      } else {
        showNotice(event, "error");
      }
    }
    // Unknown event types (and accepted, which changes nothing here) are ignored.
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
    endedBy = null;
    setStatus("connecting", attempt ? T.reconnecting : T.connecting);
    try {
      socket = new WebSocket(socketUrl(), PROTOCOL);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    socket.addEventListener("open", function () {
      connected = true;
      attempt = 0;
      setStatus("open", T.connected);
      updateComposer();
    });
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", function (event) {
      var wasGreeted = greeting !== null;
      connected = false;
      ready = false;
      greeting = null;
      resumeRef = null;
      forgetRef = null;
      socket = null;
      // Messages whose final event never came: marked now, one tap sends them again.
      Object.keys(pending).forEach(function (ref) {
        var entry = pending[ref];
        if (entry.stream && entry.stream.parentNode) { entry.stream.parentNode.removeChild(entry.stream); }
        var turn = turnOf(ref);
        if (turn && turn.state === "pending") {
          turn.state = "unanswered";
          markUnanswered(entry.item, entry.text);
        }
      });
      keepTranscript();
      pending = {};
      refreshResendButtons();
      updateTyping();
      updateComposer();
      if (event.code === 1000 && wasGreeted) {
        setStatus("closed", T.disconnected);
        if (endedBy === "taken_over") {
          showNote(T.takenOver, T.continueHere);
        } else if (endedBy === "idle_timeout") {
          showNote(T.idleEnded, T.keepTalking);
        } else {
          // After salir the next chat starts fresh (the code in the greeting still works).
          storeToken(null);
          transcript.turns = [];
          keepTranscript();
          showNote(T.ended, T.startAgain);
        }
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
    setStatus("closed", T.offline);
    var tick = function () {
      var seconds = Math.max(1, Math.ceil((until - Date.now()) / 1000));
      showNote(T.lost(seconds), T.retryNow);
    };
    tick();
    countdownTimer = setInterval(tick, 1000);
    retryTimer = setTimeout(connect, delay);
  }

  reconnectButton.addEventListener("click", function () {
    attempt = 0;
    if (!socket) { connect(); }
  });

  // Reconnect at once when the device comes back online.
  window.addEventListener("online", function () { if (!socket) { connect(); } });

  // A reload shows the stored copy at once; the server's transcript replaces it when it comes.
  if (storedToken() && transcript.turns.length) { drawTurns(transcript.turns); }
  updateComposer();
  connect();
  input.focus();
}());
