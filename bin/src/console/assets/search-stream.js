// Spate console: while a search's rows stream into the page (this runs as
// soon as the browser reaches the results, before the rest has arrived),
// the Cancel button stops them: stopping the page load closes the request,
// which cancels the query on the server.
"use strict";
(() => {
  const cancel = document.getElementById("cancel-search");
  const status = document.getElementById("search-status");
  if (!cancel || !status) {
    return;
  }
  const arriving = "Rows are arriving…";
  cancel.hidden = false;
  status.textContent = arriving;
  cancel.addEventListener("click", () => {
    window.stop();
    cancel.hidden = true;
    status.textContent = "Search cancelled.";
  });
  document.addEventListener("DOMContentLoaded", () => {
    if (status.textContent === arriving) {
      cancel.hidden = true;
      status.textContent = "";
    }
  });
})();
