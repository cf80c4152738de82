// The node panel and the live view. Every piece of text from the run is put into the page with
// textContent, never as markup: summaries, diffs and LLM messages come from guests.
"use strict";
(function () {
  var nodes = {};
  function readNodes() {
    var el = document.getElementById("node-data");
    nodes = el ? JSON.parse(el.textContent) : {};
  }
  function add(parent, tag, text, cls) {
    var el = document.createElement(tag);
    if (text !== undefined && text !== null) el.textContent = String(text);
    if (cls) el.className = cls;
    parent.appendChild(el);
    return el;
  }
  function fmt(v) { return v === null || v === undefined ? "–" : Number(v).toFixed(5); }
  function fuel(v) { return v === null || v === undefined ? "–" : Number(v).toLocaleString("en"); }
  function diffBlock(parent, text) {
    var pre = add(parent, "div", null, "diff");
    text.split("\n").forEach(function (line) {
      var cls = "ctx";
      if (line.startsWith("+++") || line.startsWith("---")) cls = "file";
      else if (line.startsWith("@@")) cls = "hunk";
      else if (line.startsWith("+")) cls = "add";
      else if (line.startsWith("-")) cls = "del";
      add(pre, "span", line === "" ? " " : line, cls);
    });
  }
  function scores(body, n) {
    if (!n.scores.length) return;
    add(body, "h3", "Scores");
    var t = add(body, "table");
    var head = add(t, "tr");
    ["domain", "staged", "train", "validation", "score"].forEach(function (h) { add(head, "th", h); });
    n.scores.forEach(function (s) {
      var row = add(t, "tr");
      add(row, "td", s.domain);
      [s.staged, s.train, s.validation, s.score].forEach(function (v) { add(row, "td", fmt(v)); });
    });
  }
  function transcript(body, n) {
    if (!n.llm.length) return;
    add(body, "h3", "LLM conversation (" + n.llm.length + " exchanges, " + n.llm_wall_ms + " ms)");
    n.llm.forEach(function (x) {
      add(body, "p", x.call + " · " + x.model, "note");
      x.messages.forEach(function (m) {
        var box = add(body, "div", null, "msg");
        add(box, "div", m[0], "role");
        add(box, "pre", m[1]);
      });
      var answer = add(body, "div", null, "msg");
      add(answer, "div", x.tokens ? "answer (" + x.tokens[0] + " in / " + x.tokens[1] + " out tokens)" : "no answer", "role");
      add(answer, "pre", x.answer !== null ? x.answer : x.failure);
    });
  }
  function show(id) {
    var panel = document.getElementById("panel");
    var body = document.getElementById("panel-body");
    var n = nodes[id];
    document.querySelectorAll(".node.selected").forEach(function (el) { el.classList.remove("selected"); });
    if (!n) { panel.hidden = true; return; }
    document.querySelectorAll('.node[data-node="' + id + '"]').forEach(function (el) { el.classList.add("selected"); });
    body.textContent = "";
    body.dataset.node = id;
    add(body, "h2", "Node " + id.slice(0, 12));
    add(body, "p", "generation " + n.generation + ", slot " + n.slot + " · " + n.status + " · score " + fmt(n.score) +
      (n.parent ? " · parent " + n.parent.slice(0, 12) : " · the initial node"), "note");
    if (n.unreadable) add(body, "p", n.unreadable, "note");
    add(body, "h3", "Account");
    add(body, "pre", n.summary || "–", "summary");
    if (n.rationale) add(body, "pre", n.rationale, "rationale");
    add(body, "p", "meta call: " + (n.outcome || "–") + ", " + fuel(n.meta_fuel) + " fuel · evaluation: " +
      fuel(n.eval_fuel) + " fuel · LLM wall time " + n.llm_wall_ms + " ms (the only wall time a run records)", "note");
    scores(body, n);
    if (n.build) { add(body, "h3", "Build"); add(body, "pre", n.build); }
    add(body, "h3", n.parent ? "Change against the parent" + (n.diff_cut ? " (cut)" : "") : "Change");
    if (n.diff) diffBlock(body, n.diff); else add(body, "p", n.parent ? "no change to the source" : "the initial source", "note");
    transcript(body, n);
    panel.hidden = false;
  }
  function fromHash() {
    var m = /^#node=([0-9a-f]{64})$/.exec(location.hash);
    show(m ? m[1] : null);
  }
  document.addEventListener("click", function (e) {
    var g = e.target.closest && e.target.closest("[data-node]");
    if (g) { location.hash = "node=" + g.dataset.node; }
  });
  document.addEventListener("keydown", function (e) {
    var g = e.target.closest && e.target.closest("[data-node]");
    if (g && e.key === "Enter") location.hash = "node=" + g.dataset.node;
  });
  document.getElementById("panel-close").addEventListener("click", function () {
    history.replaceState(null, "", location.pathname + location.search);
    show(null);
  });
  window.addEventListener("hashchange", fromHash);
  readNodes();
  fromHash();
  if (document.body.dataset.live === "true") live();
  function live() {
    var state = document.getElementById("live-state");
    var busy = false, again = false;
    function refresh() {
      if (busy) { again = true; return; }
      busy = true;
      fetch("view", { cache: "no-store" }).then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.text();
      }).then(function (html) {
        var box = document.getElementById("main");
        var scroll = Array.prototype.map.call(box.querySelectorAll(".tree-box"), function (b) { return [b.scrollLeft, b.scrollTop]; });
        box.innerHTML = html;
        box.querySelectorAll(".tree-box").forEach(function (b, i) { if (scroll[i]) { b.scrollLeft = scroll[i][0]; b.scrollTop = scroll[i][1]; } });
        readNodes();
        fromHash();
        state.textContent = "Live: updated " + new Date().toLocaleTimeString();
      }).catch(function (e) { state.textContent = "Live: " + e.message; })
        .finally(function () { busy = false; if (again) { again = false; refresh(); } });
    }
    var source = new EventSource("events");
    source.addEventListener("log", refresh);
    source.onerror = function () { state.textContent = "Live: reconnecting…"; };
  }
})();
