// Small behaviour shared by the dashboard pages (htmx does the rest).
// When htmx cannot reach the server, say so instead of silently showing old tiles.
document.addEventListener("htmx:sendError", function () {
  var main = document.getElementById("main");
  if (!main || document.getElementById("offline-note")) return;
  var note = document.createElement("p");
  note.id = "offline-note";
  note.className = "errors";
  note.setAttribute("role", "alert");
  note.textContent = "The dashboard cannot reach the server; the numbers shown may be out of date.";
  main.prepend(note);
});
document.addEventListener("htmx:afterRequest", function (event) {
  var note = document.getElementById("offline-note");
  if (note && event.detail.successful) note.remove();
});
