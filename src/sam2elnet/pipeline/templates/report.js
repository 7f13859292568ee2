/* sam2elnet report: table sorting / filtering, full-size viewer with layer toggles. No dependencies. */
(function () {
  "use strict";
  var table = document.getElementById("items");
  var body = table ? table.tBodies[0] : null;

  /* ---- sorting: click a header; numbers numerically, empty cells always last ---- */
  function sortBy(th) {
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var numeric = th.getAttribute("data-type") === "num";
    var asc = th.getAttribute("aria-sort") !== "ascending";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[col].getAttribute("data-v"), y = b.cells[col].getAttribute("data-v");
      if (x === "" && y === "") return 0;
      if (x === "") return 1;
      if (y === "") return -1;
      var d = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y, undefined, {numeric: true});
      return asc ? d : -d;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
  }
  if (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      if (th.getAttribute("data-type") !== "none") {
        th.addEventListener("click", function () { sortBy(th); });
      }
    });
  }

  /* ---- filtering ---- */
  function val(id) { var e = document.getElementById(id); return e ? e.value : ""; }
  function applyFilter() {
    if (!body) return;
    var name = val("f-name").toLowerCase(), status = val("f-status"), flag = val("f-flag");
    var maxq = parseFloat(val("f-max"));
    var shown = 0;
    Array.prototype.forEach.call(body.rows, function (r) {
      var ok = (!name || r.getAttribute("data-name").toLowerCase().indexOf(name) >= 0) &&
               (!status || r.getAttribute("data-status") === status) &&
               (!flag || r.getAttribute("data-flag") === flag);
      if (ok && !isNaN(maxq)) {
        var q = r.getAttribute("data-predicted");
        ok = q !== "" && parseFloat(q) < maxq;
      }
      r.hidden = !ok;
      if (ok) shown += 1;
    });
    var c = document.getElementById("f-count");
    if (c) c.textContent = shown + " of " + body.rows.length + " shown";
  }
  ["f-name", "f-status", "f-flag", "f-max"].forEach(function (id) {
    var e = document.getElementById(id);
    if (e) { e.addEventListener("input", applyFilter); e.addEventListener("change", applyFilter); }
  });
  applyFilter();

  /* ---- full-size viewer ---- */
  var dlg = document.getElementById("viewer");
  var stack = document.getElementById("v-stack");
  var cards = Array.prototype.slice.call(document.querySelectorAll(".card[data-idx]"));
  var current = -1;
  var KEYS = ["input", "output", "truth", "errors", "prob"];

  function refresh() {
    var img = document.getElementById("layer-image");
    var cls = current >= 0 ? cards[current].getAttribute("data-cls") : "";
    stack.className = "stack" + (img.checked && cls ? " " + cls : "") + (cls ? "" : " noimg") + (stack.getAttribute("data-px") ? " px" : "");
    var op = parseInt(document.getElementById("v-opacity").value, 10) / 100;
    KEYS.forEach(function (k) {
      var box = document.getElementById("layer-" + k), el = document.getElementById("v-" + k);
      el.style.display = box.checked && !box.disabled ? "block" : "none";
      el.style.opacity = String(op);
    });
  }

  function openCard(pos) {
    if (pos < 0 || pos >= cards.length) return;
    current = pos;
    var card = cards[pos];
    var fw = parseInt(card.getAttribute("data-fw"), 10), fh = parseInt(card.getAttribute("data-fh"), 10);
    var maxW = Math.max(200, window.innerWidth * 0.96 - 300), maxH = Math.max(200, window.innerHeight * 0.96 - 110);
    var s = Math.min(maxW / fw, maxH / fh, 4);
    stack.style.width = Math.round(fw * s) + "px";
    stack.style.height = Math.round(fh * s) + "px";
    if (s > 1.5) stack.setAttribute("data-px", "1"); else stack.removeAttribute("data-px");
    KEYS.forEach(function (k) {
      var src = card.querySelector('img[data-layer="' + k + '"]');
      var el = document.getElementById("v-" + k), box = document.getElementById("layer-" + k);
      if (src) { el.src = src.getAttribute("src"); box.disabled = false; }
      else { el.removeAttribute("src"); box.disabled = true; }
      box.parentNode.className = box.disabled ? "off" : "";
    });
    document.getElementById("v-name").textContent = card.querySelector(".nm").textContent;
    document.getElementById("v-meta").textContent = card.querySelector(".hd .m").textContent +
      "  (" + (pos + 1) + " / " + cards.length + ")";
    var paths = document.getElementById("v-paths");
    paths.textContent = "";
    Array.prototype.forEach.call(card.querySelectorAll(".paths a"), function (a) {
      var c = a.cloneNode(true);
      c.textContent = a.textContent + ": " + a.getAttribute("title");
      paths.appendChild(c);
    });
    refresh();
    if (!dlg.open) dlg.showModal();
  }
  function openIdx(idx) {
    for (var i = 0; i < cards.length; i++) {
      if (cards[i].getAttribute("data-idx") === String(idx)) { openCard(i); return true; }
    }
    return false;
  }

  document.addEventListener("click", function (ev) {
    var t = ev.target.closest ? ev.target.closest(".open,.panels,rect.fp") : null;
    if (!t) return;
    var idx = t.getAttribute("data-idx");
    if (!openIdx(idx)) {
      var row = body && body.querySelector('tr[data-idx="' + idx + '"]');
      if (row) row.scrollIntoView({block: "center"});
    }
  });
  ["layer-image"].concat(KEYS.map(function (k) { return "layer-" + k; })).forEach(function (id) {
    document.getElementById(id).addEventListener("change", refresh);
  });
  document.getElementById("v-opacity").addEventListener("input", refresh);
  document.getElementById("v-prev").addEventListener("click", function () { openCard(current - 1); });
  document.getElementById("v-next").addEventListener("click", function () { openCard(current + 1); });
  document.getElementById("v-close").addEventListener("click", function () { dlg.close(); });
  dlg.addEventListener("keydown", function (ev) {
    if (ev.key === "ArrowLeft") openCard(current - 1);
    if (ev.key === "ArrowRight") openCard(current + 1);
  });
})();
