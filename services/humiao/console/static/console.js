// Humiao console: small conveniences on top of plain forms (every page works without it).
// Keyboard on the queue: j / k move between rows, x selects the row, Enter opens it,
// a selects all rows of the page.
(function () {
  "use strict";
  function rows() { return Array.prototype.slice.call(document.querySelectorAll("table.queue tbody tr[id]")); }
  function mark(row) {
    var box = row.querySelector("input[name=sel]");
    row.classList.toggle("selected", !!(box && box.checked));
  }
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "select-all") {
      rows().forEach(function (row) {
        var box = row.querySelector("input[name=sel]");
        if (box) { box.checked = target.checked; mark(row); }
      });
    } else if (target.name === "sel") {
      mark(target.closest("tr"));
    }
  });
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" && event.target.type !== "checkbox") { return; }
    if (tag === "select" || tag === "textarea" || event.ctrlKey || event.metaKey || event.altKey) { return; }
    var list = rows();
    if (!list.length) { return; }
    var current = document.activeElement && document.activeElement.closest ? document.activeElement.closest("tr[id]") : null;
    var index = current ? list.indexOf(current) : -1;
    function focusRow(i) {
      var row = list[Math.max(0, Math.min(list.length - 1, i))];
      row.setAttribute("tabindex", "-1");
      row.focus();
    }
    if (event.key === "j") { focusRow(index + 1); event.preventDefault(); }
    else if (event.key === "k") { focusRow(index - 1); event.preventDefault(); }
    else if (event.key === "x" && current) {
      var box = current.querySelector("input[name=sel]");
      if (box) { box.checked = !box.checked; mark(current); }
      event.preventDefault();
    } else if (event.key === "a" && tag !== "input") {
      var all = document.getElementById("select-all");
      if (all) { all.click(); }
      event.preventDefault();
    } else if (event.key === "Enter" && current && tag === "tr") {
      var link = current.querySelector("a");
      if (link) { link.click(); }
    }
  });
  // A live refresh of the rows keeps what the person had selected.
  document.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.elt.id !== "results") { return; }
    var picked = Array.prototype.map.call(
      document.querySelectorAll("#queue-form input[name=sel]:checked"),
      function (box) { return box.value; });
    if (picked.length) { event.detail.parameters.sel = picked; }
  });
  document.addEventListener("htmx:afterSwap", function () { rows().forEach(mark); });
})();
