(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var table = document.querySelector("table[data-filterable]");
  if (!table) { return; }
  var rows = Array.prototype.slice.call(table.querySelectorAll("tbody tr"));
  var boxes = Array.prototype.slice.call(document.querySelectorAll("input[data-filter]"));
  var shown = document.getElementById("rows-shown");
  var empty = document.getElementById("rows-empty");

  function wanted() {
    var want = {};
    boxes.forEach(function (box) {
      var dim = box.getAttribute("data-filter");
      if (!want[dim]) { want[dim] = {}; }
      if (box.checked) { want[dim][box.value] = true; }
    });
    return want;
  }

  function apply() {
    var want = wanted();
    var dims = Object.keys(want);
    var count = 0;
    rows.forEach(function (row) {
      var visible = dims.every(function (dim) {
        var values = (row.getAttribute("data-" + dim) || "").split(" ");
        return values.some(function (value) { return want[dim][value] === true; });
      });
      row.hidden = !visible;
      if (visible) { count += 1; }
    });
    if (shown) { shown.textContent = String(count); }
    if (empty) { empty.hidden = count !== 0; }
  }

  boxes.forEach(function (box) { box.addEventListener("change", apply); });
  Array.prototype.forEach.call(document.querySelectorAll("button[data-set]"), function (button) {
    button.addEventListener("click", function () {
      var dim = button.getAttribute("data-dim");
      var on = button.getAttribute("data-set") === "all";
      boxes.forEach(function (box) {
        if (!dim || box.getAttribute("data-filter") === dim) { box.checked = on; }
      });
      apply();
    });
  });
  apply();
}());
