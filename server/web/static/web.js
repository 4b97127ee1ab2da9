// Small helpers for the officer pages; every page works without them.
document.addEventListener("submit", function (event) {
  var form = event.target;
  var question = form.getAttribute("data-confirm");
  if (question && !window.confirm(question)) {
    event.preventDefault();
  }
});
document.addEventListener("click", function (event) {
  var el = event.target.closest("[data-print]");
  if (el) {
    event.preventDefault();
    window.print();
  }
});
