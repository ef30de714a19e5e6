// The records table of the SmartVault audit report: search, sort, render in pages.
// Plain script, no library: the data is the JSON block above, as arrays (see COLUMNS).
(function () {
  "use strict";
  var PAGE = 100; // rows added per render; "Show more" adds the next page
  var data = JSON.parse(document.getElementById("data").textContent);
  // each row: [time, action, outcome, policy, region, resource, rp, ids, detail, actor, run];
  // the "coded" columns hold an index into data.strings (repeated values, written once)
  var rows = data.records;
  for (var r = 0; r < rows.length; r++) {
    for (var k = 0; k < data.coded.length; k++) rows[r][data.coded[k]] = data.strings[rows[r][data.coded[k]]];
  }
  var IDS = 7;
  var tbody = document.getElementById("rows");
  var search = document.getElementById("search");
  var count = document.getElementById("count");
  var more = document.getElementById("more");
  var headers = document.querySelectorAll("#table th");
  var haystack = null; // lower-cased text of each row, built on the first search
  var order = rows.map(function (_, i) { return i; }); // current sort, all rows
  var shown = order; // current sort, matching rows
  var limit = PAGE;
  var sortColumn = 0, sortDir = -1; // newest first, as the records arrive

  function text(value) { return document.createTextNode(value); }

  function cell(row, c) {
    var td = document.createElement("td");
    var value = row[c];
    if (c === IDS) {
      td.className = "ids";
      if (value) {
        var code = document.createElement("code");
        code.appendChild(text(value));
        td.appendChild(code);
        var button = document.createElement("button");
        button.type = "button";
        button.className = "copy";
        button.textContent = "copy";
        button.title = "Copy the snapshot ids";
        td.appendChild(button);
      }
    } else if (c === 2) {
      td.className = "outcome-" + value;
      td.appendChild(text(value));
    } else {
      td.appendChild(text(value));
    }
    return td;
  }

  function render(from) {
    var fragment = document.createDocumentFragment();
    var end = Math.min(limit, shown.length);
    for (var i = from; i < end; i++) {
      var row = rows[shown[i]];
      var tr = document.createElement("tr");
      for (var c = 0; c < row.length; c++) tr.appendChild(cell(row, c));
      fragment.appendChild(tr);
    }
    if (from === 0) tbody.textContent = "";
    tbody.appendChild(fragment);
    count.textContent = shown.length === rows.length
      ? rows.length + " records" + (end < shown.length ? ", first " + end + " shown" : "")
      : shown.length + " of " + rows.length + " records match" +
        (end < shown.length ? ", first " + end + " shown" : "");
    count.setAttribute("data-matching", String(shown.length));
    more.hidden = end >= shown.length;
  }

  function buildHaystack() {
    if (haystack === null) haystack = rows.map(function (r) { return r.join("\u0001").toLowerCase(); });
  }

  function filter() {
    var words = search.value.toLowerCase().split(/\s+/).filter(Boolean);
    if (!words.length) {
      shown = order;
    } else {
      buildHaystack();
      shown = order.filter(function (i) {
        var h = haystack[i];
        for (var w = 0; w < words.length; w++) if (h.indexOf(words[w]) < 0) return false;
        return true;
      });
    }
    limit = PAGE;
    render(0);
  }

  function sort(column) {
    sortDir = column === sortColumn ? -sortDir : 1;
    sortColumn = column;
    var dir = sortDir;
    order = order.slice().sort(function (a, b) {
      var x = rows[a][column], y = rows[b][column];
      if (x < y) return -dir;
      if (x > y) return dir;
      return rows[b][0] < rows[a][0] ? -1 : rows[b][0] > rows[a][0] ? 1 : a - b; // then newest first
    });
    for (var h = 0; h < headers.length; h++) {
      headers[h].setAttribute("aria-sort", h === column ? (dir > 0 ? "ascending" : "descending") : "none");
    }
    filter();
  }

  function copy(button) {
    var code = button.previousSibling;
    var range = document.createRange();
    range.selectNodeContents(code);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    var done = function () { button.textContent = "copied"; };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(code.textContent).then(done, function () {
        if (document.execCommand("copy")) done();
      });
    } else if (document.execCommand("copy")) {
      done();
    }
  }

  search.addEventListener("input", filter);
  more.addEventListener("click", function () {
    var from = Math.min(limit, shown.length);
    limit += PAGE;
    render(from);
  });
  tbody.addEventListener("click", function (event) {
    if (event.target.className === "copy") copy(event.target);
  });
  for (var h = 0; h < headers.length; h++) {
    headers[h].addEventListener("click", sort.bind(null, h));
    headers[h].setAttribute("aria-sort", h === sortColumn ? "descending" : "none");
  }
  render(0);
  document.body.setAttribute("data-ready-ms", String(Math.round(performance.now())));
  setTimeout(buildHaystack, 50); // after the first paint, so the first keystroke is quick too
})();
