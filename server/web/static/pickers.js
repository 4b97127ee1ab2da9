// The unit and period pickers (templates/_pickers.html). Each page works without this file: the unit
// picker is then a plain select, the period picker a text box with suggestions.
(function () {
  "use strict";

  // "Xã Phượng Tiến" → "xa phuong tien", as core.units.fold does on the server
  function fold(text) {
    return text.replace(/đ/g, "d").replace(/Đ/g, "D").normalize("NFD").replace(/[\u0300-\u036f]/g, "")
      .toLowerCase().replace(/[^0-9a-z]+/g, " ").trim();
  }

  // --- units: a search box above the select; matches from the select and from /units/search (scoped)
  function unitPicker(box) {
    var select = box.querySelector("select");
    var search = document.createElement("input");
    search.type = "search";
    search.className = "picker-search";
    search.placeholder = box.getAttribute("data-find");
    search.setAttribute("aria-label", box.getAttribute("data-find"));
    search.setAttribute("autocomplete", "off");
    select.parentNode.insertBefore(search, select);
    var status = document.createElement("small");
    status.className = "picker-status";
    status.setAttribute("role", "status");
    select.parentNode.appendChild(status);
    var asked = 0;

    function visible() {
      return Array.prototype.filter.call(select.options, function (o) { return !o.hidden; });
    }
    function show(query) {
      var q = fold(query);
      var code = query.trim();
      var shown = 0;
      Array.prototype.forEach.call(select.options, function (o) {
        o.hidden = Boolean(q) && fold(o.text).indexOf(q) < 0 && o.value.indexOf(code) !== 0;
        if (!o.hidden) { shown += 1; }
      });
      var current = select.selectedOptions[0];
      var first = visible()[0];
      if (!select.multiple) {  // one unit: the best match is the pick; several: Enter adds it
        if (q && first && (!current || current.hidden)) { select.value = first.value; }
        select.size = q ? Math.max(2, Math.min(8, shown)) : 0;
      }
      status.textContent = q && !shown ? box.getAttribute("data-none") : "";
    }
    function ask(query) {
      var n = ++asked;
      if (fold(query).length < 2 && !/^\d/.test(query)) { return; }
      var level = box.getAttribute("data-level");
      fetch("/units/search?q=" + encodeURIComponent(query) + (level ? "&level=" + encodeURIComponent(level) : ""),
            { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : []; })
        .then(function (found) {
          if (n !== asked) { return; }
          found.forEach(function (u) {
            if (!select.querySelector('option[value="' + CSS.escape(u.code) + '"]')) {
              var o = document.createElement("option");
              o.value = u.code;
              o.text = u.name + " · " + u.code + (u.path ? " (" + u.path + ")" : "");
              select.appendChild(o);
            }
          });
          show(search.value);
        });
    }
    search.addEventListener("input", function () { show(search.value); ask(search.value); });
    search.addEventListener("keydown", function (event) {
      var options = visible();
      if (select.multiple) {
        if (event.key === "Enter") {
          event.preventDefault();
          if (options[0] && search.value.trim()) { options[0].selected = true; }
          search.value = "";
          show("");
        }
        return;
      }
      var at = options.indexOf(select.selectedOptions[0]);
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        var next = options[Math.max(0, Math.min(options.length - 1, at + (event.key === "ArrowDown" ? 1 : -1)))];
        if (next) { select.value = next.value; }
      } else if (event.key === "Enter") {
        event.preventDefault();  // Enter picks the highlighted unit; the form's own button sends it
        select.size = 0;
        select.focus();
      }
    });
  }

  // --- periods: kind, year and part compose the name the server reads ("2026-Q2")
  var PATTERNS = [
    [/^(\d{4})$/, "year"], [/^(\d{4})-?[Hh]([12])$/, "half"], [/^(\d{4})-?[Qq]([1-4])$/, "quarter"],
    [/^(\d{4})-(\d{1,2})$/, "month"], [/^(\d{4})-?[Ww](\d{1,2})$/, "week"], [/^(\d{4})-?[Qq][Dd]28$/, "qd28"]
  ];
  var PARTS = { half: 2, quarter: 4, month: 12, week: 53 };

  function compose(kind, year, index) {
    if (kind === "year") { return year; }
    if (kind === "qd28") { return year + "-QD28"; }
    if (kind === "half") { return year + "-H" + index; }
    if (kind === "quarter") { return year + "-Q" + index; }
    var two = (index < 10 ? "0" : "") + index;
    return kind === "week" ? year + "-W" + two : year + "-" + two;
  }

  function periodPicker(box) {
    var input = box.querySelector("input[list]");
    var parts = box.querySelector(".period-parts");
    var kind = parts.querySelector("[data-part=kind]");
    var year = parts.querySelector("[data-part=year]");
    var index = parts.querySelector("[data-part=index]");

    function fillIndex(chosen) {
      var count = PARTS[kind.value] || 0;
      var word = kind.selectedOptions[0].getAttribute("data-part-word");
      index.innerHTML = "";
      for (var i = 1; i <= count; i += 1) {
        index.appendChild(new Option(word + " " + i, String(i), false, i === chosen));
      }
      if (count === 0) { index.appendChild(new Option("—", "")); }
      index.disabled = count === 0;  // kept in place: a select appearing would move the form under the pointer
    }
    function fromInput() {
      var text = input.value.trim();
      var found = null;
      PATTERNS.forEach(function (p) { var m = p[0].exec(text); if (m && !found) { found = [p[1], m[1], Number(m[2] || 1)]; } });
      if (!found) { found = ["year", String(new Date().getFullYear()), 1]; }
      kind.value = found[0];
      year.value = found[1];
      fillIndex(found[2]);
    }
    function toInput() {
      if (/^\d{4}$/.test(year.value)) { input.value = compose(kind.value, year.value, Number(index.value || 1)); }
    }
    kind.addEventListener("change", function () { fillIndex(1); toInput(); });
    year.addEventListener("input", toInput);
    index.addEventListener("change", toInput);
    input.addEventListener("change", fromInput);
    fromInput();
    input.removeAttribute("list");  // the parts replace the suggestions (whose pop-up would cover the form)
    parts.hidden = false;
  }

  document.querySelectorAll("[data-unit-picker]").forEach(unitPicker);
  document.querySelectorAll("[data-period-picker]").forEach(periodPicker);
})();
