// Spate console: the few things plain HTML does not do.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("search-form");
  if (!form) {
    return;
  }
  const run = document.getElementById("run-search");
  const cancel = document.getElementById("cancel-search");
  const status = document.getElementById("search-status");
  // A search in progress says so, is not sent twice, and can be cancelled:
  // stopping the page load closes the request, which cancels the query on
  // the server.
  form.addEventListener("submit", () => {
    run.disabled = true;
    run.textContent = "Searching…";
    cancel.hidden = false;
    status.textContent = "";
  });
  cancel.addEventListener("click", () => {
    window.stop();
    run.disabled = false;
    run.textContent = "Search";
    cancel.hidden = true;
    status.textContent = "Search cancelled.";
  });
  // Ctrl+Enter in the SQL box runs the search.
  document.getElementById("sql").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
});
