/* Moderator console: keyboard decisions, seeking, click-to-reveal, release on leaving, bulk selection.
   Plain JS, no build. Everything here is an enhancement: the pages work as forms and links without it. */
(function () {
  "use strict";

  var OUTCOME_KEYS = { a: "approve", r: "reject", e: "escalate" };

  function typing(el) {
    if (!el) return false;
    if (el.isContentEditable) return true;
    if (el.tagName === "TEXTAREA" || el.tagName === "SELECT") return true;
    return el.tagName === "INPUT" && !/^(checkbox|radio|button|submit|reset)$/.test(el.type);
  }

  function csrfToken() {
    var el = document.querySelector("input[name=csrfmiddlewaretoken]");
    return el ? el.value : "";
  }

  // ------------------------------------------------------------------ item page
  function initItem(root) {
    var player = document.getElementById("player");
    var form = document.getElementById("decide-form");
    var errorBox = document.getElementById("decide-error");
    var mine = root.dataset.mine === "1";
    var decidable = root.dataset.decidable === "1";  // held by us, or free (deciding claims it)
    var leaving = false;

    function reveal(el) {
      if (el && el.classList.contains("blurred")) {
        el.classList.remove("blurred");
        el.classList.add("revealed");
        return true;
      }
      return false;
    }

    function seek(t) {
      if (!player || isNaN(t)) return;
      try { player.currentTime = t; } catch (e) { /* not seekable yet */ }
      var p = player.play();
      if (p && p.catch) p.catch(function () {});
      player.scrollIntoView({ block: "nearest", behavior: "smooth" });
    }

    root.addEventListener("click", function (ev) {
      var veiled = ev.target.closest(".sensitive.blurred");
      if (veiled) {  // the first click on a blurred frame only reveals it
        ev.preventDefault();
        reveal(veiled);
        return;
      }
      var s = ev.target.closest("[data-seek]");
      if (s && player) {
        ev.preventDefault();
        seek(parseFloat(s.dataset.seek));
      }
    });

    if (player) {
      var timeline = root.querySelector(".timeline");
      var frames = Array.prototype.slice.call(root.querySelectorAll(".frame[data-seek]"));
      player.addEventListener("timeupdate", function () {
        var d = player.duration || parseFloat(root.dataset.duration) || 0;
        if (!d) return;
        var pct = Math.min(100, (player.currentTime / d) * 100) + "%";
        if (timeline) {
          timeline.classList.add("playing");
          timeline.querySelectorAll(".playhead").forEach(function (p) { p.style.left = pct; });
        }
        var current = null;
        frames.forEach(function (f) { if (parseFloat(f.dataset.seek) <= player.currentTime + 0.05) current = f; });
        frames.forEach(function (f) { f.classList.toggle("current", f === current); });
      });
    }

    function showError(msg) {
      if (!errorBox) return;
      errorBox.textContent = msg;
      errorBox.hidden = !msg;
    }

    function hasReason() {
      return !!(form && form.querySelector("input[name=reasons]:checked"));
    }

    function needReason() {
      showError("Choose at least one reason to reject (keys 1–9, 0).");
      var box = form.querySelector(".reasons");
      box.classList.add("need");
      var first = form.querySelector("input[name=reasons]");
      if (first) first.focus();
    }

    if (form) {
      form.addEventListener("change", function () {
        if (hasReason()) { form.querySelector(".reasons").classList.remove("need"); showError(""); }
      });
      form.addEventListener("submit", function (ev) {
        var button = ev.submitter;
        if (button && button.value === "reject" && !hasReason()) {
          ev.preventDefault();
          needReason();
          return;
        }
        leaving = true;  // the decision ends the claim; no release beacon
      });
    }

    function decide(outcome) {
      if (!form || !decidable || leaving) return;  // one decision per page
      var button = form.querySelector('button[name=outcome][value="' + outcome + '"]');
      if (!button || button.disabled) return;
      if (outcome === "reject" && !hasReason()) { needReason(); return; }
      if (form.requestSubmit) form.requestSubmit(button); else button.click();
    }

    document.addEventListener("keydown", function (ev) {
      if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat || typing(ev.target)) return;
      var k = ev.key;
      if (OUTCOME_KEYS[k]) {
        ev.preventDefault();
        decide(OUTCOME_KEYS[k]);
      } else if (k === "c" && root.querySelector("[data-claim]")) {
        ev.preventDefault();
        root.querySelector("[data-claim]").click();
      } else if (k === "j" && root.dataset.next) {
        ev.preventDefault();
        window.location.href = root.dataset.next;
      } else if (k === "k" && root.dataset.prev) {
        ev.preventDefault();
        window.location.href = root.dataset.prev;
      } else if (/^[0-9]$/.test(k) && form) {
        var label = form.querySelector('.reason[data-key="' + k + '"] input');
        if (label && !label.disabled) {
          ev.preventDefault();
          label.checked = !label.checked;
          label.dispatchEvent(new Event("change", { bubbles: true }));
        }
      } else if (k === "Escape") {
        showError("");
      }
    });

    // Release on leaving (not after deciding); a page restored from the back/forward cache reloads to show the claim.
    if (mine) {
      var release = root.querySelector("[data-release]");
      if (release) release.addEventListener("click", function () { leaving = true; });
      window.addEventListener("pagehide", function () {
        if (leaving || !navigator.sendBeacon) return;
        var fd = new FormData();
        fd.append("csrfmiddlewaretoken", csrfToken());
        fd.append("beacon", "1");
        navigator.sendBeacon(root.dataset.releaseUrl, fd);
      });
    }
    window.addEventListener("pageshow", function (ev) { if (ev.persisted) window.location.reload(); });
  }

  // ------------------------------------------------------------------ face blur
  // Stored face boxes (detection only) are placed from data-box ("left top right bottom", percent)
  // through the CSSOM, so no inline style is needed; the toggle blurs them over image and keyframes.
  var BLUR_KEY = "mediaintel.blurFaces";

  function initFaces(root) {
    root.querySelectorAll(".face[data-box]").forEach(function (el) {
      var b = el.dataset.box.split(" ").map(parseFloat);
      if (b.length !== 4 || b.some(isNaN)) return;
      el.style.left = b[0] + "%";
      el.style.top = b[1] + "%";
      el.style.width = (b[2] - b[0]) + "%";
      el.style.height = (b[3] - b[1]) + "%";
    });
    var toggle = document.getElementById("blur-faces");
    if (!toggle) return;
    function set(on) {
      root.classList.toggle("blur-faces", on);
      toggle.setAttribute("aria-pressed", on ? "true" : "false");
      try { window.localStorage.setItem(BLUR_KEY, on ? "1" : "0"); } catch (e) { /* storage off */ }
    }
    var saved = null;
    try { saved = window.localStorage.getItem(BLUR_KEY); } catch (e) { /* storage off */ }
    set(saved === "1");
    toggle.addEventListener("click", function () { set(!root.classList.contains("blur-faces")); });
    document.addEventListener("keydown", function (ev) {
      if (ev.key !== "b" || ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat || typing(ev.target)) return;
      ev.preventDefault();
      set(!root.classList.contains("blur-faces"));
    });
  }

  // ------------------------------------------------------------------ queue page
  function initQueue(table) {
    var form = document.getElementById("bulk-form");
    var all = document.getElementById("select-all");
    var count = document.getElementById("sel-count");
    var rows = Array.prototype.slice.call(table.querySelectorAll("tr.qrow"));
    var cursor = -1;

    function boxes() { return Array.prototype.slice.call(table.querySelectorAll("input[name=items]")); }
    function update() {
      var n = boxes().filter(function (b) { return b.checked; }).length;
      if (count) count.textContent = n + " selected";
      if (all) all.checked = n > 0 && n === boxes().length;
    }
    if (all) all.addEventListener("change", function () {
      boxes().forEach(function (b) { b.checked = all.checked; });
      update();
    });
    table.addEventListener("change", update);
    table.addEventListener("click", function (ev) {
      if (ev.target.closest("a, input, button, label")) return;
      var row = ev.target.closest("tr.qrow");
      if (row && row.dataset.href) window.location.href = row.dataset.href;
    });
    if (form) form.addEventListener("submit", function (ev) {
      var button = ev.submitter;
      var n = boxes().filter(function (b) { return b.checked; }).length;
      var reason = form.querySelector("select[name=reasons]");
      if (!n) { ev.preventDefault(); alertIn("Select at least one item."); return; }
      if (button && button.value === "reject" && reason && !reason.value) {
        ev.preventDefault();
        alertIn("Choose a reason for the rejection.");
        reason.focus();
      }
    });
    function alertIn(msg) {
      var bar = form.querySelector(".bulkbar");
      var p = bar.querySelector(".form-error");
      if (!p) { p = document.createElement("span"); p.className = "form-error"; p.setAttribute("role", "alert"); bar.appendChild(p); }
      p.textContent = msg;
    }
    function move(step) {
      if (!rows.length) return;
      cursor = Math.max(0, Math.min(rows.length - 1, cursor + step));
      rows.forEach(function (r, i) { r.classList.toggle("cursor", i === cursor); });
      rows[cursor].scrollIntoView({ block: "nearest" });
    }
    document.addEventListener("keydown", function (ev) {
      if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) return;
      if (ev.key === "j") { ev.preventDefault(); move(1); }
      else if (ev.key === "k") { ev.preventDefault(); move(-1); }
      else if (ev.key === "x" && cursor >= 0) {
        var b = rows[cursor].querySelector("input[name=items]");
        if (b) { ev.preventDefault(); b.checked = !b.checked; update(); }
      } else if ((ev.key === "o" || ev.key === "Enter") && cursor >= 0 && !ev.target.closest("button, a")) {
        ev.preventDefault();
        window.location.href = rows[cursor].dataset.href;
      }
    });
    update();
  }

  function init() {
    var review = document.getElementById("review");
    if (review) { initItem(review); initFaces(review); }
    var queue = document.querySelector("table.queue");
    if (queue) initQueue(queue);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
